"""Outputs get the umask's permissions, not mkstemp's 0600: FITS frames, the manifest, fetch
records and checkpoints, all written through ``farside_gan.core.fitsio.atomic_output``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from farside_gan.core.fitsio import write_fits


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027])
def test_outputs_honour_the_umask(tmp_path, umask):
    import torch

    from farside_gan.acquire.download import write_record
    from farside_gan.model.checkpoint import save_checkpoint
    from farside_gan.prepare.manifest import write_manifest
    previous = os.umask(umask)
    try:
        paths = [write_fits(tmp_path / "frame.fits", np.zeros((8, 8), np.float32)),
                 write_manifest(tmp_path / "manifest.csv", []),
                 write_record(tmp_path / "record.json", {"status": "ok"})]
        save_checkpoint({"x": torch.zeros(2)}, tmp_path / "latest.pt")
        paths.append(tmp_path / "latest.pt")
    finally:
        os.umask(previous)
    for path in paths:
        assert (path.stat().st_mode & 0o777) == 0o666 & ~umask, (path, oct(path.stat().st_mode))
    assert json.loads((tmp_path / "record.json").read_text()) == {"status": "ok"}
