"""The evaluation summary (``summary.csv``): per comparison, subset of maps and metric, the
mean, median, Fisher-z mean (CCs) and a block-bootstrap 95% interval of the mean.

Long format, one row per (comparison, subset, metric), columns :data:`SUMMARY_COLUMNS`:

* ``subset``: ``all`` maps; where the truth has a region table (synthetic truths) also
  ``clean`` (no anti-Hale region of note on the disk) and ``anti_hale`` (one there), by the
  per-map flag ``anti_hale``;
* ``counted`` / ``n``: what ``n`` counts -- ``maps`` with a finite value, for the per-map
  metrics; ``regions`` for leading polarity from a region table (each region once per passage,
  on the map where it is nearest disk centre); ``region-maps`` for leading polarity found per
  map (real truths: a region is counted on every map that shows it);
* ``mean``, ``median``; ``fisher_z_mean`` for the CC metrics; ``ci_low``, ``ci_high`` the
  block-bootstrap interval of the mean (``farside_gan.evaluation.statistics``) for the CC and
  flux metrics, over ``n_blocks`` blocks of two weeks.

Metrics: the per-map columns of :data:`INTERVAL_METRICS` and :data:`PLAIN_METRICS`; the
unsigned-flux ratio of each quartile of true unsigned flux (``unsigned_flux_ratio_q1`` the
weakest; quartiles over all maps of the comparison, in the per-map column ``flux_quartile``);
``cc_binned_over_ceiling``, whose mean is the ratio of the mean binned CC to the ceiling's mean
binned CC over the same maps (per-map ratios blow up where the ceiling is near 0: anti-Hale
maps) and whose median is the median of the per-map ratios; and the fractions of regions whose
leading polarity is right (``leading_right_fraction_hale``, ``..._anti_hale`` with a region
table, ``leading_right_fraction`` without).
"""

from __future__ import annotations

import math

import numpy as np

from farside_gan.evaluation import statistics

SUMMARY_COLUMNS = ("side", "observer", "truth", "subset", "metric", "counted", "n", "mean",
                   "median", "fisher_z_mean", "ci_low", "ci_high", "n_blocks")
SUBSETS = ("all", "clean", "anti_hale")
#: Correlations: Fisher-z mean and interval.
CC_METRICS = ("cc", "cc_binned", "cc_ar", "cc_qs", "cc_binned_mu_centre", "cc_binned_mu_middle",
              "cc_binned_mu_limb", "ceiling_cc_binned")
QUARTILES = 4
QUARTILE_METRICS = tuple(f"unsigned_flux_ratio_q{k}" for k in range(1, QUARTILES + 1))
#: Flux measures: interval.
FLUX_METRICS = ("unsigned_flux_ratio",) + QUARTILE_METRICS + ("unsigned_flux_within_10pct",
                                                              "net_flux_error")
INTERVAL_METRICS = CC_METRICS + FLUX_METRICS
#: Mean and median only.
PLAIN_METRICS = ("rmse", "rmse_binned", "unsigned_flux_real", "unsigned_flux_generated")
#: name: (numerator, denominator) -- a ratio of means, with an interval.
RATIO_METRICS = {"cc_binned_over_ceiling": ("cc_binned", "ceiling_cc_binned")}
COMPARISON_KEYS = ("side", "observer", "truth")


def comparison_of(row: dict) -> tuple:
    return tuple(row[k] for k in COMPARISON_KEYS)


def add_flux_quartiles(rows: list[dict]) -> None:
    """Set each row's ``flux_quartile`` (1 the weakest .. 4) by its true unsigned flux among the
    maps of its comparison, in place."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(comparison_of(r), []).append(r)
    for group in groups.values():
        flux = np.array([_number(r.get("unsigned_flux_real")) for r in group])
        finite = flux[np.isfinite(flux)]
        edges = np.quantile(finite, [0.25, 0.5, 0.75]) if finite.size else None
        for r, f in zip(group, flux):
            r["flux_quartile"] = (int(np.searchsorted(edges, f, side="right")) + 1
                                  if edges is not None and math.isfinite(f) else "")


def metric_values(rows: list[dict], metric: str) -> np.ndarray:
    """A metric's per-map values (NaN where undefined), the quartile metrics included."""
    if metric in QUARTILE_METRICS:
        k = int(metric[-1])
        return np.array([_number(r.get("unsigned_flux_ratio"))
                         if str(r.get("flux_quartile", "")) == str(k) else math.nan
                         for r in rows])
    return np.array([_number(r.get(metric)) for r in rows])


def subsets_of(rows: list[dict]) -> dict[str, list[int]]:
    """Indices of the rows of each subset: ``all``; ``clean``/``anti_hale`` only when every map
    has an anti-Hale flag (a region table) and the subset is not empty."""
    out = {"all": list(range(len(rows)))}
    flags = [_number(r.get("anti_hale")) for r in rows]
    if rows and all(math.isfinite(f) for f in flags):
        for name, value in (("clean", 0.0), ("anti_hale", 1.0)):
            members = [i for i, f in enumerate(flags) if f == value]
            if members:
                out[name] = members
    return out


