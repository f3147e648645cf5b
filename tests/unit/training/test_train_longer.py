"""More epochs on a finished run train longer: the run continues from its last checkpoint with the
new learning-rate schedule instead of starting over and discarding its checkpoints. Where the
schedule of the epochs already done is the same (the learning rate still constant there), the
continued run is the run that would have been trained with the new settings from the start."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers.model import write_manifest

from farside_gan.cli import main
from farside_gan.model.checkpoint import load_checkpoint

#: 4 pairs of 64 px at batch 1: 4 steps an epoch
TINY = ["ngf=4", "ndf=4", "n_downsample=2", "n_residual=1", "batch_size=1", "log_every=1",
        "preview_every=0", "keep_every_epochs=1", "val_every_epochs=0", "progress=false",
        "num_threads=1", "checkpoint_every=100"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("data"), n_train=4, n_eval=0, n=64)


def train(manifest, out, epochs: int, epoch_decay: int, *more: str) -> int:
    settings = [*TINY, f"epochs={epochs}", f"epoch_decay={epoch_decay}", *more]
    return main(["train", "--manifest", str(manifest), "--out-dir", str(out), "--device", "cpu",
                 *[a for s in settings for a in ("--set", s)]])


def losses(path) -> list[list[str]]:
    return [line.strip().split(",") for line in open(path)][1:]


def same_weights(a, b) -> bool:
    return all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def test_more_epochs_continue_a_finished_run_and_equal_a_run_trained_that_long(manifest, tmp_path,
                                                                               caplog):
    first = tmp_path / "run"
    assert train(manifest, first, epochs=2, epoch_decay=2) == 0  # lr constant: 8 steps
    before = losses(first / "losses.csv")
    assert [int(r[0]) for r in before] == list(range(1, 9))
    kept = {p.name: p.stat().st_mtime_ns for p in (first / "checkpoints").glob("epoch_*.pt")}
    assert sorted(kept) == ["epoch_0001.pt", "epoch_0002.pt"]
    with caplog.at_level(logging.INFO, logger="farside_gan.training.trainer"):
        assert train(manifest, first, epochs=4, epoch_decay=4) == 0
    [message] = [r.getMessage() for r in caplog.records if "resuming from" in r.getMessage()]
    assert message == (f"resuming from {first}/checkpoints/latest.pt at step 8 (epoch 1); "
                       "epochs 2 -> 4, epoch_decay 2 -> 4: the learning rate follows the new "
                       "schedule from here")
    after = losses(first / "losses.csv")
    assert after[:8] == before  # the first run's steps are kept, not trained again
    assert [int(r[0]) for r in after] == list(range(1, 17))
    # the first run's kept checkpoints are still there, untouched, the new epochs' beside them
    assert sorted(p.name for p in (first / "checkpoints").glob("epoch_*.pt")) == \
        [f"epoch_{e:04d}.pt" for e in (1, 2, 3, 4)]
    assert {n: (first / "checkpoints" / n).stat().st_mtime_ns for n in kept} == kept

    straight = tmp_path / "straight"
    assert train(manifest, straight, epochs=4, epoch_decay=4) == 0
    continued = load_checkpoint(first / "generator.pt", map_location="cpu")
    uninterrupted = load_checkpoint(straight / "generator.pt", map_location="cpu")
    assert continued["step"] == uninterrupted["step"] == 16
    # the same computation step for step (fp32 on the CPU, restored RNG): bit for bit
    assert same_weights(continued, uninterrupted)
    assert [r[:8] for r in losses(straight / "losses.csv")] == [r[:8] for r in after]


def test_another_setting_still_starts_over(manifest, tmp_path, caplog):
    """Only the schedule continues: a run with another learning rate is another run."""
    out = tmp_path / "run"
    assert train(manifest, out, epochs=1, epoch_decay=1) == 0
    with caplog.at_level(logging.INFO, logger="farside_gan.training.trainer"):
        assert train(manifest, out, 2, 2, "lr=0.0001") == 0
    [message] = [r.getMessage() for r in caplog.records if "resuming from" in r.getMessage()]
    assert message.startswith(f"not resuming from {out}/checkpoints/latest.pt: its settings "
                              "differ (lr: checkpoint 0.0002 != config 0.0001)"), message
    assert [int(r[0]) for r in losses(out / "losses.csv")][:2] == [1, 2]


def test_fewer_epochs_than_a_finished_run_start_over(manifest, tmp_path, caplog):
    """Nothing is left to continue: the checkpoint is past the new end."""
    out = tmp_path / "run"
    assert train(manifest, out, epochs=2, epoch_decay=1) == 0
    with caplog.at_level(logging.INFO, logger="farside_gan.training.trainer"):
        assert train(manifest, out, epochs=1, epoch_decay=1) == 0
    [message] = [r.getMessage() for r in caplog.records if "resuming from" in r.getMessage()]
    assert "it ends a finished run (step 8 of 4)" in message, message
    assert load_checkpoint(out / "generator.pt", map_location="cpu")["step"] == 4
