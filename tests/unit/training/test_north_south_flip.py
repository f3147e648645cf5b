"""The north-south flip with a sign flip (``training.augment_ns_flip``): it mirrors the frame's
solar north and south (read from the frame's WCS), keeps Hale's law, Joy's law and the polar
fields of a Sun, where an east-west flip would not; it is drawn per (seed, epoch, sample) after
the rotation and shift, and with the flip off the augmentation draws what it drew before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.wcs import WCS
from helpers.model import target_header, write_manifest

from farside_gan.training.data import Augmentation, PairedFitsDataset, flip_north_south

N = 64


def solar_coordinates(n: int = N):
    """Helioprojective longitude and latitude (arcsec) of every pixel, from a target's WCS as
    align writes it (north up): (Tx, Ty) arrays indexed [row, column]."""
    wcs = WCS(target_header(n, "2012-06-01T00:00:00.000"))
    rows, cols = np.indices((n, n))
    tx, ty = wcs.pixel_to_world_values(cols, rows)  # degrees, longitude in [0, 360)
    return (np.asarray(tx) + 180) % 360 * 3600 - 180 * 3600, np.asarray(ty) * 3600


def sun_of_a_cycle(n: int = N) -> np.ndarray:
    """A line-of-sight field (normalized units) of one cycle, placed with the WCS: a bipole in
    each hemisphere obeying Hale's law (northern leading polarity negative, southern positive;
    leading = west, +Tx) and Joy's law (the leading polarity nearer the equator), and polar caps
    of opposite signs (north +, south -)."""
    tx, ty = solar_coordinates(n)
    field = np.zeros((n, n))

    def blob(x, y, value):
        nonlocal field
        field += value * np.exp(-((tx - x) ** 2 + (ty - y) ** 2) / (2 * 60.0 ** 2))

    for hemisphere, lead in ((1, -0.8), (-1, 0.8)):
        blob(200, hemisphere * 250, lead)            # leading: west, nearer the equator
        blob(-150, hemisphere * 350, -lead)          # following: east, further from it
    field += np.where(ty > 800, 0.1, 0.0) - np.where(ty < -800, 0.1, 0.0)
    return field


def laws(field: np.ndarray) -> dict:
    """Per hemisphere: the leading polarity's sign (of the field-weighted mean Tx of the
    region's pixels: west-heavy positive field means a positive leader), whether the leading
    polarity lies nearer the equator, and the polar cap's sign."""
    tx, ty = solar_coordinates(field.shape[0])
    out = {}
    for name, side in (("north", ty > 0), ("south", ty < 0)):
        region = side & (np.abs(ty) < 600) & (np.abs(field) > 0.2)
        lead_sign = np.sign((field * tx)[region].sum())
        positive, negative = region & (field > 0), region & (field < 0)
        lead, follow = (positive, negative) if lead_sign > 0 else (negative, positive)
        out[name] = {"leading_sign": lead_sign,
                     "joy": np.abs(ty[lead]).mean() < np.abs(ty[follow]).mean(),
                     "polar_sign": np.sign(field[side & (np.abs(ty) > 800)].sum())}
    return out


def test_the_flip_keeps_hale_joy_and_the_polar_fields_where_an_east_west_flip_does_not():
    field = sun_of_a_cycle()
    cycle = laws(field)
    assert cycle == {"north": {"leading_sign": -1, "joy": True, "polar_sign": 1},
                     "south": {"leading_sign": 1, "joy": True, "polar_sign": -1}}
    image = torch.from_numpy(np.stack([np.abs(field)] * 3)).float()
    target = torch.from_numpy(field).float()[None]
    flipped_image, flipped_target = flip_north_south(image, target)
    assert laws(flipped_target[0].double().numpy()) == cycle
    # the rows are solar y (north up): the image is mirrored about the equator, unsigned
    assert torch.equal(flipped_image, image.flip(-2))
    assert torch.equal(flipped_target, -target.flip(-2))
    # the controls: without the sign flip Hale's law is reversed in both hemispheres; an
    # east-west flip (columns) reverses it too, and with the sign flipped it breaks Joy's
    # law and gives each pole the other sign
    mirrored = laws(field[::-1].copy())
    assert [mirrored[h]["leading_sign"] for h in ("north", "south")] == [1, -1]
    east_west = laws(field[:, ::-1].copy())
    assert [east_west[h]["leading_sign"] for h in ("north", "south")] == [1, -1]
    negated = laws(-field[:, ::-1])
    assert [negated[h]["leading_sign"] for h in ("north", "south")] == [-1, 1]
    assert not negated["north"]["joy"] and not negated["south"]["joy"]
    assert [negated[h]["polar_sign"] for h in ("north", "south")] == [-1, 1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("flip"), n_train=8, n_eval=0, n=N)


