import csv

import numpy as np
import pytest
from helpers.model import celestial_header, write_pair

from farside_gan.cli import main
from farside_gan.core import metrics
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import write_fits
from farside_gan.core.geometry import disk_mask
from farside_gan.evaluation.evaluate import evaluate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Three targets (normalized HMI) and predictions in Gauss: exact, half, and sign-flipped."""
    d = tmp_path_factory.mktemp("eval")
    targets, predictions, truths = [], [], []
    for i, scale in enumerate((1.0, 0.5, -1.0)):
        _, target, field = write_pair(d, i, 64)
        header = celestial_header(64, f"2011-01-{1 + i // 2:02d}T{12 * (i % 2):02d}:00:05")
        header["BUNIT"] = "Gauss"
        header["MASKRAD"] = 0.98
        predictions.append(write_fits(d / f"pred_{i}.fits", (scale * field).astype(np.float32),
                                      header))
        targets.append(target)
        truths.append(field)
    return predictions, targets, truths


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_evaluate_writes_table_and_plots_with_expected_values(pairs, tmp_path):
    predictions, targets, truths = pairs
    # targets given in another order: pairing goes by DATE-OBS (5 s apart here)
    evaluate(predictions, targets[::-1], tmp_path, bin_factor=2, ar_threshold=100.0, max_maps=2)
    rows = _rows(tmp_path / "metrics.csv")
    assert [r["prediction"] for r in rows] == ["pred_0.fits", "pred_1.fits", "pred_2.fits"]
    assert [r["target"] for r in rows] == ["target_000.fits", "target_001.fits", "target_002.fits"]
    exact, half, flipped = rows
    assert float(exact["cc"]) == pytest.approx(1.0) and float(exact["rmse"]) == pytest.approx(0, abs=0.1)
    assert float(half["cc_binned"]) == pytest.approx(1.0)
    assert float(flipped["cc_binned"]) == pytest.approx(-1.0) and float(flipped["cc_ar"]) == pytest.approx(-1.0)
    # flux in Mx: sum |B| over the disk x the pixel area at DSUN_OBS (from the header)
    rsun_px = 960.0 / celestial_header(64, "2011-01-01")["CDELT1"]
    disk = disk_mask(64, rsun_px)
    area = metrics.pixel_area_cm2(celestial_header(64, "2011-01-01"))
    assert exact["flux_unit"] == "Mx"
    expected = np.abs(truths[1][disk]).sum() * area
    assert float(half["unsigned_flux_real"]) == pytest.approx(expected, rel=1e-4)
    assert float(half["unsigned_flux_generated"]) == pytest.approx(expected / 2, rel=1e-4)
    assert float(flipped["net_flux_generated"]) == pytest.approx(-float(flipped["net_flux_real"]),
                                                                 rel=1e-4, abs=1e10)
    assert float(flipped["net_flux_error"]) == pytest.approx(
        2 * abs(float(flipped["net_flux_real"])) / float(flipped["unsigned_flux_real"]), rel=1e-4)
    assert float(exact["net_flux_error"]) == pytest.approx(0.0, abs=1e-6)
    # an HMI target has no ceiling and no region table
    assert exact["anti_hale"] == "" and exact["ceiling_cc_binned"] == "nan"
    n_bands = sum(int(exact[f"n_mu_{band}"]) for band in ("centre", "middle", "limb"))
    assert n_bands == int(exact["n_binned"])
    # three maps: the weakest, the median (on the 50% edge: 3rd quartile), the strongest
    assert sorted(r["flux_quartile"] for r in rows) == ["1", "3", "4"]
    summary = {(r["subset"], r["metric"]): r for r in _rows(tmp_path / "summary.csv")}
    assert {(r["side"], r["observer"], r["truth"]) for r in _rows(tmp_path / "summary.csv")} == {
        ("nearside", "sdo", "hmi")}
    assert {subset for subset, _ in summary} == {"all"}  # clean/anti-Hale need a region table
    cc = summary[("all", "cc_binned")]
    assert (cc["counted"], cc["n"], cc["n_blocks"]) == ("maps", "3", "1")
    assert float(cc["mean"]) == pytest.approx(1 / 3)
    assert float(cc["median"]) == pytest.approx(1.0)
    assert cc["ci_low"] == cc["ci_high"] == "nan"  # one block of two weeks: no interval
    # the mean of the per-map ratios: 1, 0.5, 1
    assert float(summary[("all", "unsigned_flux_ratio")]["mean"]) == pytest.approx(2.5 / 3,
                                                                                  rel=1e-5)
    assert float(summary[("all", "unsigned_flux_within_10pct")]["mean"]) == pytest.approx(2 / 3)
    leading = summary[("all", "leading_right_fraction")]
    assert leading["counted"] == "region-maps"
    assert int(leading["n"]) == sum(int(r["n_leading"]) for r in rows)
    maps = sorted((tmp_path / "maps").glob("*.png"))
    assert len(maps) == 2 and all(m.name.startswith("nearside_sdo_hmi_") for m in maps)  # max_maps
    for path in [tmp_path / "scatter.png", tmp_path / "flux.png", *maps]:
        assert path.read_bytes()[:8] == PNG, path


def test_evaluate_cli_and_unpaired_prediction(pairs, tmp_path):
    predictions, targets, _ = pairs
    assert main(["evaluate", "--predictions", *map(str, predictions), "--targets",
                 *map(str, targets), "--out-dir", str(tmp_path), "--ar-threshold", "200",
                 "--bin", "4"]) == 0
    assert len(_rows(tmp_path / "metrics.csv")) == 3
    with pytest.raises(InputDataError, match="pred_2.fits: no target within 60 s"):
        evaluate(predictions, targets[:2], tmp_path / "x", tolerance_s=60)
    assert not (tmp_path / "x").exists()  # nothing partial


def test_evaluate_needs_to_know_the_target_units(pairs, tmp_path):
    predictions, _, truths = pairs
    unknown = write_fits(tmp_path / "t.fits", truths[0].astype(np.float32),
                         celestial_header(64, "2011-01-01T00:00:00"))
    with pytest.raises(InputDataError, match="t.fits.*NORMCLIP"):
        evaluate(predictions[:1], [unknown], tmp_path / "x")
    header = celestial_header(64, "2011-01-01T00:00:00")
    header["BUNIT"] = "Mx/cm^2"  # as JSOC writes HMI magnetograms
    hmi = write_fits(tmp_path / "hmi.fits", truths[0].astype(np.float32), header)
    evaluate(predictions[:1], [hmi], tmp_path / "y")
    assert float(_rows(tmp_path / "y/metrics.csv")[0]["cc"]) == pytest.approx(1.0)


def test_a_constant_prediction_fails_the_evaluation_naming_it_and_writes_nothing(pairs, tmp_path):
    """evaluate refuses a prediction it cannot score (CC = NaN) naming it, instead of exiting 0
    with a NaN in the table, and leaves no table and no partial plots."""
    from astropy.io import fits
    predictions, targets, _ = pairs
    header = fits.getheader(predictions[1])
    flat = write_fits(tmp_path / "flat.fits", np.zeros((64, 64), np.float32), header)
    with pytest.raises(InputDataError, match="flat.fits: is constant on the disk"):
        evaluate([predictions[0], flat], [targets[0], targets[1]], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scores_on_the_predictions_own_disk_with_nan_off_it(tmp_path):
    """Maps masked at 0.95 Rsun with NaN off the disk (as predict and synth-truth write them):
    scored on exactly that disk, fluxes summed over it; a target of another disk geometry is
    refused naming it."""
    _, target, field = write_pair(tmp_path, 0, 64, mask_radius=0.95)
    header = celestial_header(64, "2011-01-01T00:00:00", mask_radius=0.95)
    header["BUNIT"] = "Gauss"
    disk = disk_mask(64, header["R_SUN"], 0.95)
    prediction = np.where(disk, 0.5 * field, np.nan).astype(np.float32)
    path = write_fits(tmp_path / "pred.fits", prediction, header)
    evaluate([path], [target], tmp_path / "out", bin_factor=1)
    [row] = _rows(tmp_path / "out/metrics.csv")
    assert int(row["n_binned"]) == disk.sum()  # 0.98 would add a ring of pixels
    area = metrics.pixel_area_cm2(header)
    assert float(row["unsigned_flux_real"]) == pytest.approx(np.abs(field[disk]).sum() * area,
                                                             rel=1e-4)
    assert float(row["unsigned_flux_ratio"]) == pytest.approx(0.5, rel=1e-5)
    assert float(row["cc"]) == pytest.approx(1.0)
    other = celestial_header(64, "2011-01-01T00:00:00", mask_radius=0.95)
    other["R_SUN"], other["BUNIT"] = 30.0, "Gauss"
    moved = write_fits(tmp_path / "moved.fits", field.astype(np.float32), other)
    with pytest.raises(InputDataError, match=r"moved.fits: frame conventions differ: rsun_px "
                       r"\(R_SUN\) 30, its prediction pred.fits's 28.125") as err:
        evaluate([path], [moved], tmp_path / "x")
    assert err.value.reason == "convention_mismatch"


def test_evaluate_command_does_not_load_torch(pairs, tmp_path):
    """`farside-gan evaluate` (a CPU job) imports neither torch nor the trainer."""
    import subprocess
    import sys
    predictions, targets, _ = pairs
    code = ("import sys\nfrom farside_gan.cli import main\n"
            f"assert main(['evaluate', '--predictions', *{list(map(str, predictions))!r}, "
            f"'--targets', *{list(map(str, targets))!r}, '--out-dir', {str(tmp_path)!r}]) == 0\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m in "
            "('farside_gan.training.trainer', 'farside_gan.products.inference', 'farside_gan.model'))\n"
            "print(loaded)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert len(_rows(tmp_path / "metrics.csv")) == 3
