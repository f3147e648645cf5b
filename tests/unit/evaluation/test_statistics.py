"""Summary statistics of per-map scores (farside_gan.evaluation.statistics, .summary) and the
combination of several runs of the same maps (farside_gan.evaluation.combine)."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from farside_gan.cli import main
from farside_gan.core.errors import InputDataError
from farside_gan.evaluation import statistics
from farside_gan.evaluation.combine import COMBINED, combine_runs, read_runs
from farside_gan.evaluation.summary import describe, resamples_of, summarize

START = datetime(2012, 1, 1)


def test_fisher_z_mean_of_identical_ccs_is_that_cc():
    for cc in (0.93, -0.4, 0.0):
        assert statistics.fisher_z_mean([cc] * 7) == pytest.approx(cc, abs=1e-12)
    assert statistics.fisher_z_mean([1.0, 1.0]) == pytest.approx(1.0, abs=1e-11)  # atanh(1) = inf
    assert statistics.fisher_z_mean([0.5, -0.5, math.nan]) == pytest.approx(0.0, abs=1e-15)
    # correlations add in z: two maps at 0.99 and 0.5 average above their plain mean
    assert statistics.fisher_z_mean([0.99, 0.5]) > 0.745
    assert math.isnan(statistics.fisher_z_mean([math.nan]))


def test_maps_fall_into_fixed_two_week_blocks():
    blocks = statistics.time_blocks([0.0, 1.0, 13.9, 14.0, 30.5])
    assert [b.tolist() for b in blocks] == [[0, 1, 2], [3], [4]]
    assert statistics.block_resamples([0.0, 1.0, 20.0]) is None  # 2 blocks: no interval
    resamples = statistics.block_resamples(np.arange(60.0))      # 5 blocks of 14, 14, 14, 14, 4
    assert len(resamples) == statistics.N_RESAMPLES
    # 5 blocks drawn each time, a of them the short one: 70 - 10 a maps, 60 on average
    assert {len(idx) for idx in resamples} <= {70 - 10 * a for a in range(6)}
    assert np.mean([len(idx) for idx in resamples]) == pytest.approx(60, abs=1)
    again = statistics.block_resamples(np.arange(60.0))          # seeded: the same draws
    assert all(np.array_equal(a, b) for a, b in zip(resamples, again))


def _rows(values, step_days=1.0, anti_hale=None, metric="cc_binned"):
    return [{"side": "farside", "observer": "stereo_a", "truth": "synthetic",
             "time": (START + timedelta(days=step_days * i)).strftime("%Y%m%dT%H%M"),
             metric: float(v), "anti_hale": "" if anti_hale is None else anti_hale[i]}
            for i, v in enumerate(values)]


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_maps():
    """A daily series, independent values around 0.6 (sd 0.1): the interval of 60 maps holds
    their mean and 0.6; that of 600 maps is about sqrt(10) narrower (iid: 1/sqrt(n))."""
    rng = np.random.default_rng(5)
    widths = {}
    for n in (60, 600):
        values = rng.normal(0.6, 0.1, n)
        rows = _rows(values)
        resamples, n_blocks = resamples_of(rows)
        assert n_blocks == math.ceil(n / statistics.BLOCK_DAYS)
        stats = describe(values, resamples, cc=True)
        assert stats["ci_low"] < values.mean() < stats["ci_high"]
        assert stats["ci_low"] < 0.6 < stats["ci_high"]
        widths[n] = stats["ci_high"] - stats["ci_low"]
    assert widths[600] < 0.5 * widths[60]
    # the standard error of a mean of 60 values of sd 0.1 is 0.013: 95% is +-0.025
    assert widths[60] == pytest.approx(2 * 1.96 * 0.1 / math.sqrt(60), rel=0.35)


def test_blocks_widen_the_interval_of_correlated_maps():
    """Consecutive maps show the same regions: for a series correlated over ~10 days the
    two-week blocks give a wider interval than resampling single days would (which treats 300
    maps as 300 independent ones)."""
    rng = np.random.default_rng(2)
    x = np.zeros(300)
    for i in range(1, 300):
        x[i] = 0.9 * x[i - 1] + rng.normal(0, 0.05)
    days = np.arange(300.0)
    blocks = statistics.block_resamples(days)
    singles = statistics.block_resamples(days, block_days=1.0)
    width = {name: np.subtract(*statistics.percentile_interval(
        [x[idx].mean() for idx in resamples])[::-1]) for name, resamples in
        (("blocks", blocks), ("singles", singles))}
    assert width["blocks"] > 1.8 * width["singles"]  # sqrt((1 + 0.9) / (1 - 0.9)) = 4.4 ideally


def test_summary_has_clean_and_anti_hale_subsets_only_with_a_flag():
    values = np.linspace(0.2, 0.9, 45)
    flags = [1 if 10 <= i < 20 else 0 for i in range(45)]
    summary = summarize(_rows(values, anti_hale=flags))
    by = {(r["subset"], r["metric"]): r for r in summary}
    assert {s for s, _ in by} == {"all", "clean", "anti_hale"}
    assert by[("anti_hale", "cc_binned")]["n"] == 10
    assert by[("clean", "cc_binned")]["mean"] == pytest.approx(
        np.mean([v for v, f in zip(values, flags) if not f]))
    assert by[("all", "cc_binned")]["fisher_z_mean"] == pytest.approx(
        np.tanh(np.arctanh(values).mean()))
    assert {s for s, _ in {(r["subset"], r["metric"]): r for r in summarize(_rows(values))}} \
        == {"all"}


def _write_metrics(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_combining_identical_runs_gives_their_mean_and_no_narrower_interval(tmp_path):
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal(0.7, 0.15, 90), -1, 1)
    rows = _rows(values, anti_hale=[0] * 90)
    paths = [_write_metrics(tmp_path / f"run{k}.csv", rows) for k in range(3)]
    combined = combine_runs(read_runs(paths), ["a", "b", "c"], ["cc_binned"])
    alone = {(r["subset"], r["metric"]): r for r in summarize(rows)}[("all", "cc_binned")]
    for r in combined:
        assert r["mean"] == pytest.approx(values.mean())
    [total] = [r for r in combined if r["run"] == COMBINED and r["subset"] == "all"]
    assert total["ci_low"] <= alone["ci_low"] and total["ci_high"] >= alone["ci_high"]
    assert alone["ci_low"] < alone["ci_high"]
    # one run's own interval is the summary's: the same maps, the same block draws
    [run_a] = [r for r in combined if r["run"] == "a" and r["subset"] == "all"]
    assert (run_a["ci_low"], run_a["ci_high"]) == (alone["ci_low"], alone["ci_high"])


def test_combining_runs_that_differ_widens_the_interval_by_their_spread(tmp_path):
    """Two runs 0.1 apart on every map: the mean over runs is midway and its interval, which
    resamples the runs too, is wider than either run's and holds both runs' means."""
    rng = np.random.default_rng(1)
    values = np.clip(rng.normal(0.6, 0.1, 90), -1, 1)
    paths = [_write_metrics(tmp_path / "low.csv", _rows(values)),
             _write_metrics(tmp_path / "high.csv", _rows(values + 0.1))]
    out = tmp_path / "combined.csv"
    assert main(["combine-metrics", *map(str, paths), "--labels", "low", "high",
                 "--metric", "cc_binned", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = {r["run"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"low", "high", COMBINED}
    total = rows[COMBINED]
    assert float(total["mean"]) == pytest.approx(values.mean() + 0.05)
    assert int(total["runs"]) == 2 and int(total["n"]) == 90
    width = {k: float(r["ci_high"]) - float(r["ci_low"]) for k, r in rows.items()}
    assert width[COMBINED] > max(width["low"], width["high"])
    assert float(total["ci_low"]) <= float(rows["low"]["mean"])
    assert float(total["ci_high"]) >= float(rows["high"]["mean"])


def test_runs_of_other_maps_are_refused_naming_the_file(tmp_path):
    values = np.full(30, 0.5)
    first = _write_metrics(tmp_path / "one.csv", _rows(values))
    other = _write_metrics(tmp_path / "other.csv", _rows(values[:29]))
    with pytest.raises(InputDataError, match=r"other.csv: scores other maps than .*one.csv "
                       r"\(1 missing, 0 extra\)"):
        read_runs([first, other])
    flagged = _write_metrics(tmp_path / "flagged.csv", _rows(values, anti_hale=[1] * 30))
    unflagged = _write_metrics(tmp_path / "unflagged.csv", _rows(values, anti_hale=[0] * 30))
    with pytest.raises(InputDataError, match="unflagged.csv: flags other maps as anti-Hale"):
        read_runs([flagged, unflagged])
