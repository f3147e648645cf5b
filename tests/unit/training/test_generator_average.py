"""The moving average of the generator's weights (``training.ema_decay``): its update, the
run's generator (validation, generator.pt, a training checkpoint loaded for inference), exact
resume, and nothing of it when off. Data-parallel ranks' averages: test_distributed.py."""

from __future__ import annotations

import pytest
import torch
from helpers.model import write_manifest

from farside_gan.model.checkpoint import load_generator
from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.ema import GeneratorAverage
from farside_gan.training.trainer import TrainConfig, Trainer

TINY = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, batch_size=1, log_every=1,
            preview_every=0, keep_every_epochs=0, progress=False, num_threads=1, epochs=2,
            epoch_decay=1)  # 4 pairs: 8 steps


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("pairs"), n_train=4, n_eval=1, n=64)


def _net() -> torch.nn.Module:
    """Parameters, floating-point buffers (running statistics) and an integer buffer."""
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def _set(net: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            t.fill_(value)


def test_the_average_starts_at_the_first_step_then_decays():
    """ema_1 = G_1, ema_t = d ema_(t-1) + (1 - d) G_t for parameters and floating buffers;
    integer buffers (a count) follow G."""
    net = _net()
    average = GeneratorAverage(net, 0.9)
    assert average.module is not net
    assert not any(p.requires_grad for p in average.module.parameters())
    expected = None
    for step, value in enumerate((1.0, 3.0, -2.0)):
        _set(net, value)
        average.update(net, first=step == 0)
        expected = value if expected is None else 0.9 * expected + 0.1 * value
        state = average.state_dict()
        for key, tensor in state.items():
            if tensor.is_floating_point():
                # float32 lerp: a few ulp of values of order 1
                assert torch.allclose(tensor, torch.full_like(tensor, expected), atol=1e-6), key
            else:
                assert tensor.item() == value, key  # num_batches_tracked, copied
    assert expected == pytest.approx(0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * -2)


def test_an_average_with_decay_0_is_the_generator_bit_for_bit():
    net, g = _net(), torch.Generator().manual_seed(0)
    average = GeneratorAverage(net, 0.0)
    for step in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        average.update(net, first=step == 0)
        current = net.state_dict()
        assert all(torch.equal(v, current[k]) for k, v in average.state_dict().items())
    with pytest.raises(ValueError, match="decay"):
        GeneratorAverage(net, 1.0)


def _trainer(manifest, out_dir, **settings) -> Trainer:
    config = TrainConfig(**{**TINY, **settings})
    return Trainer(config, PairedFitsDataset.from_manifest(manifest, "train", seed=config.seed),
                   out_dir, val_set=PairedFitsDataset.from_manifest(manifest, "eval"),
                   device="cpu")


def test_training_averages_g_after_each_step(manifest, tmp_path):
    """The trainer's average after 5 steps is the recurrence over the G of each step."""
    trainer = _trainer(manifest, tmp_path, ema_decay=0.7)
    assert trainer.generator is trainer.G  # before any step: nothing averaged yet
    expected = None
    for i in range(5):
        batch = {k: v[None] for k, v in trainer.train_set[i % 4].items() if k != "index"}
        trainer.train_step(batch)
        weights = {k: v.clone() for k, v in trainer.G.state_dict().items()}
        expected = weights if expected is None else {
            k: 0.7 * expected[k] + 0.3 * weights[k] for k in weights}
    assert trainer.generator is trainer.ema.module
    average = trainer.ema.state_dict()
    for key, value in expected.items():
        assert torch.allclose(average[key], value, rtol=1e-5, atol=1e-7), key
    # and it is no copy of G: the last steps moved G away from the average
    assert not all(torch.equal(average[k], trainer.G.state_dict()[k]) for k in average)


def test_the_average_is_the_runs_generator_and_the_checkpoint_keeps_both(manifest, tmp_path):
    trainer = _trainer(manifest, tmp_path, ema_decay=0.8)
    trainer.fit()
    latest = torch.load(tmp_path / "checkpoints/latest.pt", weights_only=True)
    published = torch.load(tmp_path / "generator.pt", weights_only=True)
    for key, value in latest["G_ema"].items():
        assert torch.equal(published["G"][key], value), key
    assert not all(torch.equal(latest["G"][k], latest["G_ema"][k]) for k in latest["G"])
    # predict loads the average from either file
    for path in (tmp_path / "generator.pt", tmp_path / "checkpoints/latest.pt"):
        G, _, _ = load_generator(path)
        assert all(torch.equal(v, latest["G_ema"][k]) for k, v in G.state_dict().items()), path
    # validation scored the average: a trainer without one, given the average as its G, scores
    # the same (the last row, after the last epoch)
    plain = _trainer(manifest, tmp_path / "plain")
    plain.G.load_state_dict(latest["G_ema"])
    last = (tmp_path / "validation.csv").read_text().splitlines()[-1].split(",")
    scores = plain.validate()
    assert [float(v) for v in last[3:]] == [scores["cc"], scores["cc_binned"], scores["rmse"]]


def test_a_resumed_runs_average_equals_an_uninterrupted_runs(manifest, tmp_path, monkeypatch):
    settings = dict(ema_decay=0.6, checkpoint_every=3, seed=3)
    _trainer(manifest, tmp_path / "a", **settings).fit()
    reference = torch.load(tmp_path / "a/checkpoints/latest.pt", weights_only=True)

    original = Trainer.train_step
    calls = {"n": 0}

    def crashing_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", crashing_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(manifest, tmp_path / "b", **settings).fit()
    monkeypatch.setattr(Trainer, "train_step", original)
    assert torch.load(tmp_path / "b/checkpoints/latest.pt", weights_only=True)["step"] == 3
    resumed = _trainer(manifest, tmp_path / "b", **settings)
    resumed.fit()
    result = torch.load(tmp_path / "b/checkpoints/latest.pt", weights_only=True)
    assert result["step"] == reference["step"] == 8
    for net in ("G", "G_ema"):
        for key, value in reference[net].items():
            assert torch.equal(value, result[net][key]), (net, key)


def test_off_there_is_no_average(manifest, tmp_path):
    trainer = _trainer(manifest, tmp_path, max_steps=2)
    assert trainer.ema is None
    trainer.fit()
    latest = torch.load(tmp_path / "checkpoints/latest.pt", weights_only=True)
    published = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert "G_ema" not in latest
    assert all(torch.equal(published["G"][k], v) for k, v in latest["G"].items())
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
