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

On-disk NaN in a prediction, a truth or a truth's ceiling is an error naming the file (a
map with a hole cannot be scored as if the hole were 0 G); off the disk NaN is the product's
fill and is ignored.

A synthetic truth file also carries the sign-blind ceiling and the region table
(``farside_gan.core.truth_file``): each map then gets the ceiling's binned CC against the truth,
the model/ceiling ratio and the anti-Hale flag, and leading polarity is scored from the table
(``farside_gan.evaluation.regions``).

Outputs in ``out_dir``: ``metrics.csv`` (one row per map and comparison, :data:`TABLE_COLUMNS`),
``summary.csv`` (``farside_gan.evaluation.summary``: per comparison, subset and metric, mean,
median, Fisher-z mean and bootstrap interval), ``regions.csv`` (one row per map and region of a
region table, :data:`REGION_TABLE_COLUMNS`: the leading-polarity score of each, the passage and
the map each passage is scored at), ``scatter.png`` (binned on-disk pixels, a panel per
comparison), ``flux.png`` (unsigned flux series) and
``maps/<side>_<observer>_<truth>_<time>.png``.
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
from farside_gan.evaluation import regions as truth_regions
from farside_gan.evaluation import statistics
from farside_gan.evaluation.summary import SUMMARY_COLUMNS, add_flux_quartiles, summarize
from farside_gan.prepare.normalize import denormalize_hmi

log = logging.getLogger(__name__)


METRIC_COLUMNS = ("cc", "cc_binned", "cc_ar", "cc_qs", "cc_binned_mu_centre",
                  "cc_binned_mu_middle", "cc_binned_mu_limb", "n_binned", "n_ar", "n_qs",
                  "n_mu_centre", "n_mu_middle", "n_mu_limb", "rmse", "rmse_binned",
                  "unsigned_flux_real", "unsigned_flux_generated", "unsigned_flux_ratio",
                  "unsigned_flux_within_10pct", "flux_quartile", "net_flux_real",
                  "net_flux_generated", "net_flux_error", "n_leading", "n_leading_right",
                  "ceiling_cc_binned", "cc_binned_over_ceiling", "anti_hale")
GAUSS_UNITS = ("gauss", "g", "mx/cm^2", "mx/cm2", "mxcm^-2", "mxcm-2")
TABLE_COLUMNS = ("side", "observer", "truth", "time", "prediction", "target", "bin",
                 "flux_unit") + METRIC_COLUMNS
REGION_TABLE_COLUMNS = ("side", "observer", "truth", "time", "region", "anti_hale", "flux", "mu",
                        "right", "passage", "chosen")


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
    """A 2-D magnetogram in Gauss, NaN kept (:func:`on_disk` checks the disk): normalized frames
    are de-normalized with their own HMI clip (``NORMCLIP``)."""
    data, header = read_fits(path)
    if data.ndim != 2:
        raise InputDataError(path, f"expected a 2-D magnetogram, got shape {data.shape}",
                             reason="bad_shape")
    data = np.asarray(data, np.float32)
    if conventions.HMI_KEYWORD in header:
        clip = conventions.of_target(header, path, data.shape).hmi_clip
        return denormalize_hmi(data, clip), header
    # HMI writes Mx/cm^2 (= G); aligned and generated maps write Gauss
    if str(header.get("BUNIT", "")).strip().lower().replace(" ", "") in GAUSS_UNITS:
        return data, header
    raise InputDataError(path, "neither NORMCLIP (normalized HMI) nor BUNIT = 'Gauss' in header; "
                         "cannot tell the values' units", reason="missing_keyword")


