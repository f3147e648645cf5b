"""Scores that need the synthetic truth file's ceiling and region table (farside_gan.evaluation:
evaluate, regions, summary): model/ceiling, the anti-Hale flag and subsets, leading polarity
once per region and passage; and maps with holes on the disk, refused."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pytest
from astropy.io import fits
from helpers.model import stack_header

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import write_fits
from farside_gan.core.instruments import TIME_KEY_FORMAT
from farside_gan.evaluation import regions as truth_regions
from farside_gan.evaluation.evaluate import Comparison, evaluate, evaluate_comparisons
from farside_gan.synthetic import SyntheticSun
from farside_gan.synthetic.truth import write_truth

SIZE = 128
#: Six days around the crossing of a large anti-Hale region (0:171:6, 3.7e23 Mx, at disk
#: centre on 8 September), one map a day, and a clean map three months later.
ANTI_HALE_DAYS = [datetime(2012, 9, 5) + timedelta(days=i) for i in range(6)]
CLEAN_DAY = datetime(2012, 12, 10)
BIG = "0:171:6"


@pytest.fixture(scope="module")
def truths(tmp_path_factory):
    d = tmp_path_factory.mktemp("ceiling")
    sun = SyntheticSun(seed=0)
    (d / "truth").mkdir()
    for time in ANTI_HALE_DAYS + [CLEAN_DAY]:
        key = time.strftime(TIME_KEY_FORMAT)
        stack = write_fits(d / f"stack_{key}.fits", np.zeros((3, SIZE, SIZE), np.float32),
                           stack_header(SIZE, time.isoformat()))
        write_truth(sun, stack, d / "truth" / f"{key}.fits")
    return d


def _predictions(truths, name, make):
    """``truths/<name>/<key>.fits``: ``make(truth, ceiling)`` with the truth's header."""
    out = truths / name
    out.mkdir(exist_ok=True)
    for path in sorted((truths / "truth").glob("*.fits")):
        with fits.open(path) as hdul:
            data = make(hdul[0].data, hdul["CEILING"].data)
            write_fits(out / path.name, data.astype(np.float32), hdul[0].header)
    return out


def _evaluate(truths, predictions, out):
    comparison = Comparison.from_label("nearside/sdo/synthetic")
    comparison.pairs = [(p, truths / "truth" / p.name, p.stem)
                        for p in sorted(predictions.glob("*.fits"))]
    evaluate_comparisons([comparison], out, max_maps=0)
    return {name: _rows(out / f"{name}.csv") for name in ("metrics", "summary", "regions")}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def perfect(truths):
    predictions = _predictions(truths, "perfect", lambda truth, ceiling: truth)
    return _evaluate(truths, predictions, truths / "perfect_out")


@pytest.fixture(scope="module")
def ceiling(truths):
    predictions = _predictions(truths, "ceiling", lambda truth, ceiling: ceiling)
    return _evaluate(truths, predictions, truths / "ceiling_out")


def test_the_ceiling_map_itself_scores_one_against_the_ceiling(ceiling):
    for row in ceiling["metrics"]:
        assert float(row["cc_binned"]) == pytest.approx(float(row["ceiling_cc_binned"]), abs=1e-12)
        assert float(row["cc_binned_over_ceiling"]) == pytest.approx(1.0, abs=1e-12)
    summary = {(r["subset"], r["metric"]): r for r in ceiling["summary"]}
    assert float(summary[("all", "cc_binned_over_ceiling")]["mean"]) == pytest.approx(1.0)


def test_anti_hale_maps_are_flagged_and_their_ceiling_is_low(perfect, truths):
    rows = {r["time"]: r for r in perfect["metrics"]}
    clean = rows[CLEAN_DAY.strftime(TIME_KEY_FORMAT)]
    assert clean["anti_hale"] == "0"
    assert float(clean["ceiling_cc_binned"]) > 0.95  # nothing but network and holes missing
    table = fits.getdata(truths / "truth" / f"{CLEAN_DAY.strftime(TIME_KEY_FORMAT)}.fits",
                         "REGIONS")
    shares = table["FLUX"] * table["MU"] ** 2 / float(clean["unsigned_flux_real"])
    assert not any(table["ANTIHALE"] & (shares >= truth_regions.MIN_ANTI_HALE_FLUX_SHARE))
    for day in ANTI_HALE_DAYS:
        row = rows[day.strftime(TIME_KEY_FORMAT)]
        assert row["anti_hale"] == "1"
        assert float(row["cc_binned"]) == pytest.approx(1.0)  # the truth scores 1 ...
        assert float(row["ceiling_cc_binned"]) < 0.8           # ... what a model can reach, less
    centre = rows["20120908T0000"]
    assert float(centre["ceiling_cc_binned"]) < 0  # the region at disk centre dominates
    summary = {(r["subset"], r["metric"]): r for r in perfect["summary"]}
    assert {s for s, _ in summary} == {"all", "clean", "anti_hale"}
    assert (summary[("clean", "cc_binned")]["n"], summary[("anti_hale", "cc_binned")]["n"]) \
        == ("1", str(len(ANTI_HALE_DAYS)))
    assert float(summary[("clean", "ceiling_cc_binned")]["mean"]) == pytest.approx(
        float(clean["ceiling_cc_binned"]))