def test_the_flip_is_drawn_per_seed_epoch_and_sample_with_probability_one_half(manifest):
    plain = PairedFitsDataset.from_manifest(manifest, "train")
    flipping = PairedFitsDataset.from_manifest(manifest, "train", seed=5,
                                               augmentation=Augmentation(ns_flip=True))
    draws = []
    for epoch in range(8):
        flipping.set_epoch(epoch)
        for i in range(len(plain)):
            item, original = flipping[i], plain[i]
            flipped = not torch.equal(item["target"], original["target"])
            expected = flip_north_south(original["input"], original["target"]) if flipped \
                else (original["input"], original["target"])
            assert torch.equal(item["input"], expected[0])
            assert torch.equal(item["target"], expected[1])
            draws.append(flipped)
    # 64 fair coins: 32 +- 4 expected; this seed's (a fixed result) must lie within 3 sigma
    assert 20 <= sum(draws) <= 44, sum(draws)
    flipping.set_epoch(3)
    again = [not torch.equal(flipping[i]["target"], plain[i]["target"]) for i in range(8)]
    assert again == draws[24:32]  # the same (seed, epoch, sample), the same draw
    other_seed = PairedFitsDataset.from_manifest(manifest, "train", seed=6,
                                                 augmentation=Augmentation(ns_flip=True))
    other = []
    for epoch in range(8):
        other_seed.set_epoch(epoch)
        other += [not torch.equal(other_seed[i]["target"], plain[i]["target"]) for i in range(8)]
    assert other != draws


def test_the_flip_composes_with_rotation_and_shift_and_off_changes_nothing_drawn(manifest):
    """The rigid transform draws first (three numbers, as without the flip), then the coin:
    with the flip on, an item is the rigid-only item, flipped or not."""
    rigid = PairedFitsDataset.from_manifest(manifest, "train", seed=2,
                                            augmentation=Augmentation(20.0, 3.0))
    both = PairedFitsDataset.from_manifest(manifest, "train", seed=2,
                                           augmentation=Augmentation(20.0, 3.0, ns_flip=True))
    flips = 0
    for i in range(len(rigid)):
        moved, item = rigid[i], both[i]
        flipped = not torch.equal(item["target"], moved["target"])
        flips += flipped
        expected = flip_north_south(moved["input"], moved["target"]) if flipped \
            else (moved["input"], moved["target"])
        assert torch.equal(item["input"], expected[0]) and torch.equal(item["target"], expected[1])
    assert 0 < flips < len(rigid)
    assert not both.reads_into and Augmentation(ns_flip=True).active
    assert not Augmentation().active and not Augmentation(ns_flip=False).rigid


def test_train_gives_the_setting_to_the_training_data_only(tmp_path, monkeypatch):
    """training.augment_ns_flip reaches the training set's augmentation (after any rotation and
    shift); validation data are never augmented."""
    from farside_gan.training import trainer as trainer_module

    seen = {}

    def record(self, resume=True):
        seen["train"], seen["val"] = self.train_set.augmentation, self.val_set
        return tmp_path / "generator.pt"

    monkeypatch.setattr(trainer_module.Trainer, "fit", record)
    config = trainer_module.TrainConfig(ngf=4, ndf=4, n_downsample=2, n_residual=1,
                                        augment_ns_flip=True, augment_rotation_deg=3.0)
    manifest = write_manifest(tmp_path / "pairs", n_train=2, n_eval=1, n=N)
    trainer_module.train(config, tmp_path, manifest=manifest, device="cpu")
    assert seen["train"] == Augmentation(3.0, 0.0, ns_flip=True)
    assert not seen["val"].augmentation.active
