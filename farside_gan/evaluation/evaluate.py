"""Evaluation of generated magnetograms against the truth: one table and plots per comparison.

A *comparison* is one kind of score, named ``side/observer/truth`` (the report says which kind
of truth a number used):

* ``side``: ``nearside`` (AIA input) or ``farside`` (EUVI input);
* ``observer``: ``sdo``, ``stereo_a`` or ``stereo_b``;
* ``truth``: ``hmi`` (the observed magnetogram: the only truth real data has, near side only)
  or ``synthetic`` (the synthetic Sun's noiseless field on the map's own grid, near and far).

Each prediction is paired with the truth of the same time: in directories by file name (the
grid time), or for plain file lists by the nearest DATE-OBS within a tolerance. Metrics
(``farside_gan.core.metrics``) are computed on the prediction's disk (its ``MASKRAD`` and ``R_SUN``)
with the binning that covers the published 8x8-at-1024-px area. Every pair is read and scored
before anything is written, so a bad file fails the command with its name and leaves no partial
table or plot.

Outputs in ``out_dir``: ``metrics.csv`` (one row per map and comparison), ``summary.csv`` (per
comparison: mean and median of every metric, pooled flux ratios, the fraction of active regions
whose leading polarity is right), ``scatter.png`` (binned on-disk pixels, a panel per
comparison), ``flux.png`` (unsigned flux series) and ``maps/<side>_<observer>_<truth>_<time>.png``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from farside_gan.core import conventions, metrics
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import atomic_output, read_fits
from farside_gan.core.instruments import NEARSIDE_LABEL, OBSERVER_NAMES, SIDES, TRUTHS, obs_time
from farside_gan.prepare.normalize import denormalize_hmi

log = logging.getLogger(__name__)


METRIC_COLUMNS = ("cc", "cc_binned", "cc_ar", "cc_qs", "n_binned", "n_ar", "n_qs", "rmse",
                  "rmse_binned", "unsigned_flux_real", "unsigned_flux_generated",
                  "unsigned_flux_ratio", "net_flux_real", "net_flux_generated", "net_flux_ratio",
                  "n_leading", "n_leading_right", "oracle_cc_binned")
GAUSS_UNITS = ("gauss", "g", "mx/cm^2", "mx/cm2", "mxcm^-2", "mxcm-2")
TABLE_COLUMNS = ("side", "observer", "truth", "time", "prediction", "target", "bin",
                 "flux_unit") + METRIC_COLUMNS
SUMMARY_COLUMNS = ("side", "observer", "truth", "statistic", "n_maps") + METRIC_COLUMNS + (
    "leading_right_fraction",)


@dataclass
class Comparison:
    """Predictions and their truths of one kind (``side/observer/truth``)."""
    side: str
    observer: str
    truth: str
    pairs: list[tuple[Path, Path, str]] = field(default_factory=list)  # (prediction, target, time)
    unscored: list[Path] = field(default_factory=list)                 # predictions without truth

    @property
    def label(self) -> str:
        return f"{self.side}/{self.observer}/{self.truth}"

    @classmethod
    def from_label(cls, label: str) -> "Comparison":
        parts = label.split("/")
        if len(parts) != 3 or parts[0] not in SIDES or parts[1] not in OBSERVER_NAMES \
                or parts[2] not in TRUTHS:
            raise ValueError(f"comparison {label!r}: expected SIDE/OBSERVER/TRUTH with SIDE in "
                             f"{SIDES}, OBSERVER in {OBSERVER_NAMES}, TRUTH in {TRUTHS}")
        return cls(*parts)


def read_gauss(path: str | os.PathLike):
    """A 2-D magnetogram in Gauss (off-disk NaN as 0: only the disk is scored): normalized
    frames are de-normalized with their own HMI clip (``NORMCLIP``)."""
    data, header = read_fits(path)
    if data.ndim != 2:
        raise InputDataError(path, f"expected a 2-D magnetogram, got shape {data.shape}",
                             reason="bad_shape")
    data = np.nan_to_num(np.asarray(data, np.float32), nan=0.0)
    if conventions.HMI_KEYWORD in header:
        clip = conventions.of_target(header, path, data.shape).hmi_clip
        return denormalize_hmi(data, clip), header
    # HMI writes Mx/cm^2 (= G); aligned and generated maps write Gauss
    if str(header.get("BUNIT", "")).strip().lower().replace(" ", "") in GAUSS_UNITS:
        return data, header
    raise InputDataError(path, "neither NORMCLIP (normalized HMI) nor BUNIT = 'Gauss' in header; "
                         "cannot tell the values' units", reason="missing_keyword")


def pair_directories(comparison: Comparison, prediction_dirs, target_dirs) -> Comparison:
    """Add the pairs of ``<time>.fits`` files present in both kinds of directory."""
    targets = {p.stem: p for d in target_dirs for p in sorted(Path(d).glob("*.fits"))}
    for d in prediction_dirs:
        for p in sorted(Path(d).glob("*.fits")):
            if p.stem in targets:
                comparison.pairs.append((p, targets[p.stem], p.stem))
            else:
                comparison.unscored.append(p)
    return comparison


def pair_by_time(predictions, targets, tolerance_s: float = 3600.0):
    """[(prediction, target, time)] matching each prediction to the nearest target in time."""
    from astropy.io import fits
    target_times = [(t, obs_time(fits.getheader(t), t)) for t in targets]
    pairs = []
    for p in predictions:
        tp = obs_time(fits.getheader(p), p)
        best = min(target_times, key=lambda tt: abs((tt[1] - tp).total_seconds()), default=None)
        if best is None or abs((best[1] - tp).total_seconds()) > tolerance_s:
            raise InputDataError(p, f"no target within {tolerance_s:g} s of {tp.isoformat()}",
                                 reason="no_partner")
        pairs.append((Path(p), Path(best[0]), tp.isoformat(timespec="milliseconds")))
    return pairs


def disk_of(header, path, size: int, target_header=None, target=None) -> tuple[np.ndarray, float]:
    """The on-disk mask of a prediction (its ``MASKRAD`` x its ``R_SUN``) and the radius (px);
    the target's geometry, when given, must be the prediction's (else an error naming it)."""
    found = conventions.of_map(header, path, (size, size))
    if target_header is not None:
        conventions.check(conventions.of_map(target_header, target, (size, size)), found, target,
                          f"its prediction {Path(path).name}'s", conventions.Conventions.GEOMETRY)
    return found.disk_mask(), found.rsun_px


def score_pair(prediction: Path, target: Path, comparison: Comparison, bin_factor: int | None,
               ar_threshold: float, qs_threshold: float | None) -> tuple[dict, tuple]:
    """One table row and the binned on-disk (real, generated) pixels for the scatter plot."""
    gen, header = read_gauss(prediction)
    real, target_header = read_gauss(target)
    if gen.shape != real.shape:
        raise InputDataError(target, f"shape {real.shape} differs from prediction "
                             f"{prediction} {gen.shape}", reason="bad_shape")
    disk, radius = disk_of(header, prediction, gen.shape[0], target_header, target)
    if not np.any(real[disk]):
        raise InputDataError(target, "is zero everywhere on the disk: nothing to score against",
                             reason="degenerate_data")
    if np.ptp(gen[disk]) == 0:  # a CC would be NaN: a broken model or input, not a score
        raise InputDataError(prediction, f"is constant on the disk ({gen[disk][0]:g} G): its "
                             "correlation with the truth is undefined", reason="degenerate_data")
    factor = bin_factor or metrics.bin_factor_for(radius)
    area = metrics.pixel_area_cm2(header)
    row = metrics.compare(gen, real, disk, factor, ar_threshold, qs_threshold,
                          pixel_area=area or 1.0)
    row["n_leading"], row["n_leading_right"] = metrics.leading_polarity(
        gen, real, disk, header, ar_threshold, smooth_px=float(factor),
        min_flux=metrics.MIN_AR_FLUX_MX if area else 0.0, pixel_area=area or 1.0)
    row["oracle_cc_binned"] = math.nan
    if comparison.truth == "synthetic":
        from farside_gan.evaluation.oracle import hale_rule_oracle
        oracle = hale_rule_oracle(real, obs_time(target_header, target), smooth_px=float(factor))
        disk_b = metrics.bin_mask(disk, factor)
        row["oracle_cc_binned"] = metrics.pearson_cc(metrics.bin_image(oracle, factor),
                                                     metrics.bin_image(real, factor), disk_b)
    disk_b = metrics.bin_mask(disk, factor)
    scatter = (metrics.bin_image(real, factor)[disk_b], metrics.bin_image(gen, factor)[disk_b])
    return ({"side": comparison.side, "observer": comparison.observer, "truth": comparison.truth,
             "prediction": prediction.name, "target": target.name, "bin": factor,
             "flux_unit": "Mx" if area else "G px", **row}, scatter), (real, gen)


def evaluate_comparisons(comparisons: list[Comparison], out_dir: str | os.PathLike,
                         bin_factor: int | None = None, ar_threshold: float = 100.0,
                         qs_threshold: float | None = None, max_maps: int = 20) -> Path:
    """Score every comparison, then write the table, the summary and the plots."""
    from farside_gan.core.figures import save
    from farside_gan.evaluation.figures import flux_figure, maps_figure, scatter_figure
    out_dir = Path(out_dir)
    rows, scatters, figures = [], {}, []
    for comparison in comparisons:
        if comparison.unscored:
            log.warning("%s: %d prediction(s) without a truth of the same time, e.g. %s",
                        comparison.label, len(comparison.unscored), comparison.unscored[0])
        for k, (prediction, target, time) in enumerate(sorted(comparison.pairs,
                                                              key=lambda p: p[2])):
            (row, scatter), (real, gen) = score_pair(prediction, target, comparison, bin_factor,
                                                     ar_threshold, qs_threshold)
            rows.append({"time": time, **row})
            scatters.setdefault(comparison.label, []).append(scatter)
            if k < max_maps:
                name = f"{comparison.side}_{comparison.observer}_{comparison.truth}_{Path(time).stem}"
                figures.append((name.replace(":", ""), maps_figure(
                    real, gen, f"{comparison.label}  {time}", truth_name=comparison.truth)))
    if not rows:
        raise InputDataError(out_dir, "no prediction has a truth to be scored against",
                             reason="no_partner")
    rows.sort(key=lambda r: (SIDES.index(r["side"]), r["observer"], r["truth"], r["time"]))
    summary = summarize(rows)
    _write_csv(out_dir / "metrics.csv", TABLE_COLUMNS, rows)
    _write_csv(out_dir / "summary.csv", SUMMARY_COLUMNS, summary)
    save(scatter_figure({label: (np.concatenate([s[0] for s in parts]),
                                 np.concatenate([s[1] for s in parts]))
                         for label, parts in scatters.items()}, summary), out_dir / "scatter.png")
    save(flux_figure(rows), out_dir / "flux.png")
    for name, fig in figures:
        save(fig, out_dir / "maps" / f"{name}.png")
    return out_dir / "metrics.csv"


def summarize(rows: list[dict]) -> list[dict]:
    """Per comparison: mean and median of every metric; fluxes and leading polarity pooled."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["side"], r["observer"], r["truth"]), []).append(r)
    out = []
    for (side, observer, truth), group in groups.items():
        regions = sum(int(r["n_leading"]) for r in group)
        right = sum(int(r["n_leading_right"]) for r in group)
        for stat, fn in (("mean", _nanmean), ("median", _nanmedian)):
            row = {"side": side, "observer": observer, "truth": truth, "statistic": stat,
                   "n_maps": len(group), **{c: fn([r[c] for r in group]) for c in METRIC_COLUMNS}}
            # pooled over the maps: a ratio of sums, not a mean of ratios near 0
            for kind in ("unsigned", "net"):
                row[f"{kind}_flux_ratio"] = metrics.ratio(
                    sum(r[f"{kind}_flux_generated"] for r in group),
                    sum(r[f"{kind}_flux_real"] for r in group))
            row["n_leading"], row["n_leading_right"] = regions, right
            row["leading_right_fraction"] = right / regions if regions else math.nan
            out.append(row)
    return out


def evaluate(predictions, targets, out_dir: str | os.PathLike, bin_factor: int | None = None,
             ar_threshold: float = 100.0, qs_threshold: float | None = None,
             tolerance_s: float = 3600.0, max_maps: int = 20,
             label: str = NEARSIDE_LABEL) -> Path:
    """Score prediction files against target files paired by DATE-OBS, as one comparison."""
    comparison = Comparison.from_label(label)
    comparison.pairs = pair_by_time(predictions, targets, tolerance_s)
    return evaluate_comparisons([comparison], out_dir, bin_factor, ar_threshold, qs_threshold,
                                max_maps)


def _nanmean(values):
    v = np.asarray(values, float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def _nanmedian(values):
    v = np.asarray(values, float)
    return float(np.nanmedian(v)) if np.isfinite(v).any() else math.nan


def _write_csv(path: Path, columns, rows) -> None:
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in rows)
