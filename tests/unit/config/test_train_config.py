"""TrainConfig (``farside_gan.config.training``): settings from the YAML sections model: and
training:, overrides as key=value, refused when unknown, of the wrong type or inconsistent."""

from __future__ import annotations

import pytest

from farside_gan.config.training import TrainConfig


def test_config_from_yaml_sections_and_overrides(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  ngf: 16\n  n_residual: 3\ntraining:\n  epochs: 20\n"
                    "  epoch_decay: 10\n  lr: 1.0e-4\n  augment_rotation_deg: 5\n"
                    "other:\n  ngf: 99\n")
    config = TrainConfig.from_yaml(path)
    assert (config.ngf, config.n_residual, config.epochs, config.lr) == (16, 3, 20, 1e-4)
    assert config.augment_rotation_deg == 5.0 and config.ndf == 64
    config = config.with_overrides(["epochs=30", "lr=5e-5", "progress=false", "norm=batch"])
    assert (config.epochs, config.lr, config.progress, config.norm) == (30, 5e-5, False, "batch")
    with pytest.raises(ValueError, match="key one of"):
        config.with_overrides(["epoch=3"])
    with pytest.raises(ValueError, match="integer"):
        config.with_overrides(["epochs=2.5"])
    with pytest.raises(ValueError, match="epoch_decay"):
        config.with_overrides(["epochs=5"])


def test_the_levers_are_off_by_default_and_read_from_the_training_section(tmp_path):
    config = TrainConfig()
    assert (config.lambda_scale, config.augment_ns_flip, config.ema_decay) == (0.0, False, 0.0)
    path = tmp_path / "config.yaml"
    path.write_text("training:\n  lambda_scale: 2\n  augment_ns_flip: true\n  ema_decay: 0.999\n")
    config = TrainConfig.from_yaml(path)
    assert (config.lambda_scale, config.augment_ns_flip, config.ema_decay) == (2.0, True, 0.999)
    assert config.with_overrides(["augment_ns_flip=false"]).augment_ns_flip is False
    for bad in ("ema_decay=1", "ema_decay=-0.1"):
        with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
            config.with_overrides([bad])


def test_a_setting_a_checkpoint_lacks_counts_as_its_default():
    """A checkpoint made before a setting existed was made with the behaviour its default
    gives: it resumes under the default and not under another value."""
    saved = TrainConfig().to_dict()
    del saved["ema_decay"], saved["lambda_scale"]
    assert TrainConfig().resume_differences(saved) == []
    assert TrainConfig(ema_decay=0.99).resume_differences(saved) == [
        "ema_decay: checkpoint 0.0 != config 0.99"]