def test_leading_polarity_counts_a_region_once_per_passage(perfect, ceiling):
    entries = perfect["regions"]
    per_passage = Counter((e["region"], e["passage"]) for e in entries if e["chosen"] == "1")
    assert set(per_passage.values()) == {1}
    assert len(per_passage) == len({(e["region"], e["passage"]) for e in entries})
    # the big region is on the disk every day of the six and is scored once, where mu is
    # largest (8 September, at disk centre)
    big = [e for e in entries if e["region"] == BIG]
    assert len(big) == len(ANTI_HALE_DAYS) and {e["passage"] for e in big} == {"1"}
    [chosen] = [e for e in big if e["chosen"] == "1"]
    assert chosen["time"] == "20120908T0000"
    assert float(chosen["mu"]) == max(float(e["mu"]) for e in big)
    summary = {(r["subset"], r["metric"]): r for r in perfect["summary"]}
    hale, anti = (summary[("all", f"leading_right_fraction_{k}")] for k in ("hale", "anti_hale"))
    assert hale["counted"] == anti["counted"] == "regions"
    scored = [e for e in entries if e["chosen"] == "1" and e["right"] != ""]
    assert int(hale["n"]) + int(anti["n"]) == len(scored)
    # per map, each region counts on every day it shows: over twice as many
    per_map = [e for e in entries if e["right"] != ""]
    assert sum(int(r["n_leading"]) for r in perfect["metrics"]) == len(per_map)
    assert len(scored) < len(per_map) / 2
    assert float(hale["mean"]) == float(anti["mean"]) == 1.0  # the truth itself
    # the ceiling gives every anti-Hale region Hale's sign: the big one comes out wrong
    [wrong] = [e for e in ceiling["regions"] if e["region"] == BIG and e["chosen"] == "1"]
    assert wrong["right"] == "0" and wrong["anti_hale"] == "1"
    summary = {(r["subset"], r["metric"]): r for r in ceiling["summary"]}
    assert float(summary[("all", "leading_right_fraction_hale")]["mean"]) > 0.9
    assert float(summary[("all", "leading_right_fraction_anti_hale")]["mean"]) < 0.5


def test_passages_are_runs_of_consecutive_maps_close_in_time():
    def entry(region, k, day, mu):
        return {"region": region, "map": k, "day": day, "mu": mu}
    entries = [entry("a", 0, 0, 0.3), entry("a", 1, 1, 0.9), entry("a", 2, 2, 0.5),
               entry("a", 4, 4, 0.6), entry("a", 5, 5, 0.4),          # absent from map 3
               entry("b", 0, 0, 0.7), entry("b", 1, 20, 0.8)]         # 20 days apart
    truth_regions.mark_passages(entries)
    assert [(e["passage"], e["chosen"]) for e in entries] == [
        (1, False), (1, True), (1, False), (2, True), (2, False), (1, True), (2, True)]


def _nan_at_centre(path, out):
    with fits.open(path) as hdul:
        data = hdul[0].data.copy()
        data[SIZE // 2, SIZE // 2] = np.nan
        hdul[0].data = data
        hdul.writeto(out)
    return out


def test_a_hole_on_the_disk_is_refused_naming_the_file(perfect, truths, tmp_path):
    """An on-disk NaN in a prediction, a truth or a truth's ceiling fails the evaluation with
    the file's name, and nothing is written (the map used to be scored with the hole as 0 G)."""
    key = ANTI_HALE_DAYS[0].strftime(TIME_KEY_FORMAT)
    prediction, truth = truths / "perfect" / f"{key}.fits", truths / "truth" / f"{key}.fits"
    holed = _nan_at_centre(prediction, tmp_path / "holed_prediction.fits")
    with pytest.raises(InputDataError,
                       match=r"holed_prediction.fits: 1 NaN pixel\(s\) on the disk"):
        evaluate([holed], [truth], tmp_path / "a", label="nearside/sdo/synthetic")
    holed = _nan_at_centre(truth, tmp_path / "holed_truth.fits")
    with pytest.raises(InputDataError, match=r"holed_truth.fits: 1 NaN pixel\(s\) on the disk"):
        evaluate([prediction], [holed], tmp_path / "b", label="nearside/sdo/synthetic")
    with fits.open(truth) as hdul:
        hdul["CEILING"].data[SIZE // 2, SIZE // 2] = np.nan
        hdul.writeto(tmp_path / "holed_ceiling.fits")
    with pytest.raises(InputDataError, match=r"holed_ceiling.fits: its ceiling has 1 NaN"):
        evaluate([prediction], [tmp_path / "holed_ceiling.fits"], tmp_path / "c",
                 label="nearside/sdo/synthetic")
    assert not any((tmp_path / d).exists() for d in "abc")
    # NaN off the disk is the product's fill: scored as before
    assert np.isnan(fits.getdata(truth)[0, 0])


def test_the_anti_hale_flag_weighs_a_region_by_its_share_of_the_disks_flux():
    """FLUX x MU^2 over the map's unsigned flux: 1e22 Mx at mu 0.5 is 2.5% of 1e23 Mx (flagged),
    at mu 0.4 1.6% (not); a Hale region of any size never flags; without a table or the flux in
    Mx the flag is not known."""
    def region(flux, mu, anti=True):
        return {"ANTIHALE": anti, "FLUX": flux, "MU": mu}
    assert truth_regions.anti_hale_flag([region(1e22, 0.5)], 1e23) == 1.0
    assert truth_regions.anti_hale_flag([region(1e22, 0.4)], 1e23) == 0.0
    assert truth_regions.anti_hale_flag([region(1e22, 0.4)], 3e22) == 1.0  # a quiet disk
    assert truth_regions.anti_hale_flag([region(1e24, 1.0, anti=False)], 1e23) == 0.0
    assert truth_regions.anti_hale_flag([], 1e23) == 0.0
    assert np.isnan(truth_regions.anti_hale_flag(None, 1e23))
    assert np.isnan(truth_regions.anti_hale_flag([region(1e22, 0.5)], None))
