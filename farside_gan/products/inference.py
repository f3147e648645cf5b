"""Checkpoint + normalized EUV stacks -> magnetograms in Gauss as FITS maps.

The generator output is clipped to [-1, 1] (the training range), turned into Gauss with the HMI
clip the model was trained with (recorded in its checkpoint from the targets' ``NORMCLIP``) and
masked off the disk (NaN beyond the stack's ``MASKRAD``). A stack whose frame conventions
(:mod:`farside_gan.core.conventions`: size, disk radius, mask, EUV normalization, channel order)
differ from the model's training data is refused before anything is generated. The maps and
their headers are :mod:`farside_gan.products.magnetogram`'s.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from farside_gan.core import conventions
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import sha256_of, write_fits
from farside_gan.core.header_checks import check_normalized_plane, check_stack_for_model
from farside_gan.model.checkpoint import generator_of, load_checkpoint
from farside_gan.prepare.normalize import denormalize_hmi
from farside_gan.products.magnetogram import magnetogram_header, mask_off_disk, output_name
from farside_gan.products.uncertainty import (UNCERTAINTY_EXTNAME, ensemble_hdu, ensemble_std,
                                              uncertainty_hdu)
from farside_gan.training.data import read_stack
from farside_gan.training.distributed import resolve_device

log = logging.getLogger(__name__)


@torch.no_grad()
def predict(checkpoint: str | os.PathLike, stacks: list[str | os.PathLike],
            out_dir: str | os.PathLike | None = None, batch_size: int = 4, device: str = "auto",
            outputs: list[str | os.PathLike] | None = None, precision: str = "auto",
            compile: bool = False, ensemble: list[str | os.PathLike] | None = None) -> list[Path]:
    """Write one magnetogram per stack; returns the output paths in input order.

    Outputs go to ``out_dir`` named by :func:`output_name`, or to the explicit ``outputs`` paths
    (one per stack). On CUDA the generator runs in bf16 (``precision="auto"``) and, with
    ``compile``, through torch.compile with its few-channel convs as GEMMs (compiling takes a
    while, so it pays over thousands of maps; benchmarks/README.md has the figures); on the CPU
    it runs in plain fp32. Off-disk pixels (beyond the stack's ``MASKRAD``) are NaN.

    Every stack is checked before any is generated (``validation.check_stack_for_model``): its
    instrument's channel order, a size the generator takes, the geometry of the output map; and
    its frame conventions must be the model's (``conventions.check_model_input``).

    ``ensemble``: more generators (checkpoints of the same model, e.g.
    ``uncertainty.snapshot_members``); with them each map gets the ensemble's (``checkpoint``
    and these) per-pixel standard deviation in Gauss as the extension ``UNCERTAINTY`` and the
    members as the table ``ENSEMBLE`` (``farside_gan.products.uncertainty``). Each member costs one
    more inference per map.
    """
    from farside_gan.model.accel import GeneratorRunner
    dev = resolve_device(device)
    saved = load_checkpoint(checkpoint, map_location="cpu")
    G, config, model = generator_of(saved, checkpoint, dev)
    run = GeneratorRunner(G, dev, precision, compile=compile)
    sha = sha256_of(checkpoint)
    members = _load_members(checkpoint, saved, config, model, ensemble or [], dev, precision,
                            compile, sha)
    del saved  # a training checkpoint also holds D and both optimizers
    stacks = [Path(s) for s in stacks]
    if (out_dir is None) == (outputs is None):
        raise ValueError("give either out_dir or outputs")
    if outputs is not None and len(outputs) != len(stacks):
        raise ValueError(f"{len(outputs)} output paths for {len(stacks)} stacks")
    names: dict[Path, Path] = {}
    for i, s in enumerate(stacks):  # headers first: clashes and bad inputs fail before any work
        data, header = read_stack(s, config.in_channels)
        check_stack_for_model(header, data.shape, s, config.in_channels, config.n_downsample)
        for plane in data:
            check_normalized_plane(plane, header, s)
        conventions.check_model_input(conventions.of_stack(header, s, data.shape), model, s)
        name = Path(outputs[i]) if outputs is not None else Path(out_dir) / output_name(header, s)
        if name in names.values():
            clash = next(k for k, v in names.items() if v == name)
            raise InputDataError(s, f"would write the same output {name.name} as {clash}",
                                 reason="duplicate_time")
        names[s] = name
    written = []
    for start in range(0, len(stacks), batch_size):
        chunk = stacks[start:start + batch_size]
        loaded = [read_stack(s, config.in_channels) for s in chunk]
        for size in sorted({d.shape[-1] for d, _ in loaded}):  # batch equal sizes together
            group = [(s, d, h) for s, (d, h) in zip(chunk, loaded) if d.shape[-1] == size]
            x = torch.from_numpy(np.stack([d for _, d, _ in group])).to(dev)
            y = run(x).clamp(-1, 1)[:, 0].cpu().numpy()
            others = [m["run"](x).clamp(-1, 1)[:, 0].cpu().numpy() for m in members[1:]]
            for i, ((s, _, h), field) in enumerate(zip(group, y)):
                gauss = mask_off_disk(denormalize_hmi(field, model.hmi_clip), h, s)
                header = magnetogram_header(h, s, Path(checkpoint).name, sha, model.hmi_clip)
                extra = []
                if others:
                    fields = [gauss] + [mask_off_disk(denormalize_hmi(o[i], model.hmi_clip), h, s)
                                        for o in others]
                    extra = [uncertainty_hdu(ensemble_std(np.stack(fields)), header,
                                             len(fields)), ensemble_hdu(members)]
                    header["UNCEXT"] = (UNCERTAINTY_EXTNAME, "extension with the 1-sigma map (G)")
                path = write_fits(names[s], gauss.astype(np.float32), header, extra_hdus=extra)
                log.info("%s -> %s", s, path)
        written.extend(names[s] for s in chunk)
    return written


def _load_members(checkpoint, saved: dict, config, model, ensemble, device, precision: str,
                  compile: bool, sha: str) -> list[dict]:
    """The ensemble: ``checkpoint`` (``saved``, loaded by the caller; no runner here) then each of
    ``ensemble`` with its runner; every member must be of the same model (``config.model``)
    trained on data of the same conventions (``model``: frame, normalization, HMI clip)."""
    from farside_gan.model.accel import GeneratorRunner
    if not ensemble:
        return []
    members = [{"file": Path(checkpoint).name, "sha256": sha, "epoch": saved.get("epoch", -1),
                "step": saved.get("step", -1), "run": None}]
    for path in ensemble:
        member = load_checkpoint(path, map_location="cpu")
        G, member_config, member_conventions = generator_of(member, path, device)
        if member_config.model != config.model or member_conventions != model:
            raise InputDataError(path, "ensemble member is not of the model of "
                                 f"{Path(checkpoint).name} ({member_config.model}, "
                                 f"{member_conventions})", reason="checkpoint_mismatch")
        members.append({"file": Path(path).name, "sha256": sha256_of(path),
                        "epoch": member.get("epoch", -1), "step": member.get("step", -1),
                        "run": GeneratorRunner(G, device, precision, compile=compile)})
        del member  # a training checkpoint also holds D and both optimizers
    return members


def predict_prepared(checkpoint: str | os.PathLike, prepared_dir: str | os.PathLike,
                     out_dir: str | os.PathLike, **options) -> list[Path]:
    """One magnetogram per usable stack of a prepared period directory (``prepare``), written
    as ``out_dir/<time>.fits`` (the grid time); ``options`` go to :func:`predict`."""
    from farside_gan.prepare.period import read_prepared
    entries = [e for e in read_prepared(prepared_dir) if e["status"] == "ok"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not entries:
        log.info("%s: no usable stacks", prepared_dir)
        return []
    return predict(checkpoint, [e["stack"] for e in entries],
                   outputs=[out_dir / f"{e['time']}.fits" for e in entries], **options)
