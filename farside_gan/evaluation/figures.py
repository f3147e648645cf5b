"""Figures of the evaluation: truth, generated and difference maps, the scatter of binned
fields per comparison, unsigned flux against time."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from farside_gan.core.figures import magnetogram_cmap, show_image
from farside_gan.core.instruments import INSTRUMENTS, TRAINING_TARGET

TRUTH_NAMES = {TRAINING_TARGET: INSTRUMENTS[TRAINING_TARGET].label,
               "synthetic": "true (synthetic Sun)"}


def maps_figure(real: np.ndarray, generated: np.ndarray, title: str, vmax: float = 1000.0,
                truth_name: str = TRAINING_TARGET) -> Figure:
    """Truth, generated and their difference side by side (Gauss)."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    name = TRUTH_NAMES.get(truth_name, truth_name)
    for ax, image, label in zip(axes, (real, generated, generated - real),
                                (f"{name} (G)", "generated (G)", f"generated - {name} (G)")):
        im = show_image(ax, image, label, vmax, magnetogram_cmap())
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="B (G)")
    fig.suptitle(title, fontsize=10)
    return fig


def scatter_figure(points: dict[str, tuple[np.ndarray, np.ndarray]],
                   map_counts: dict[str, int]) -> Figure:
    """Generated against true binned field, one panel per comparison (``side/observer/truth``,
    ``map_counts`` its number of maps)."""
    from farside_gan.core.metrics import pearson_cc
    labels = list(points)
    fig = Figure(figsize=(4.2 * max(len(labels), 1), 4.4))
    axes = np.atleast_1d(fig.subplots(1, max(len(labels), 1)))
    for ax, label in zip(axes, labels):
        real, generated = points[label]
        side, observer, truth = label.split("/")
        n = map_counts.get(label, 0)
        ax.scatter(real, generated, s=2, alpha=0.3, color="k", rasterized=True)
        lim = max(float(np.abs(real).max(initial=1)), float(np.abs(generated).max(initial=1)))
        ax.plot([-lim, lim], [-lim, lim], "r-", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel(f"{TRUTH_NAMES.get(truth, truth)} B (binned, G)")
        ax.set_ylabel("generated B (binned, G)")
        ax.set_title(f"{side}, {observer}: CC = {pearson_cc(real, generated):.3f} ({n} maps)",
                     fontsize=9)
    fig.tight_layout()
    return fig


def flux_figure(rows: list[dict]) -> Figure:
    """Total unsigned flux of the truth and the prediction, per comparison, against time."""
    from astropy.time import Time
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['side']}/{r['observer']}/{r['truth']}", []).append(r)
    fig = Figure(figsize=(8, 2.6 * max(len(groups), 1) + 0.6))
    axes = np.atleast_1d(fig.subplots(max(len(groups), 1), 1))
    for ax, (label, group) in zip(axes, groups.items()):
        times = Time([_iso(r["time"]) for r in group]).to_datetime()
        unit = group[0]["flux_unit"]
        truth = TRUTH_NAMES.get(group[0]["truth"], group[0]["truth"])
        ax.plot(times, [r["unsigned_flux_real"] for r in group], "o-", label=truth)
        ax.plot(times, [r["unsigned_flux_generated"] for r in group], "s--", label="generated")
        ax.set_ylabel(f"unsigned flux ({unit})")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _iso(time: str) -> str:
    """A table row's time (ISO, or a YYYYMMDDTHHMM key) as ISO."""
    if len(time) == 13 and time[8] == "T":
        return f"{time[:4]}-{time[4:6]}-{time[6:8]}T{time[9:11]}:{time[11:13]}"
    return time

