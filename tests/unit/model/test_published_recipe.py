"""The published recipe (config/published.yaml, Pix2PixHD as Jeong et al. 2020 trained it) stays
available whatever the defaults become: merged over any configuration it gives the paper's
settings, the published networks and the published objective (LSGAN + 10 x feature matching,
nothing else)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from helpers.model import write_manifest

from farside_gan.config.training import TrainConfig
from farside_gan.config.workflow import load_config, train_config
from farside_gan.model import count_parameters
from farside_gan.model.checkpoint import build_networks
from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[3]
PUBLISHED = REPO / "config" / "published.yaml"
#: The reference implementation's options and training loop (Jeong et al. 2020), restated here
#: so that a change of the file is a change this test sees.
RECIPE = {
    "in_channels": 3, "out_channels": 1, "ngf": 32, "ndf": 64, "n_downsample": 4,
    "n_residual": 9, "n_D": 2, "n_layers_D": 3, "norm": "instance", "padding": "reflection",
    "epochs": 150, "epoch_decay": 100, "batch_size": 1, "lr": 2e-4, "beta1": 0.5,
    "beta2": 0.999, "init_std": 0.02, "lambda_fm": 10.0,
    # none of what came later: the correlation loss, the scale term, the flip, the average
    "lambda_cc": 0.0, "n_cc": 4, "lambda_scale": 0.0, "augment_rotation_deg": 0.0,
    "augment_translate_px": 0.0, "augment_ns_flip": False, "ema_decay": 0.0,
}
#: TrainConfig settings that are not the recipe's, besides TrainConfig.RUNTIME_FIELDS: the
#: seed (results are compared over several), the precision (a speed setting on the GPU) and
#: the validation's binning (it scores, it does not train).
NOT_RECIPE = {"seed", "mixed_precision", "bin_factor"}
#: A configuration whose defaults have all moved away from the paper.
MOVED = {"model": {"ngf": 64, "ndf": 32, "n_downsample": 3, "n_residual": 6, "n_D": 3,
                   "n_layers_D": 4, "norm": "batch", "padding": "zero"},
         "training": {"epochs": 300, "epoch_decay": 200, "batch_size": 8, "lr": 0.000566,
                      "beta1": 0.9, "beta2": 0.99, "init_std": 0.01, "lambda_fm": 5.0,
                      "lambda_cc": 5.0, "n_cc": 3, "lambda_scale": 2.0,
                      "augment_rotation_deg": 5.0, "augment_translate_px": 4.0,
                      "augment_ns_flip": True, "ema_decay": 0.999}}


def test_the_file_sets_every_setting_that_changes_what_training_computes():
    """A setting added to TrainConfig later must get its published value here, or the recipe
    would follow that setting's default."""
    document = yaml.safe_load(PUBLISHED.read_text())
    assert set(document) == {"model", "training"}  # the data stay the configuration's
    named = {**document["model"], **document["training"]}
    settings = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(named) == settings - set(TrainConfig.RUNTIME_FIELDS) - NOT_RECIPE
    assert named == RECIPE


@pytest.mark.parametrize("base", ["config.yaml", "benchmark.yaml", "demo.yaml", "moved"])
def test_over_any_configuration_it_is_the_recipe(base, tmp_path):
    if base == "moved":
        path = tmp_path / "moved.yaml"
        document = yaml.safe_load((REPO / "config" / "benchmark.yaml").read_text())
        for section, values in MOVED.items():
            document[section] = {**document.get(section, {}), **values}
        path.write_text(yaml.safe_dump(document))
        assert all(getattr(train_config(load_config([path])), k) != v for k, v in RECIPE.items()
                   if k not in ("in_channels", "out_channels"))
    else:
        path = REPO / "config" / base
    config = load_config([path, PUBLISHED])
    recipe = train_config(config)
    assert {k: getattr(recipe, k) for k in RECIPE} == RECIPE
    assert config["image"] == load_config([path])["image"]  # the data are the base's


def test_it_builds_the_published_networks_and_objective(tmp_path):
    """45,617,729 + 5,531,522 parameters, and one step of the trainer computes the least-squares
    GAN loss + 10 x feature matching and no other term, averages no weights (the step on
    smaller networks: the objective does not depend on their size)."""
    config = train_config(load_config([REPO / "config" / "config.yaml", PUBLISHED]))
    G, D = build_networks(config)
    assert (count_parameters(G), count_parameters(D)) == (45_617_729, 5_531_522)
    manifest = write_manifest(tmp_path / "pairs", n_train=1, n_eval=0, n=64)
    config = dataclasses.replace(config, ngf=4, ndf=4, n_downsample=2, n_residual=1,
                                 num_threads=1, progress=False, preview_every=0)
    train = PairedFitsDataset.from_manifest(manifest, "train")
    trainer = Trainer(config, train, tmp_path / "run", device="cpu")
    assert trainer.ema is None and not trainer.single_d_pass  # the reference code's three D passes
    batch = {k: v[None] for k, v in train[0].items() if k != "index"}
    losses = trainer.train_step(batch)
    assert set(losses) == {"loss_D", "loss_G", "loss_G_gan", "loss_G_fm"}
    assert losses["loss_G"] == pytest.approx(losses["loss_G_gan"] + 10.0 * losses["loss_G_fm"],
                                             rel=1e-6)
    assert trainer.generator is trainer.G and torch.isfinite(torch.tensor(losses["loss_D"]))
