"""Evaluation of generated magnetograms against real ones: a CSV table and PNG plots.

``evaluate`` pairs each prediction with the target of the closest DATE-OBS (within a tolerance),
converts targets to Gauss (normalized HMI frames carry ``NORMCLIP``; Gauss frames ``BUNIT``),
and writes ``metrics.csv`` (one row per pair), ``summary.csv`` (mean and median of every
metric), ``scatter.png`` (binned on-disk pixels, all pairs), ``flux.png`` (unsigned and net flux
time series) and ``maps/<prediction>.png`` (real / generated / difference, side by side).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from farside_gan import metrics  # noqa: E402
from farside_gan.errors import InputDataError  # noqa: E402
from farside_gan.fitsio import atomic_output, read_fits  # noqa: E402
from farside_gan.geometry import MASK_RADIUS  # noqa: E402
from farside_gan.inference import observation_time  # noqa: E402
from farside_gan.model.data import disk_mask_for  # noqa: E402
from farside_gan.normalize import denormalize_hmi  # noqa: E402

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("cc", "cc_binned", "cc_ar", "cc_qs", "n_binned", "n_ar", "n_qs", "rmse",
                  "rmse_binned", "unsigned_flux_real", "unsigned_flux_generated", "net_flux_real",
                  "net_flux_generated")
GAUSS_UNITS = ("gauss", "g", "mx/cm^2", "mx/cm2", "mxcm^-2", "mxcm-2")
TABLE_COLUMNS = ("time", "prediction", "target", "flux_unit") + METRIC_COLUMNS


def read_gauss(path: str | os.PathLike):
    """A 2-D magnetogram in Gauss: normalized frames (NORMCLIP) are de-normalized."""
    data, header = read_fits(path)
    if data.ndim != 2:
        raise InputDataError(path, f"expected a 2-D magnetogram, got shape {data.shape}",
                             reason="bad_shape")
    data = np.nan_to_num(np.asarray(data, np.float32), nan=0.0)
    if "NORMCLIP" in header:
        return denormalize_hmi(data, float(header["NORMCLIP"])), header
    # HMI writes Mx/cm^2 (= G); aligned and generated maps write Gauss
    if str(header.get("BUNIT", "")).strip().lower().replace(" ", "") in GAUSS_UNITS:
        return data, header
    raise InputDataError(path, "neither NORMCLIP (normalized HMI) nor BUNIT = 'Gauss' in header; "
                         "cannot tell the values' units", reason="missing_keyword")


def pair_by_time(predictions, targets, tolerance_s: float = 3600.0):
    """[(prediction, target, time)] matching each prediction to the nearest target in time."""
    target_times = [(t, observation_time(read_fits(t)[1], t)) for t in targets]
    pairs = []
    for p in predictions:
        tp = observation_time(read_fits(p)[1], p)
        best = min(target_times, key=lambda tt: abs((tt[1] - tp).sec), default=None)
        if best is None or abs((best[1] - tp).sec) > tolerance_s:
            raise InputDataError(p, f"no target within {tolerance_s:g} s of {tp.isot}",
                                 reason="no_partner")
        pairs.append((Path(p), Path(best[0]), tp))
    return pairs


def evaluate(predictions, targets, out_dir: str | os.PathLike, bin_factor: int = 8,
             ar_threshold: float = 100.0, qs_threshold: float | None = None,
             tolerance_s: float = 3600.0, max_maps: int = 20,
             mask_radius: float = MASK_RADIUS) -> Path:
    """Write the table and plots described in the module docstring; returns metrics.csv."""
    out_dir = Path(out_dir)
    rows, scatter = [], ([], [])
    for k, (pred_path, target_path, t) in enumerate(pair_by_time(predictions, targets, tolerance_s)):
        gen, header = read_gauss(pred_path)
        real, _ = read_gauss(target_path)
        if gen.shape != real.shape:
            raise InputDataError(target_path, f"shape {real.shape} differs from prediction "
                                 f"{pred_path} {gen.shape}", reason="bad_shape")
        disk = disk_mask_for(header, gen.shape[0], mask_radius)
        area = metrics.pixel_area_cm2(header)
        row = metrics.compare(gen, real, disk, bin_factor, ar_threshold, qs_threshold,
                              pixel_area=area or 1.0)
        rows.append({"time": t.isot, "prediction": pred_path.name, "target": target_path.name,
                     "flux_unit": "Mx" if area else "G px", **row})
        disk_b = metrics.bin_mask(disk, bin_factor)
        scatter[0].append(metrics.bin_image(real, bin_factor)[disk_b])
        scatter[1].append(metrics.bin_image(gen, bin_factor)[disk_b])
        if k < max_maps:
            _save(maps_figure(real, gen, t.isot), out_dir / "maps" / f"{pred_path.stem}.png")
    rows.sort(key=lambda r: r["time"])
    _write_csv(out_dir / "metrics.csv", TABLE_COLUMNS, rows)
    summary = [{"statistic": stat, **{c: fn([r[c] for r in rows]) for c in METRIC_COLUMNS}}
               for stat, fn in (("mean", _nanmean), ("median", _nanmedian))]
    _write_csv(out_dir / "summary.csv", ("statistic",) + METRIC_COLUMNS, summary)
    _save(scatter_figure(np.concatenate(scatter[0]), np.concatenate(scatter[1]),
                         rows, bin_factor), out_dir / "scatter.png")
    _save(flux_figure(rows), out_dir / "flux.png")
    return out_dir / "metrics.csv"


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
        writer.writerows(rows)


def _save(fig: Figure, path: Path, dpi: int = 90) -> None:
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


# ---------------------------------------------------------------- figures (Agg, no pyplot state)

def _show(ax, image, title, vmax, cmap="gray"):
    im = ax.imshow(image, origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def preview_figure(stack: np.ndarray, real: np.ndarray, generated: np.ndarray,
                   title: str = "") -> Figure:
    """Training preview: each input channel, the real and the generated target ([-1, 1])."""
    n = stack.shape[0] + 2
    fig = Figure(figsize=(2.4 * n, 2.6))
    axes = fig.subplots(1, n)
    for i, channel in enumerate(stack):
        _show(axes[i], channel, f"input {i + 1}", 1.0, "gray")
    # fields are small in units of the clip (3000 G): scale both maps to the real one's range
    vmax = max(float(np.percentile(np.abs(real), 99.5)), 0.01)
    _show(axes[-2], real, f"real (+-{vmax:.2g})", vmax)
    _show(axes[-1], generated, "generated", vmax)
    fig.suptitle(title, fontsize=9)
    return fig


def maps_figure(real: np.ndarray, generated: np.ndarray, title: str, vmax: float = 1000.0) -> Figure:
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    for ax, image, name in zip(axes, (real, generated, generated - real),
                               ("real (G)", "generated (G)", "generated - real (G)")):
        im = _show(ax, image, name, vmax)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def scatter_figure(real: np.ndarray, generated: np.ndarray, rows, bin_factor: int) -> Figure:
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.subplots()
    ax.scatter(real, generated, s=2, alpha=0.3, color="k", rasterized=True)
    lim = max(float(np.abs(real).max(initial=1)), float(np.abs(generated).max(initial=1)))
    ax.plot([-lim, lim], [-lim, lim], "r-", lw=0.8)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(f"real B ({bin_factor}x{bin_factor} binned, G)")
    ax.set_ylabel("generated B (G)")
    ax.set_title(f"CC = {metrics.pearson_cc(real, generated):.3f} "
                 f"({len(rows)} maps)", fontsize=9)
    fig.tight_layout()
    return fig


def flux_figure(rows) -> Figure:
    from astropy.time import Time
    times = Time([r["time"] for r in rows]).to_datetime()
    unit = rows[0]["flux_unit"] if rows else ""
    fig = Figure(figsize=(8, 5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, kind in ((top, "unsigned"), (bottom, "net")):
        ax.plot(times, [r[f"{kind}_flux_real"] for r in rows], "o-", label="real")
        ax.plot(times, [r[f"{kind}_flux_generated"] for r in rows], "s--", label="generated")
        ax.set_ylabel(f"{kind} flux ({unit})")
        ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