def on_disk(data: np.ndarray, disk: np.ndarray, path, what: str = "") -> np.ndarray:
    """``data`` with the off-disk pixels 0 (only the disk is scored); NaN on the disk is an
    error naming the file."""
    holes = int(np.count_nonzero(np.isnan(data) & disk))
    if holes:
        raise InputDataError(path, f"{what}{holes} NaN pixel(s) on the disk: a map with holes "
                             "cannot be scored", reason="empty_data")
    return np.where(disk, data, np.float32(0.0))


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
               ar_threshold: float, qs_threshold: float | None):
    """One table row, the region scores of a region table (else None), the binned on-disk
    (real, generated) pixels for the scatter plot, and the (real, generated) maps."""
    gen, header = read_gauss(prediction)
    real, target_header = read_gauss(target)
    if gen.shape != real.shape:
        raise InputDataError(target, f"shape {real.shape} differs from prediction "
                             f"{prediction} {gen.shape}", reason="bad_shape")
    disk, radius = disk_of(header, prediction, gen.shape[0], target_header, target)
    gen, real = on_disk(gen, disk, prediction), on_disk(real, disk, target)
    if not np.any(real[disk]):
        raise InputDataError(target, "is zero everywhere on the disk: nothing to score against",
                             reason="degenerate_data")
    if np.ptp(gen[disk]) == 0:  # a CC would be NaN: a broken model or input, not a score
        raise InputDataError(prediction, f"is constant on the disk ({gen[disk][0]:g} G): its "
                             "correlation with the truth is undefined", reason="degenerate_data")
    factor = bin_factor or metrics.bin_factor_for(radius)
    area = metrics.pixel_area_cm2(header)
    row = metrics.compare(gen, real, disk, factor, ar_threshold, qs_threshold,
                          pixel_area=area or 1.0, mu=metrics.mu_map(gen.shape[0], radius))
    extras = truth_regions.read_truth_extras(target)
    row.update(ceiling_scores(extras, real, disk, factor, row["cc_binned"], target))
    flag = truth_regions.anti_hale_flag(extras.regions,
                                        row["unsigned_flux_real"] if area else None)
    row["anti_hale"] = "" if math.isnan(flag) else int(flag)
    region_scores = None
    if extras.regions is not None:
        region_scores = truth_regions.score_regions(gen, real, disk, extras.regions)
        scored = [e["right"] for e in region_scores if e["right"] is not None]
        row["n_leading"], row["n_leading_right"] = len(scored), sum(scored)
    else:
        row["n_leading"], row["n_leading_right"] = metrics.leading_polarity(
            gen, real, disk, header, ar_threshold, smooth_px=float(factor),
            min_flux=metrics.MIN_AR_FLUX_MX if area else 0.0, pixel_area=area or 1.0)
    disk_b = metrics.bin_mask(disk, factor)
    scatter = (metrics.bin_image(real, factor)[disk_b], metrics.bin_image(gen, factor)[disk_b])
    return ({"side": comparison.side, "observer": comparison.observer, "truth": comparison.truth,
             "prediction": prediction.name, "target": target.name, "bin": factor,
             "flux_unit": "Mx" if area else "G px", **row}, region_scores, scatter, (real, gen))


def ceiling_scores(extras, real: np.ndarray, disk: np.ndarray, factor: int, cc_binned: float,
                   target) -> dict:
    """The ceiling's binned CC against the truth and the model's binned CC over it (NaN where
    the truth file has no ceiling)."""
    out = {"ceiling_cc_binned": math.nan, "cc_binned_over_ceiling": math.nan}
    if extras.ceiling is not None:
        if extras.ceiling.shape != real.shape:
            raise InputDataError(target, f"its ceiling's shape {extras.ceiling.shape} differs "
                                 f"from the truth's {real.shape}", reason="bad_shape")
        ceiling = on_disk(extras.ceiling, disk, target, "its ceiling has ")
        disk_b = metrics.bin_mask(disk, factor)
        out["ceiling_cc_binned"] = metrics.pearson_cc(metrics.bin_image(ceiling, factor),
                                                      metrics.bin_image(real, factor), disk_b)
        out["cc_binned_over_ceiling"] = metrics.ratio(cc_binned, out["ceiling_cc_binned"])
    return out


