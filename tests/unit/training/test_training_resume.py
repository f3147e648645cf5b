"""When training resumes from checkpoints/latest.pt, and when it starts over (saying why).

A workflow reruns the train job after a failure (resume) but also after a forced rerun or a
changed setting or data (start over); the library tells them apart from the checkpoint.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch
from helpers.model import write_manifest

from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.trainer import TrainConfig, Trainer

TINY = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, batch_size=1, log_every=1,
            preview_every=0, keep_every_epochs=0, progress=False, num_threads=1,
            epochs=2, epoch_decay=1)  # 4 pairs: 8 steps


@pytest.fixture
def manifest(tmp_path):
    return write_manifest(tmp_path / "pairs", n_train=4, n_eval=0, n=64)


def fit(manifest, out_dir, **settings) -> Trainer:
    trainer = Trainer(TrainConfig(**{**TINY, **settings}),
                      PairedFitsDataset.from_manifest(manifest, "train"), out_dir, device="cpu")
    trainer.fit()
    return trainer


def started_at(caplog) -> str:
    messages = [r.getMessage() for r in caplog.records if "resuming from" in r.getMessage()]
    assert len(messages) == 1, messages
    return messages[0]


def test_unfinished_run_resumes_and_publishes_its_logs_only_at_the_end(manifest, tmp_path, caplog):
    out = tmp_path / "run"
    fit(manifest, out, max_steps=3)  # max_steps may change between a run and its resumption
    (out / "generator.pt").unlink()
    (out / "losses.csv").unlink()
    with caplog.at_level(logging.INFO, logger="farside_gan.training.trainer"):
        trainer = fit(manifest, out)
    assert started_at(caplog).startswith(f"resuming from {out}/checkpoints/latest.pt at step 3 ")
    assert trainer.step == 8
    with open(out / "losses.csv") as fh:
        assert [line.split(",")[0] for line in fh][1:] == [str(s) for s in range(1, 9)]
    assert (out / "losses.csv").read_bytes() == (out / "checkpoints/losses.csv").read_bytes()


@pytest.mark.parametrize("change, reason", [
    ({"lr": 1e-4}, "its settings differ (lr: checkpoint 0.0002 != config 0.0001)"),
    ({"max_steps": 3}, "it ends a finished run (step 3 of 3)"),
    ("touch", "the training files changed since"),
])
def test_run_starts_over_when_the_checkpoint_is_not_its_own(manifest, tmp_path, caplog, change,
                                                            reason):
    out = tmp_path / "run"
    fit(manifest, out, max_steps=3)
    settings = {"max_steps": 3}
    if change == "touch":
        stack = next((manifest.parent / "pairs").glob("stack_*.fits"))
        os.utime(stack, ns=(stack.stat().st_atime_ns, stack.stat().st_mtime_ns + 10**9))
        settings["max_steps"] = 0
    else:
        settings.update(change)
    with caplog.at_level(logging.INFO, logger="farside_gan.training.trainer"):
        trainer = fit(manifest, out, **settings)
    message = started_at(caplog)
    assert message.startswith(f"not resuming from {out}/checkpoints/latest.pt: {reason}"), message
    assert message.endswith("starting at step 0")
    with open(out / "losses.csv") as fh:
        assert int(fh.readlines()[1].split(",")[0]) == 1  # the old run's rows are gone
    assert trainer.step == (3 if settings["max_steps"] else 8)


def test_a_finished_run_forced_again_gives_the_same_generator(manifest, tmp_path):
    """CPU training is deterministic: starting over reproduces the first result."""
    out = tmp_path / "run"
    fit(manifest, out)
    first = torch.load(out / "generator.pt", weights_only=True)["G"]
    fit(manifest, out)
    again = torch.load(out / "generator.pt", weights_only=True)["G"]
    assert all(torch.equal(first[k], again[k]) for k in first)
