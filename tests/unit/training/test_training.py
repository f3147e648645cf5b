import csv

import pytest
import torch
from helpers.model import write_manifest

from farside_gan.cli import main
from farside_gan.core.errors import InputDataError
from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.trainer import TrainConfig, Trainer, lr_factor

# One thread: on a busy shared CPU two threads per process are much slower than one.
TINY = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, batch_size=1, log_every=1,
            preview_every=0, keep_every_epochs=0, progress=False, num_threads=1)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("pairs"), n_train=4, n_eval=1, n=64)


def _datasets(manifest, config):
    train = PairedFitsDataset.from_manifest(manifest, "train", seed=config.seed,
                                            augmentation=_aug(config))
    return train, PairedFitsDataset.from_manifest(manifest, "eval")


def _aug(config):
    from farside_gan.training.data import Augmentation
    return Augmentation(config.augment_rotation_deg, config.augment_translate_px)


def test_manifest_dataset_reads_ok_rows_of_the_split(manifest):
    train, val = _datasets(manifest, TrainConfig())
    assert (len(train), len(val)) == (4, 1)
    item = train[2]
    assert item["input"].shape == (3, 64, 64) and item["target"].shape == (1, 64, 64)
    assert item["input"].dtype == torch.float32
    assert train.times[2] == "2011-01-02T00:00:00.000"


def test_one_step_updates_both_networks(manifest, tmp_path):
    config = TrainConfig(**TINY)
    train, _ = _datasets(manifest, config)
    trainer = Trainer(config, train, tmp_path, device="cpu")
    before_G = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    before_D = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    batch = {k: v[None] for k, v in train[0].items() if k != "index"}
    losses = trainer.train_step(batch)
    assert set(losses) == {"loss_D", "loss_G", "loss_G_gan", "loss_G_fm"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    G, D = trainer.G.state_dict(), trainer.D.state_dict()
    # Conv biases before InstanceNorm get zero gradients, so check the weights.
    for key in ("model.1.weight", f"model.{len(trainer.G.model) - 1}.weight"):
        assert not torch.equal(G[key], before_G[key]), key
    for key in ("scales.0.blocks.0.0.weight", "scales.1.blocks.4.0.weight"):
        assert not torch.equal(D[key], before_D[key]), key
    assert trainer.step == 1


def test_step_with_the_correlation_loss_logs_it(manifest, tmp_path):
    config = TrainConfig(**{**TINY, "lambda_cc": 5.0, "n_cc": 2})
    train, _ = _datasets(manifest, config)
    trainer = Trainer(config, train, tmp_path, device="cpu")
    batch = {k: v[None] for k, v in train[0].items() if k != "index"}
    losses = trainer.train_step(batch)
    assert 0.0 <= losses["loss_G_cc"] <= 2.0
    assert losses["loss_G"] == pytest.approx(losses["loss_G_gan"] + 10.0 * losses["loss_G_fm"]
                                             + 5.0 * losses["loss_G_cc"], rel=1e-4)


def test_step_with_the_scale_term_logs_it_on_the_datas_disk_and_blocks(manifest, tmp_path):
    from farside_gan.core.conventions import Conventions
    from farside_gan.core.metrics import bin_factor_for
    from farside_gan.model.losses import scale_loss
    config = TrainConfig(**{**TINY, "lambda_scale": 2.0})
    train, _ = _datasets(manifest, config)
    trainer = Trainer(config, train, tmp_path, device="cpu")
    geometry = trainer.scale_geometry  # 64 px frames, R_SUN 28.125: blocks of 1 px
    assert geometry.bin_factor == bin_factor_for(64 * 450 / 1024) == 1
    assert torch.equal(geometry.disk, torch.from_numpy(trainer.conventions.disk_mask()))
    batch = {k: v[None] for k, v in train[0].items() if k != "index"}
    with torch.no_grad():
        expected = scale_loss(trainer.G(batch["input"]), batch["target"], geometry.disk, 1)
    losses = trainer.train_step(batch)
    assert losses["loss_G_scale"] == pytest.approx(expected.item(), rel=1e-6)
    assert losses["loss_G"] == pytest.approx(losses["loss_G_gan"] + 10.0 * losses["loss_G_fm"]
                                             + 2.0 * losses["loss_G_scale"], rel=1e-5)
    # at the benchmark's 512 px (R_SUN 225) the blocks are 4 px: the published 8 at 1024 px
    wide = Trainer(config, train, tmp_path / "wide", device="cpu",
                   conventions=Conventions(size=512, rsun_px=225.0, mask_radius=0.98))
    assert wide.scale_geometry.bin_factor == 4 and wide.scale_geometry.disk.shape == (512, 512)


def test_resumed_training_equals_uninterrupted(manifest, tmp_path, monkeypatch):
    """Crash in the 8th step (checkpoint at step 6, mid-epoch), resume: same weights and log."""
    config = TrainConfig(**TINY, epochs=2, epoch_decay=1, checkpoint_every=3, seed=3,
                         augment_rotation_deg=10.0, augment_translate_px=2.0)
    train, val = _datasets(manifest, config)
    Trainer(config, train, tmp_path / "a", val_set=val, device="cpu").fit()
    reference = torch.load(tmp_path / "a/checkpoints/latest.pt", weights_only=True)

    original = Trainer.train_step
    calls = {"n": 0}

    def crashing_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", crashing_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(config, train, tmp_path / "b", val_set=val, device="cpu").fit()
    assert torch.load(tmp_path / "b/checkpoints/latest.pt", weights_only=True)["step"] == 6
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = Trainer(config, train, tmp_path / "b", val_set=val, device="cpu")
    resumed.fit(resume=True)
    assert resumed.step == 8
    result = torch.load(tmp_path / "b/checkpoints/latest.pt", weights_only=True)
    # Bit for bit: the same process layout and thread count, deterministic CPU kernels, and the
    # checkpoint restores every state (weights, Adam's moments, RNG, the data order).
    for net in ("G", "D"):
        for key, value in reference[net].items():
            assert torch.equal(value, result[net][key]), (net, key)
    for opt in ("opt_G", "opt_D"):
        for pid, st in reference[opt]["state"].items():
            assert torch.equal(st["exp_avg_sq"], result[opt]["state"][pid]["exp_avg_sq"])

    def rows(path):
        with open(path) as fh:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]
    assert rows(tmp_path / "b/losses.csv") == rows(tmp_path / "a/losses.csv")
    assert [r["step"] for r in rows(tmp_path / "b/losses.csv")] == [str(s) for s in range(1, 9)]
    assert len(rows(tmp_path / "b/validation.csv")) == 2  # one per epoch, none duplicated