def evaluate_comparisons(comparisons: list[Comparison], out_dir: str | os.PathLike,
                         bin_factor: int | None = None, ar_threshold: float = 100.0,
                         qs_threshold: float | None = None, max_maps: int = 20) -> Path:
    """Score every comparison, then write the tables and the plots."""
    from farside_gan.core.figures import save
    from farside_gan.evaluation.figures import flux_figure, maps_figure, scatter_figure
    out_dir = Path(out_dir)
    rows, region_entries, scatters, figures = [], [], {}, []
    for comparison in comparisons:
        if comparison.unscored:
            log.warning("%s: %d prediction(s) without a truth of the same time, e.g. %s",
                        comparison.label, len(comparison.unscored), comparison.unscored[0])
        entries = []
        pairs = sorted(comparison.pairs, key=lambda p: statistics.parse_map_time(p[2]))
        days = statistics.days_of(statistics.parse_map_time(p[2]) for p in pairs)
        for k, (prediction, target, time) in enumerate(pairs):
            row, region_scores, scatter, (real, gen) = score_pair(
                prediction, target, comparison, bin_factor, ar_threshold, qs_threshold)
            rows.append({"time": time, **row})
            entries += [{"side": comparison.side, "observer": comparison.observer,
                         "truth": comparison.truth, "time": time, "map": k, "day": days[k], **e}
                        for e in region_scores or ()]
            scatters.setdefault(comparison.label, []).append(scatter)
            if k < max_maps:
                name = f"{comparison.side}_{comparison.observer}_{comparison.truth}_{Path(time).stem}"
                figures.append((name.replace(":", ""), maps_figure(
                    real, gen, f"{comparison.label}  {time}", truth_name=comparison.truth)))
        truth_regions.mark_passages(entries)
        region_entries += entries
    if not rows:
        raise InputDataError(out_dir, "no prediction has a truth to be scored against",
                             reason="no_partner")
    rows.sort(key=lambda r: (SIDES.index(r["side"]), r["observer"], r["truth"],
                             statistics.parse_map_time(r["time"])))
    add_flux_quartiles(rows)
    summary = summarize(rows, region_entries)
    _write_csv(out_dir / "metrics.csv", TABLE_COLUMNS, rows)
    _write_csv(out_dir / "summary.csv", SUMMARY_COLUMNS, summary)
    _write_csv(out_dir / "regions.csv", REGION_TABLE_COLUMNS,
               [{**e, "anti_hale": int(e["anti_hale"]), "chosen": int(e["chosen"]),
                 "right": "" if e["right"] is None else int(e["right"])}
                for e in region_entries])
    counts: dict[str, int] = {}
    for r in rows:
        label = f"{r['side']}/{r['observer']}/{r['truth']}"
        counts[label] = counts.get(label, 0) + 1
    save(scatter_figure({label: (np.concatenate([s[0] for s in parts]),
                                 np.concatenate([s[1] for s in parts]))
                         for label, parts in scatters.items()}, counts), out_dir / "scatter.png")
    save(flux_figure(rows), out_dir / "flux.png")
    for name, fig in figures:
        save(fig, out_dir / "maps" / f"{name}.png")
    return out_dir / "metrics.csv"


def evaluate(predictions, targets, out_dir: str | os.PathLike, bin_factor: int | None = None,
             ar_threshold: float = 100.0, qs_threshold: float | None = None,
             tolerance_s: float = 3600.0, max_maps: int = 20,
             label: str = NEARSIDE_LABEL) -> Path:
    """Score prediction files against target files paired by DATE-OBS, as one comparison."""
    comparison = Comparison.from_label(label)
    comparison.pairs = pair_by_time(predictions, targets, tolerance_s)
    return evaluate_comparisons([comparison], out_dir, bin_factor, ar_threshold, qs_threshold,
                                max_maps)


def _write_csv(path: Path, columns, rows) -> None:
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in rows)
