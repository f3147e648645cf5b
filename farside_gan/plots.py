"""Figures of training and evaluation (matplotlib's object API on Agg: no pyplot state).

Magnetograms use sunpy's ``hmimag`` colormap with symmetric limits in Gauss, as the field shows
them; figures are saved atomically with :func:`save`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from farside_gan.fitsio import atomic_output  # noqa: E402
from farside_gan.layout import INSTRUMENTS, TRAINING_TARGET  # noqa: E402

TRUTH_NAMES = {TRAINING_TARGET: INSTRUMENTS[TRAINING_TARGET].label,
               "synthetic": "true (synthetic Sun)"}


def magnetogram_cmap():
    """sunpy's HMI magnetogram colormap (registered when sunpy.visualization is imported)."""
    import sunpy.visualization.colormaps  # noqa: F401  (registers 'hmimag')
    import matplotlib as mpl
    return mpl.colormaps["hmimag"]


def save(fig: Figure, path: str | Path, dpi: int = 90) -> Path:
    """The figure as a PNG, atomically, trimmed to what is drawn (no label cut off)."""
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    return Path(path)


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
    _show(axes[-2], real, f"real (+-{vmax:.2g})", vmax, magnetogram_cmap())
    _show(axes[-1], generated, "generated", vmax, magnetogram_cmap())
    fig.suptitle(title, fontsize=9)
    return fig


def maps_figure(real: np.ndarray, generated: np.ndarray, title: str, vmax: float = 1000.0,
                truth_name: str = TRAINING_TARGET) -> Figure:
    """Truth, generated and their difference side by side (Gauss)."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    name = TRUTH_NAMES.get(truth_name, truth_name)
    for ax, image, label in zip(axes, (real, generated, generated - real),
                                (f"{name} (G)", "generated (G)", f"generated - {name} (G)")):
        im = _show(ax, image, label, vmax, magnetogram_cmap())
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="B (G)")
    fig.suptitle(title, fontsize=10)
    return fig


def scatter_figure(points: dict[str, tuple[np.ndarray, np.ndarray]], summary: list[dict]) -> Figure:
    """Generated against true binned field, one panel per comparison (``side/observer/truth``)."""
    from farside_gan.metrics import pearson_cc
    labels = list(points)
    fig = Figure(figsize=(4.2 * max(len(labels), 1), 4.4))
    axes = np.atleast_1d(fig.subplots(1, max(len(labels), 1)))
    for ax, label in zip(axes, labels):
        real, generated = points[label]
        side, observer, truth = label.split("/")
        ax.scatter(real, generated, s=2, alpha=0.3, color="k", rasterized=True)
        lim = max(float(np.abs(real).max(initial=1)), float(np.abs(generated).max(initial=1)))
        ax.plot([-lim, lim], [-lim, lim], "r-", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel(f"{TRUTH_NAMES.get(truth, truth)} B (binned, G)")
        ax.set_ylabel("generated B (binned, G)")
        n = next((r["n_maps"] for r in summary if (r["side"], r["observer"], r["truth"])
                  == (side, observer, truth)), 0)
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


def observatory_name(meta) -> str:
    """'STEREO-A', 'STEREO-B', 'SDO' from a map's OBSRVTRY (else TELESCOP)."""
    name = str(meta.get("obsrvtry") or meta.get("telescop") or "unknown observatory").strip()
    return name.upper().replace("_", "-") if name.upper().startswith("STEREO_") else name


def map_source(meta) -> str:
    """What made a map, from its header: for our product (``ORIGIN`` farside-gan,
    ``farside_gan.magnetogram``) its ``INSTRUME`` -- the generator, with its checkpoint, or the
    synthetic Sun -- and the EUV input it stands on; else INSTRUME and CONTENT."""
    from farside_gan.magnetogram import ORIGIN
    if str(meta.get("origin", "")).strip() == ORIGIN:
        channels = "/".join(str(meta[f"inchan{i}"]) for i in (1, 2, 3) if f"inchan{i}" in meta)
        detector = str(meta.get("indetect") or meta.get("ininstru") or "EUV").strip()
        made = str(meta.get("instrume", "")).strip()
        if meta.get("ckptname"):
            made = f"generated by farside-gan ({made}, {meta['ckptname']})"
        return f"{made} from {detector} {channels} Å".strip()
    parts = [str(meta.get(k, "")).strip() for k in ("instrume", "content")]
    return " ".join(p for p in parts if p) or "unknown source"


def quicklook_figure(smap, vmax: float = 1000.0) -> Figure:
    """A magnetogram map as the field shows it: sunpy's WCS axes, the ``hmimag`` colormap with
    symmetric limits and a colorbar in Gauss, a heliographic (Stonyhurst) grid; the title names
    the spacecraft, what made the map, the time and the observer's position."""
    import astropy.units as u
    from matplotlib.colors import Normalize

    observatory = observatory_name(smap.meta)
    observer = smap.observer_coordinate
    unit = smap.unit.to_string() if smap.unit is not None else ""
    gauss = unit in ("G", "Gauss")
    fig = Figure(figsize=(5.6, 5.4))
    ax = fig.add_subplot(projection=smap)
    cmap = magnetogram_cmap().with_extremes(bad="0.85")  # off-disk NaN: light grey
    image = smap.plot(axes=ax, cmap=cmap, norm=Normalize(vmin=-vmax, vmax=vmax), title=False)
    smap.draw_grid(axes=ax, grid_spacing=30 * u.deg, color="k", linewidth=0.4, alpha=0.6)
    smap.draw_limb(axes=ax, color="k", linewidth=0.6)
    ax.set_title(f"{observatory} LOS magnetogram {smap.date.isot[:16].replace('T', ' ')} UTC\n"
                 f"{map_source(smap.meta)}\n"
                 f"observer {observatory}: Stonyhurst lon {observer.lon.to_value('deg'):+.1f}°, "
                 f"lat {observer.lat.to_value('deg'):+.1f}°, "
                 f"{observer.radius.to_value('AU'):.3f} AU", fontsize=8)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, extend="both")
    bar.set_label("B$_{LOS}$ (G)" if gauss else f"B$_{{LOS}}$ ({unit or 'map units'})")
    return fig