def test_corrupt_or_mismatched_checkpoint_names_the_file(manifest, tmp_path):
    config = TrainConfig(**TINY, epochs=1, epoch_decay=1, max_steps=1)
    train, _ = _datasets(manifest, config)
    Trainer(config, train, tmp_path, device="cpu").fit()
    latest = tmp_path / "checkpoints/latest.pt"

    other = Trainer(TrainConfig(**{**TINY, "ngf": 8}), train, tmp_path / "x", device="cpu")
    with pytest.raises(InputDataError, match=r"latest\.pt.*ngf: checkpoint 4 != config 8"):
        other.load_checkpoint(latest)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    fresh = Trainer(config, train, tmp_path / "y", device="cpu")
    for bad, problem in ((truncated, "corrupt"), (garbage, "corrupt"),
                         (foreign, "not a farside-gan checkpoint"),
                         (tmp_path / "missing.pt", "does not exist")):
        with pytest.raises(InputDataError, match=problem) as err:
            fresh.load_checkpoint(bad)
        assert err.value.path == str(bad)


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    assert [lr_factor(e, 4, 2) for e in range(4)] == pytest.approx([1, 1, 2 / 3, 1 / 3])
    assert lr_factor(4, 5, 5) == 1.0  # no decay epochs: constant
    assert [lr_factor(e, 4, 0) for e in range(4)] == pytest.approx([0.8, 0.6, 0.4, 0.2])


