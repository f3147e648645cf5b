"""Several training runs (e.g. seeds) scored on the same maps, in one table (``farside-gan
combine-metrics``).

For every comparison, subset (as in ``summary.csv``) and metric: each run's mean with its
block-bootstrap interval, and the mean over the runs with an interval that covers both the
sampling of the maps and the spread of the runs: a two-level bootstrap whose every resample
draws the time blocks (once: the maps are the same in every run, so their sampling is shared)
and then the runs, with replacement; the statistic is the mean over the drawn runs of each run's
mean over the drawn maps. The block draws are the summary's (same maps, same generator), the
run draws come from a generator of their own, so a single run, or identical runs, get exactly
the interval of the summary.

Table columns (:data:`COMBINED_COLUMNS`): ``run`` is a run's label, or :data:`COMBINED` for the
mean over runs; ``n`` the maps with a finite value; ``runs`` the number of runs combined.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import atomic_output
from farside_gan.evaluation import statistics
from farside_gan.evaluation.summary import (COMPARISON_KEYS, INTERVAL_METRICS, RATIO_METRICS,
                                            add_flux_quartiles, comparison_of, in_time_order,
                                            metric_values, resamples_of, subsets_of)

COMBINED = "combined"
COMBINED_COLUMNS = ("side", "observer", "truth", "subset", "metric", "run", "runs", "n", "mean",
                    "ci_low", "ci_high", "n_blocks")
DEFAULT_METRICS = ("cc_binned", "ceiling_cc_binned", "cc_binned_over_ceiling", "cc_ar", "cc_qs",
                   "unsigned_flux_ratio", "net_flux_error")
COMBINABLE_METRICS = INTERVAL_METRICS + tuple(RATIO_METRICS)
#: Seed of the run draws (the block draws use ``statistics.SEED``).
RUN_SEED = statistics.SEED + 1


def read_runs(paths) -> list[list[dict]]:
    """The rows of several ``metrics.csv`` files, which must score the same maps (and agree on
    which maps are anti-Hale); else an error naming the file that differs."""
    runs = []
    for path in paths:
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise InputDataError(path, f"unreadable table ({exc})", reason="corrupt_table") from exc
        if not rows or any(k not in rows[0] for k in (*COMPARISON_KEYS, "time")):
            raise InputDataError(path, "not a metrics table (no rows, or no side, observer, "
                                 "truth, time columns)", reason="corrupt_table")
        runs.append(rows)
    first = {_map_key(r): r.get("anti_hale", "") for r in runs[0]}
    for path, rows in zip(list(paths)[1:], runs[1:]):
        these = {_map_key(r): r.get("anti_hale", "") for r in rows}
        if these.keys() != first.keys():
            missing, extra = len(first.keys() - these.keys()), len(these.keys() - first.keys())
            raise InputDataError(path, f"scores other maps than {paths[0]} ({missing} missing, "
                                 f"{extra} extra): runs are combined map by map",
                                 reason="inconsistent_header")
        if these != first:
            raise InputDataError(path, f"flags other maps as anti-Hale than {paths[0]}",
                                 reason="inconsistent_header")
    return runs


def _map_key(row: dict) -> tuple:
    return comparison_of(row) + (row["time"],)


def _statistic(maps: list[dict], metric: str):
    """The statistic of one run's maps as a function of the drawn indices: the mean, or the
    ratio of means of a ratio metric."""
    if metric in RATIO_METRICS:
        num, den = (metric_values(maps, c) for c in RATIO_METRICS[metric])
        return lambda idx: statistics.ratio_of_means(num[idx], den[idx])
    values = metric_values(maps, metric)
    return lambda idx: statistics.nanmean(values[idx])


def combine_runs(runs: list[list[dict]], labels, metrics=DEFAULT_METRICS) -> list[dict]:
    """Rows of the combined table (:data:`COMBINED_COLUMNS`) for runs of the same maps."""
    unknown = [m for m in metrics if m not in COMBINABLE_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; expected some of "
                         f"{', '.join(COMBINABLE_METRICS)}")
    for rows in runs:
        if not any(r.get("flux_quartile") for r in rows):
            add_flux_quartiles(rows)
    out = []
    keys = list(dict.fromkeys(comparison_of(r) for r in runs[0]))
    for key in keys:
        per_run = [in_time_order([r for r in rows if comparison_of(r) == key]) for rows in runs]
        for subset, members in subsets_of(per_run[0]).items():
            maps = [[group[i] for i in members] for group in per_run]
            resamples, n_blocks = resamples_of(maps[0])
            everything = np.arange(len(members))
            for metric in metrics:
                values = metric_values(maps[0], RATIO_METRICS.get(metric, (metric,))[0])
                n = int(np.isfinite(values).sum())
                if not n:
                    continue
                statistic = [_statistic(run_maps, metric) for run_maps in maps]
                base = {**dict(zip(COMPARISON_KEYS, key)), "subset": subset, "metric": metric,
                        "n": n, "n_blocks": n_blocks}
                means = [f(everything) for f in statistic]
                for label, f, mean in zip(labels, statistic, means):
                    low, high = (statistics.percentile_interval([f(idx) for idx in resamples])
                                 if resamples is not None else (math.nan, math.nan))
                    out.append({**base, "run": label, "runs": 1, "mean": mean,
                                "ci_low": low, "ci_high": high})
                low, high = (hierarchical_interval(statistic, resamples)
                             if resamples is not None else (math.nan, math.nan))
                out.append({**base, "run": COMBINED, "runs": len(runs),
                            "mean": float(np.mean(means)), "ci_low": low, "ci_high": high})
    return out


def hierarchical_interval(statistic: list, resamples) -> tuple[float, float]:
    """Interval of the mean over runs (``statistic``: one function of the drawn map indices per
    run): per resample the shared block draw, then the runs drawn with replacement (a generator
    seeded with :data:`RUN_SEED`)."""
    rng = np.random.default_rng(RUN_SEED)
    estimates = []
    for idx in resamples:
        drawn = rng.integers(0, len(statistic), size=len(statistic))
        per_run = {j: statistic[j](idx) for j in set(drawn.tolist())}
        estimates.append(float(np.mean([per_run[j] for j in drawn])))
    return statistics.percentile_interval(estimates)


def format_table(rows: list[dict]) -> str:
    """The combined table as text: per comparison, subset and metric, the mean over runs with
    its interval, then each run's."""
    def cell(r):
        interval = (f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                    if math.isfinite(r["ci_low"]) else " [no interval]")
        return f"{r['mean']:.3f}{interval}"
    lines, current = [], None
    for r in rows:
        head = (r["side"], r["observer"], r["truth"], r["subset"], r["metric"])
        if head != current:
            current = head
            lines.append(f"{'/'.join(head[:3])} {head[3]} {head[4]} ({r['n']} maps, "
                         f"{r['n_blocks']} blocks):")
        lines.append(f"    {r['run']}: {cell(r)}")
    return "\n".join(lines)


def write_combined(path: str | os.PathLike, rows: list[dict]) -> Path:
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COMBINED_COLUMNS)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in COMBINED_COLUMNS} for r in rows)
    return Path(path)