def map_days(rows: list[dict]) -> np.ndarray:
    return statistics.days_of(statistics.parse_map_time(str(r["time"])) for r in rows)


def in_time_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: statistics.parse_map_time(str(r["time"])))


def resamples_of(maps: list[dict]) -> tuple[list | None, int]:
    """The bootstrap's resamples of some maps (in time order) and their number of blocks: the
    same maps give the same resamples (the summary and ``combine`` draw alike)."""
    days = map_days(maps)
    return statistics.block_resamples(days), len(statistics.time_blocks(days))


def describe(values, resamples, cc: bool) -> dict:
    """n, mean, median, Fisher-z mean (``cc``) and the bootstrap interval of the mean."""
    values = np.asarray(values, np.float64)
    row = {"counted": "maps", "n": int(np.isfinite(values).sum()),
           "mean": statistics.nanmean(values), "median": statistics.nanmedian(values),
           "fisher_z_mean": statistics.fisher_z_mean(values) if cc else math.nan,
           "ci_low": math.nan, "ci_high": math.nan}
    if resamples is not None and row["n"]:
        row["ci_low"], row["ci_high"] = statistics.percentile_interval(
            [statistics.nanmean(values[idx]) for idx in resamples])
    return row


def describe_ratio(numerator, denominator, resamples) -> dict:
    """A ratio of means with its bootstrap interval; the median of the per-map ratios."""
    a, b = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_map = np.where(b != 0, a / b, math.nan)
    row = {"counted": "maps", "n": int((np.isfinite(a) & np.isfinite(b)).sum()),
           "mean": statistics.ratio_of_means(a, b), "median": statistics.nanmedian(per_map),
           "fisher_z_mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if resamples is not None and row["n"]:
        row["ci_low"], row["ci_high"] = statistics.percentile_interval(
            [statistics.ratio_of_means(a[idx], b[idx]) for idx in resamples])
    return row


def summarize(rows: list[dict], region_entries: list[dict] | None = None) -> list[dict]:
    """The long summary of per-map ``rows`` (``metrics.csv``'s, with ``flux_quartile``) and the
    region entries of :func:`farside_gan.evaluation.regions.mark_passages`."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(comparison_of(r), []).append(r)
    out = []
    for key, group in groups.items():
        group = in_time_order(group)
        entries = [e for e in region_entries or () if comparison_of(e) == key]
        for subset, members in subsets_of(group).items():
            maps = [group[i] for i in members]
            resamples, n_blocks = resamples_of(maps)
            stats = {}
            for metric in INTERVAL_METRICS:
                stats[metric] = describe(metric_values(maps, metric),
                                         resamples, metric in CC_METRICS)
            for metric, (num, den) in RATIO_METRICS.items():
                stats[metric] = describe_ratio(metric_values(maps, num),
                                               metric_values(maps, den), resamples)
            for metric in PLAIN_METRICS:
                stats[metric] = describe(metric_values(maps, metric), None, False)
            stats.update(leading_stats(maps, entries))
            for metric, values in stats.items():
                if not values["n"]:
                    continue
                out.append({**dict(zip(COMPARISON_KEYS, key)), "subset": subset,
                            "metric": metric, "n_blocks": n_blocks, **values})
    return out


def leading_stats(maps: list[dict], entries: list[dict]) -> dict[str, dict]:
    """Leading polarity right: per region and passage where there are region entries (Hale and
    anti-Hale regions apart), per map and detected region otherwise."""
    times = {str(r["time"]) for r in maps}
    if any(math.isfinite(_number(r.get("anti_hale"))) for r in maps):
        chosen = [e for e in entries if e["chosen"] and e["right"] is not None
                  and str(e["time"]) in times]
        out = {}
        for name, anti in (("leading_right_fraction_hale", False),
                           ("leading_right_fraction_anti_hale", True)):
            scored = [e["right"] for e in chosen if e["anti_hale"] == anti]
            out[name] = _fraction(sum(scored), len(scored), "regions")
        return out
    regions = sum(_count(r.get("n_leading")) for r in maps)
    right = sum(_count(r.get("n_leading_right")) for r in maps)
    return {"leading_right_fraction": _fraction(right, regions, "region-maps")}


def _fraction(right: int, total: int, counted: str) -> dict:
    return {"counted": counted, "n": total, "mean": right / total if total else math.nan,
            "median": math.nan, "fisher_z_mean": math.nan, "ci_low": math.nan,
            "ci_high": math.nan}


def _count(value) -> int:
    number = _number(value)
    return int(number) if math.isfinite(number) else 0


def _number(value) -> float:
    """A table cell as a float (NaN for '', None or text)."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