def test_train_cli_writes_generator_log_and_preview(manifest, tmp_path):
    out = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in {**TINY, "epochs": 1, "epoch_decay": 1, "preview_every": 2,
                                     "log_every": 2}.items()]
    args = ["train", "--manifest", str(manifest), "--out-dir", str(out), "--device", "cpu"]
    assert main(args + sum((["--set", s] for s in sets), [])) == 0
    for name in ("generator.pt", "checkpoints/latest.pt", "losses.csv", "validation.csv",
                 "previews/step_0000002.png", "previews/step_0000004.png"):
        assert (out / name).is_file(), name
    with open(out / "losses.csv") as fh:
        assert [r["step"] for r in csv.DictReader(fh)] == ["2", "4"]
    assert torch.load(out / "generator.pt", weights_only=True)["step"] == 4
    assert main(["train", "--manifest", str(tmp_path / "none.csv"), "--out-dir", str(out)]) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_uses_bf16_and_its_checkpoint_resumes_on_cpu(manifest, tmp_path):
    config = TrainConfig(**{**TINY, "num_threads": 0}, epochs=1, epoch_decay=1, max_steps=2)
    train, val = _datasets(manifest, config)
    trainer = Trainer(config, train, tmp_path, val_set=val, device="cuda")
    assert trainer.autocast_dtype == torch.bfloat16
    trainer.fit()
    conv_dtypes = set()
    hooks = [m.register_forward_hook(lambda m, i, out: conv_dtypes.add(out.dtype))
             for m in trainer.G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with trainer._autocast():
        trainer.G(train[0]["input"][None].cuda())
    for h in hooks:
        h.remove()
    # cuDNN's convs (here the transposed ones; this tiny model's convs are all few-channel)
    # run in bf16; the GEMM-form convs (compiled CUDA default) add their bias in fp32
    # (farside_gan.model.accel), so the generator's output map comes out fp32.
    assert torch.bfloat16 in conv_dtypes and conv_dtypes <= {torch.bfloat16, torch.float32}
    rows = list(csv.DictReader(open(tmp_path / "losses.csv")))
    assert all(torch.isfinite(torch.tensor(float(r["loss_G"]))) for r in rows)
    cpu = Trainer(TrainConfig(**TINY, epochs=1, epoch_decay=1), train, tmp_path, device="cpu")
    cpu.fit(resume=True)  # continues the CUDA run to the end of the epoch on the CPU
    assert cpu.step == 4 and cpu.autocast_dtype is None


def test_augmentation_moves_input_and_target_together(manifest):
    from farside_gan.training.data import Augmentation
    train = PairedFitsDataset.from_manifest(manifest, "train")
    item = train[0]
    image = item["input"]
    g = torch.Generator().manual_seed(0)
    moved_image, moved_target = Augmentation(30.0, 5.0).apply(image, image[:1].clone(), g)
    # the target was a copy of channel 0: it must still be one after the shared transform
    assert torch.equal(moved_target[0], moved_image[0])
    assert not torch.allclose(moved_image, image, atol=0.05)
    # a seeded epoch draws the same transform again; another epoch a different one
    aug = PairedFitsDataset.from_manifest(manifest, "train", augmentation=Augmentation(30.0, 5.0),
                                          seed=1)
    aug.set_epoch(3)
    first, again = aug[0]["input"], aug[0]["input"]
    aug.set_epoch(4)
    assert torch.equal(first, again) and not torch.equal(first, aug[0]["input"])
    # the identity transform changes nothing
    same, _ = Augmentation(0.0, 0.0).apply(image, image[:1], torch.Generator().manual_seed(0))
    assert torch.allclose(same, image, atol=1e-5)


# ---------------------------------------------------------------- the data's conventions

@pytest.fixture(scope="module")
def unusual_manifest(tmp_path_factory):
    """Pairs of non-default conventions: targets clipped at 2000 G, frames masked at 0.95 Rsun."""
    return write_manifest(tmp_path_factory.mktemp("unusual"), n_train=2, n_eval=2, n=64,
                          hmi_clip=2000.0, mask_radius=0.95)


def test_validation_scores_on_the_datas_disk_in_the_datas_gauss(unusual_manifest, tmp_path):
    """Trainer.validate reads MASKRAD/R_SUN and NORMCLIP from the files, not 0.98 and a
    TrainConfig default of 3000 G; the checkpoint records them."""
    import numpy as np

    from farside_gan.core.geometry import disk_mask
    from farside_gan.core.metrics import bin_image, bin_mask, pearson_cc, rmse
    config = TrainConfig(**TINY, bin_factor=2)
    train, val = _datasets(unusual_manifest, config)
    trainer = Trainer(config, train, tmp_path, val_set=val, device="cpu")
    c = trainer.conventions
    assert (c.size, c.mask_radius, c.hmi_clip) == (64, 0.95, 2000.0)
    assert c.rsun_px == pytest.approx(64 * 450 / 1024) and c.channels == (304, 193, 171)
    row = trainer.validate()
    disk = disk_mask(64, 64 * 450 / 1024, 0.95)
    expected = []
    with torch.no_grad():
        for i in range(len(val)):
            item = val[i]
            gen = trainer.G(item["input"][None]).clamp(-1, 1)[0, 0].numpy() * 2000.0
            real = item["target"][0].numpy() * 2000.0
            gen = np.where(disk, gen, 0.0)
            expected.append((pearson_cc(gen, real, disk),
                             pearson_cc(bin_image(gen, 2), bin_image(real, 2), bin_mask(disk, 2)),
                             rmse(gen, real, disk)))
    cc, ccb, err = (float(np.mean(v)) for v in zip(*expected))
    assert row["n"] == 2
    assert (row["cc"], row["cc_binned"], row["rmse"]) == pytest.approx((cc, ccb, err), rel=1e-5)
    checkpoint = torch.load(trainer.save_checkpoint(), weights_only=True)
    assert checkpoint["conventions"]["hmi_clip"] == 2000.0
    assert checkpoint["conventions"]["mask_radius"] == 0.95
    assert "hmi_clip" not in checkpoint["config"]  # one source: the data


def test_training_files_of_different_conventions_are_refused_naming_one(tmp_path):
    from astropy.io import fits
    manifest = write_manifest(tmp_path, n_train=3, n_eval=0, n=64)
    with fits.open(tmp_path / "pairs/target_002.fits", mode="update") as hdul:
        hdul[0].header["NORMCLIP"] = 2000.0
    train = PairedFitsDataset.from_manifest(manifest, "train")
    with pytest.raises(InputDataError, match="target_002.fits: frame conventions differ: "
                       r"hmi_clip \(NORMCLIP\) 2000, the first target .*target_000.fits 3000") as err:
        Trainer(TrainConfig(**TINY), train, tmp_path / "run", device="cpu").fit()
    assert err.value.reason == "convention_mismatch"
    assert not (tmp_path / "run/generator.pt").exists()


def test_train_checks_the_configured_conventions_against_the_files(unusual_manifest, tmp_path,
                                                                   capsys):
    """The workflow passes image: and normalize: as --expect; data prepared otherwise stop the
    run naming a file."""
    args = ["train", "--manifest", str(unusual_manifest), "--out-dir", str(tmp_path / "run"),
            "--device", "cpu", "--set", "epochs=1", "--set", "epoch_decay=1", "--set", "ngf=4",
            "--set", "ndf=4", "--set", "n_downsample=2", "--set", "n_residual=1",
            "--set", "progress=false", "--set", "num_threads=1"]
    assert main(args + ["--expect", "hmi_clip=3000", "--expect", "mask_radius=0.95"]) == 1
    err = capsys.readouterr().err
    assert "target_000.fits: frame conventions differ: hmi_clip (NORMCLIP) 2000, the " \
        "configuration 3000" in err
    assert main(args + ["--expect", "mask_radius=0.98"]) == 1
    assert "stack_000.fits: frame conventions differ: mask_radius (MASKRAD) 0.95, the " \
        "configuration 0.98" in capsys.readouterr().err
    assert not (tmp_path / "run/generator.pt").exists()
    assert main(args + ["--expect", "hmi_clip=2000", "--expect", "mask_radius=0.95",
                        "--expect", "size=64", "--expect", "euv_clip=1,200"]) == 0
    assert (tmp_path / "run/generator.pt").exists()
