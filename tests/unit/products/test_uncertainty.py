"""Per-pixel uncertainty from an ensemble of generators (farside_gan.products.uncertainty, predict)."""

from __future__ import annotations

import numpy as np
import pytest
import sunpy.map
import torch
from astropy.io import fits
from helpers.model import write_pair

from farside_gan.cli import main
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import sha256_of
from farside_gan.core.geometry import disk_mask
from farside_gan.products.inference import predict
from farside_gan.products.uncertainty import (ONE_SIGMA, calibration_factor, ensemble_std,
                                              read_uncertainty, snapshot_members,
                                              within_sigma_fraction)
from farside_gan.training.data import PairedFitsDataset
from farside_gan.training.trainer import TrainConfig, Trainer

TINY = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, progress=False, num_threads=1)


def test_ensemble_std_is_zero_for_identical_members_and_grows_with_their_spread():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 300, (16, 16))
    assert np.all(ensemble_std(np.stack([base] * 4)) == 0)
    spread = rng.normal(0, 1, (4, 16, 16))
    sigmas = [ensemble_std(base + k * spread) for k in (1.0, 2.0, 5.0)]
    np.testing.assert_allclose(sigmas[1], 2 * sigmas[0], rtol=1e-5)
    np.testing.assert_allclose(sigmas[2], 5 * sigmas[0], rtol=1e-5)
    assert ensemble_std(np.array([[0.0], [2.0]]))[0] == pytest.approx(np.sqrt(2))  # ddof 1
    members = np.stack([base] * 3)
    members[1, 0, 0] = np.nan
    assert np.isnan(ensemble_std(members)[0, 0]) and ensemble_std(members)[0, 1] == 0
    with pytest.raises(ValueError, match="at least 2"):
        ensemble_std(base[None])