def losses_figure(rows: list[dict]) -> Figure:
    """Training losses against step (``losses.csv``): the discriminator's, the generator's GAN,
    feature-matching and (when used) correlation terms; the learning rate on a second axis."""
    steps = np.array([float(r["step"]) for r in rows])
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.add_subplot()
    names = {"loss_D": "D (LSGAN)", "loss_G_gan": "G GAN", "loss_G_fm": "G feature matching",
             "loss_G_cc": "G correlation", "loss_G": "G total"}
    for key, label in names.items():
        values = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
        if np.isfinite(values).any():
            ax.plot(steps, values, ".-" if len(rows) < 50 else "-", lw=1, ms=4, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if rows and rows[0].get("lr") not in (None, ""):
        lr = ax.twinx()
        lr.plot(steps, [float(r["lr"]) for r in rows], color="0.5", ls=":", lw=1)
        lr.set_ylabel("learning rate (dotted)", color="0.4")
        lr.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    last_epoch = int(float(rows[-1]["epoch"])) + 1 if rows else 0  # losses.csv counts from 0
    ax.set_title(f"Training losses: {len(rows)} logged steps, to epoch {last_epoch}", fontsize=9)
    return fig


# ------------------------------------------------------------ synchronic Carrington maps

def _carrington_panel(fig, position, smap, title, cmap, vmin, vmax, label):
    """One heliographic map on WCSAxes with its Carrington longitude/latitude grid."""
    ax = fig.add_subplot(*position, projection=smap)
    image = smap.plot(axes=ax, cmap=cmap, vmin=vmin, vmax=vmax, title=title)
    ax.coords.grid(color="0.4", alpha=0.6, linestyle=":", linewidth=0.6)
    lon, lat = ax.coords[0], ax.coords[1]
    lon.set_axislabel("Carrington longitude (deg)")
    lat.set_axislabel("latitude (deg)")
    lon.set_ticks(spacing=60 * _deg())
    lat.set_ticks(spacing=30 * _deg())
    ax.title.set_fontsize(9)
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02, label=label)
    return ax


def _deg():
    import astropy.units as u
    return u.deg


def _synchronic_maps(path) -> dict:
    """The synchronic file's images as sunpy maps, by extension name (PRIMARY: the field)."""
    import warnings

    import sunpy.map
    from astropy.io import fits
    maps = {}
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(names):
            if name == "PROVENANCE":
                continue
            maps[name] = sunpy.map.Map(path, hdus=i)
    return maps


def synchronic_figure(path, vmax: float | None = None) -> Figure:
    """The synchronic field (hmimag, symmetric limits in G) and which source leads each pixel,
    on the Carrington grid; NaN (no source) shows as the axes' background."""
    import matplotlib as mpl
    maps = _synchronic_maps(path)
    field = maps["PRIMARY"]
    data = field.data[np.isfinite(field.data)]
    if vmax is None:
        vmax = max(float(np.percentile(np.abs(data), 99.5)) if data.size else 1.0, 1.0)
    codes = {int(k[3:]): v for k, v in field.meta.items() if k.startswith("src")
             and k[3:].isdigit()}
    fig = Figure(figsize=(9.5, 7.6))
    kind = "B_r = B_LOS / mu" if field.meta.get("radial") else "B_LOS"
    _carrington_panel(fig, (2, 1, 1), field, f"synchronic {kind}, {field.date.isot[:16]}  "
                      f"({field.meta.get('ngap', 0)} px without a source)",
                      magnetogram_cmap(), -vmax, vmax, f"{kind} (G)")
    n = max(codes) if codes else 3
    colors = ["#ffffff", "#4477aa", "#ee6677", "#228833", "#ccbb44"][:n + 1]
    cmap = mpl.colors.ListedColormap(colors)
    source = maps["SOURCE"]
    ax = _carrington_panel(fig, (2, 1, 2), source, "dominant source: "
                           + ", ".join(f"{c} {codes[c]}" for c in sorted(codes)) + ", 0 none",
                           cmap, -0.5, n + 0.5, "source code")
    if "MU" in maps:
        ax.contour(maps["MU"].data, levels=[0.3, 0.6, 0.9], colors="k", linewidths=0.4)
    fig.tight_layout()
    return fig


def uncertainty_figure(path, vmax: float | None = None) -> Figure:
    """The synchronic map's 1-sigma uncertainty (G) on the Carrington grid."""
    maps = _synchronic_maps(path)
    if "UNCERTAINTY" not in maps:
        raise ValueError(f"{path}: no UNCERTAINTY extension")
    sigma = maps["UNCERTAINTY"]
    data = sigma.data[np.isfinite(sigma.data)]
    if vmax is None:
        vmax = max(float(np.percentile(data, 99.5)) if data.size else 1.0, 1.0)
    factor = sigma.meta.get("unccalf")
    scaled = f" x {factor:.2f} (near-side calibration)" if factor and factor != 1 else ""
    fig = Figure(figsize=(9.5, 4.2))
    _carrington_panel(fig, (1, 1, 1), sigma, f"uncertainty, 1 sigma: generator ensemble spread"
                      f"{scaled}; observed HMI: 0. {sigma.date.isot[:16]}", "viridis", 0, vmax,
                      "sigma (G)")
    fig.tight_layout()
    return fig
