"""predict makes no magnetogram of a stack that shows no Sun: an all-zero stack (normalize never
writes one: off the disk its planes are -1)."""

from __future__ import annotations

import numpy as np
import pytest

from farside_gan.cli import main
from farside_gan.core.fitsio import read_fits, write_fits


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An (untrained) generator of the tiny model and a stack of its conventions."""
    from helpers.model import write_pair

    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.trainer import TrainConfig, Trainer
    d = tmp_path_factory.mktemp("model")
    stack, target, _ = write_pair(d / "pairs", 0, 32)
    tiny = TrainConfig(ngf=4, ndf=4, n_downsample=2, n_residual=1, progress=False, num_threads=1)
    generator = Trainer(tiny, PairedFitsDataset([(stack, target)]), d / "run",
                        device="cpu").save_generator()
    return generator, stack


def predict(generator, stack, out, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["predict", "--checkpoint", str(generator), "--output", str(out), "--device", "cpu",
               str(stack)])
    return rc, capsys.readouterr().err


def test_the_stack_as_written_makes_a_map(model, tmp_path, capsys):
    generator, stack = model
    rc, err = predict(generator, stack, tmp_path / "map.fits", capsys)
    assert rc == 0 and (tmp_path / "map.fits").exists(), err


def test_an_all_zero_stack_makes_no_map(model, tmp_path, capsys):
    generator, stack = model
    data, header = read_fits(stack)
    assert data[:, 0, 0].tolist() == [-1.0, -1.0, -1.0]  # off the disk, as normalize writes
    bad = write_fits(tmp_path / "zero.fits", np.zeros_like(data), header)
    out = tmp_path / "out" / "map.fits"
    rc, err = predict(generator, bad, out, capsys)
    assert rc == 1 and err.count("\n") == 1, err
    assert err.startswith(f"farside-gan predict: error: {bad}: every pixel on the solar disk is "
                          "0: a constant plane"), err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