def test_calibration_measures_a_gaussian_error_against_its_sigma():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(5, 50, 200_000)
    error = rng.normal(0, sigma)
    assert within_sigma_fraction(error, sigma) == pytest.approx(ONE_SIGMA, abs=0.005)
    assert within_sigma_fraction(error, sigma / 2) == pytest.approx(0.383, abs=0.005)
    assert calibration_factor(error, sigma / 2) == pytest.approx(2.0, rel=0.02)
    assert calibration_factor(error, sigma) == pytest.approx(1.0, rel=0.02)
    mask = np.zeros(sigma.shape, bool)
    assert np.isnan(within_sigma_fraction(error, sigma, mask=mask))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny run: generator.pt (epoch 3) and checkpoints/epoch_0001..0003.pt, each generator
    different (weights perturbed as training would)."""
    d = tmp_path_factory.mktemp("ens")
    stack, target, _ = write_pair(d, 0, 64)
    trainer = Trainer(TrainConfig(**TINY), PairedFitsDataset([(stack, target)]), d / "run",
                      device="cpu")
    generator = torch.Generator().manual_seed(0)
    for epoch in (1, 2, 3):
        with torch.no_grad():
            for p in trainer.G.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
        trainer.epoch, trainer.step = epoch, 10 * epoch
        trainer.save_checkpoint(trainer.state_dir / f"epoch_{epoch:04d}.pt")
    trainer.save_generator()
    return d / "run"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    d = tmp_path_factory.mktemp("euvi")
    return [write_pair(d, i, 64, instrument="euvi_a")[0] for i in range(2)]


def test_snapshot_members_are_the_generator_and_the_latest_earlier_checkpoints(run_dir):
    members = snapshot_members(run_dir / "generator.pt", 3)
    assert [p.name for p in members] == ["generator.pt", "epoch_0002.pt", "epoch_0001.pt"]
    with pytest.raises(InputDataError, match="checkpoints.*2 kept checkpoints.*needs 3"):
        snapshot_members(run_dir / "generator.pt", 4)


def test_predict_with_an_ensemble_writes_the_uncertainty_extension(run_dir, stacks, tmp_path):
    generator = run_dir / "generator.pt"
    plain = predict(generator, stacks, tmp_path / "plain", device="cpu")
    same = predict(generator, stacks, tmp_path / "same", device="cpu", ensemble=[generator])
    spread = predict(generator, stacks, tmp_path / "spread", device="cpu",
                     ensemble=snapshot_members(generator, 3)[1:])
    # the map is the final generator's either way; the ensemble adds extensions
    np.testing.assert_array_equal(fits.getdata(plain[0]), fits.getdata(spread[0]))
    assert read_uncertainty(plain[0]) is None
    sigma = read_uncertainty(spread[0])
    header = fits.getheader(spread[0])
    disk = disk_mask(64, header["RSUN_OBS"] / header["CDELT1"], header["MASKRAD"])
    assert np.all(read_uncertainty(same[0])[disk] == 0)
    # off the disk NaN, as the map itself
    assert np.all(np.isnan(sigma[~disk])) and np.all(sigma[disk] >= 0) and sigma[disk].mean() > 1.0
    with fits.open(spread[0]) as hdul:
        assert hdul["UNCERTAINTY"].header["BUNIT"] == "Gauss"
        assert hdul["UNCERTAINTY"].header["UNCN"] == 3 and header["UNCEXT"] == "UNCERTAINTY"
        table = hdul["ENSEMBLE"].data
        assert list(table["FILE"]) == ["generator.pt", "epoch_0002.pt", "epoch_0001.pt"]
        assert list(table["EPOCH"]) == [3, 2, 1]
        assert table["SHA256"][1] == sha256_of(run_dir / "checkpoints" / "epoch_0002.pt")
    # sunpy: the field alone, or field and uncertainty as two maps on the same grid
    field, sigma_map = sunpy.map.Map(spread[0])
    assert sigma_map.unit == field.unit and sigma_map.wcs.wcs.compare(field.wcs.wcs)
    assert sunpy.map.Map(spread[0], hdus=0).meta["bunit"] == "Gauss"


def test_wider_snapshot_spread_gives_larger_uncertainty(run_dir, stacks, tmp_path):
    """Members further apart in training (epoch 1 against 2) spread more."""
    generator = run_dir / "generator.pt"
    near = predict(generator, stacks[:1], tmp_path / "near", device="cpu",
                   ensemble=[run_dir / "checkpoints/epoch_0002.pt"])
    far = predict(generator, stacks[:1], tmp_path / "far", device="cpu",
                  ensemble=[run_dir / "checkpoints/epoch_0001.pt"])
    assert np.nanmean(read_uncertainty(far[0])) > np.nanmean(read_uncertainty(near[0])) > 0


def test_predict_cli_ensemble_options(run_dir, stacks, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["predict", "--checkpoint", str(run_dir / "generator.pt"), "--out-dir", str(out),
                 "--device", "cpu", "--ensemble-members", "2", *map(str, stacks)]) == 0
    with fits.open(next(out.glob("*.fits"))) as hdul:
        assert list(hdul["ENSEMBLE"].data["FILE"]) == ["generator.pt", "epoch_0002.pt"]
    with pytest.raises(SystemExit, match="0 \\(none\\) or at least 2"):
        main(["predict", "--checkpoint", str(run_dir / "generator.pt"), "--out-dir", str(out),
              "--ensemble-members", "1", *map(str, stacks)])
    assert main(["predict", "--checkpoint", str(run_dir / "generator.pt"), "--out-dir", str(out),
                 "--device", "cpu", "--ensemble-members", "5", *map(str, stacks)]) == 1
    assert "needs 4" in capsys.readouterr().err


def test_calibration_factor_fitted_on_map_pairs_and_applied_to_the_synchronic_map(tmp_path):
    """Truths that differ from the maps by twice their sigma (Gaussian): the fitted factor is 2;
    the synchronic map's uncertainty is the merged sigma times it, the file in its provenance."""
    import json
    from datetime import datetime

    from helpers.synchronic import blob, write_map

    from farside_gan.core.fitsio import write_fits
    from farside_gan.products.synchronic import SynchronicSettings, synchronic_map
    from farside_gan.products.uncertainty import read_calibration
    from farside_gan.products.uncertainty_calibration import fit_calibration

    t = datetime(2011, 1, 31)
    rng = np.random.default_rng(3)
    (tmp_path / "maps").mkdir()
    (tmp_path / "truth").mkdir()
    for i, role in enumerate(("stereo_a", "stereo_b")):
        path = write_map(tmp_path / "maps" / f"{i}.fits", role, t, blob(100.0, 10.0), size=96,
                         sigma=25.0)
        data, header = fits.getdata(path), fits.getheader(path)
        write_fits(tmp_path / "truth" / f"{i}.fits",
                   (data + rng.normal(0, 50.0, data.shape)).astype(np.float32), header)
    write_map(tmp_path / "maps" / "no_truth.fits", "stereo_a", t, blob(0.0, 0.0), sigma=25.0)
    # on the maps' own pixels the factor is the truth's: 2
    assert main(["calibrate-uncertainty", "--pair", str(tmp_path / "maps"),
                 str(tmp_path / "truth"), "--out", str(tmp_path / "pixels.json"),
                 "--no-grid"]) == 0
    result = json.loads((tmp_path / "pixels.json").read_text())
    assert result["factor"] == pytest.approx(2.0, rel=0.03) and result["maps"] == 2
    assert result["within_1sigma_raw"] == pytest.approx(0.383, abs=0.02)  # 10^4 pixels
    assert result["grid"] is None and read_calibration(tmp_path / "pixels.json") == result["factor"]
    # on a 4-degree grid the reprojection averages the independent pixel errors down, not sigma
    settings = SynchronicSettings(projection="CAR", pixels=(90, 45))
    assert main(["calibrate-uncertainty", "--pair", str(tmp_path / "maps"),
                 str(tmp_path / "truth"), "--out", str(tmp_path / "cal.json"),
                 "--projection", "CAR", "--pixels", "90", "45"]) == 0
    result = json.loads((tmp_path / "cal.json").read_text())
    assert result["grid"]["pixels"] == [90, 45] and result["factor"] < 1.0
    with pytest.raises(InputDataError, match="cal.json.*fitted on the grid"):
        read_calibration(tmp_path / "cal.json", SynchronicSettings())
    inputs = {"stereo_a": tmp_path / "maps" / "0.fits"}
    raw, _, _ = synchronic_map(t, inputs, settings)
    calibrated, header, extensions = synchronic_map(t, inputs, settings, tmp_path / "cal.json")
    np.testing.assert_allclose(calibrated["sigma"], raw["sigma"] * result["factor"], rtol=1e-6)
    np.testing.assert_array_equal(calibrated["field"], raw["field"])
    assert header["UNCCALF"] == pytest.approx(result["factor"])
    [prov] = [e for e in extensions if e.name == "PROVENANCE"]
    assert list(prov.data["ROLE"]) == ["stereo_a", "calibration"]
    assert prov.data["SHA256"][1] == sha256_of(tmp_path / "cal.json")
    with pytest.raises(InputDataError, match="UNCERTAINTY"):
        fit_calibration([(tmp_path / "truth" / "0.fits", tmp_path / "truth" / "1.fits")])
