"""Agreement between generated and real magnetograms (both in Gauss), on the solar disk.

Pixel-to-pixel Pearson CC at full resolution and after ``bin`` x ``bin`` binning (Jeong et al.
2022 report 8x8), the binned CC split into active-region and quiet-Sun pixels, RMSE, and total
unsigned and net flux of both maps. Binned pixels are block means; a block counts as on the disk
only when all its pixels are (partial blocks would mix in the off-disk fill). Active-region
pixels: binned |B_real| >= ``ar_threshold``; quiet Sun: binned |B_real| < ``qs_threshold``.
"""

from __future__ import annotations

import math

import numpy as np

ARCSEC = math.pi / (180 * 3600)


def pearson_cc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``mask``; NaN for < 2 pixels or no variance."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if mask is not None:
        a, b = a[mask], b[mask]
    a, b = a.ravel(), b.ravel()
    if a.size < 2:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    return float((da * db).sum() / denom) if denom > 0 else math.nan


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks (trailing rows/columns that don't fill a block
    are dropped)."""
    image = np.asarray(image, np.float64)
    ny, nx = (s // factor for s in image.shape[-2:])
    cropped = image[..., :ny * factor, :nx * factor]
    return cropped.reshape(*image.shape[:-2], ny, factor, nx, factor).mean(axis=(-3, -1))


def bin_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """True for blocks lying entirely inside ``mask``."""
    return bin_image(mask.astype(np.float64), factor) == 1.0


def rmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if mask is not None:
        d = d[mask]
    return float(np.sqrt(np.mean(d * d))) if d.size else math.nan


def unsigned_flux(field: np.ndarray, mask: np.ndarray, pixel_area: float = 1.0) -> float:
    """sum |B| x pixel area over the mask (Mx when B is in G and the area in cm^2)."""
    return float(np.abs(np.asarray(field, np.float64)[mask]).sum() * pixel_area)


def net_flux(field: np.ndarray, mask: np.ndarray, pixel_area: float = 1.0) -> float:
    return float(np.asarray(field, np.float64)[mask].sum() * pixel_area)


def pixel_area_cm2(header) -> float | None:
    """Plane-of-sky area of one pixel at the Sun's distance (cm^2), from DSUN_OBS and CDELT1/2.

    No foreshortening correction: the flux is the line-of-sight flux through the image plane,
    the same for real and generated maps. None when the header lacks the keywords.
    """
    try:
        dsun_cm = float(header["DSUN_OBS"]) * 100.0
        dx = abs(float(header["CDELT1"])) * ARCSEC * dsun_cm
        dy = abs(float(header.get("CDELT2", header["CDELT1"]))) * ARCSEC * dsun_cm
    except (KeyError, TypeError, ValueError):
        return None
    return dx * dy


def compare(generated: np.ndarray, real: np.ndarray, disk: np.ndarray, bin_factor: int = 8,
            ar_threshold: float = 100.0, qs_threshold: float | None = None,
            pixel_area: float = 1.0) -> dict[str, float]:
    """All metrics of one generated/real pair (Gauss), ``disk`` the boolean on-disk mask."""
    qs_threshold = ar_threshold if qs_threshold is None else qs_threshold
    gen_b, real_b = bin_image(generated, bin_factor), bin_image(real, bin_factor)
    disk_b = bin_mask(disk, bin_factor)
    ar = disk_b & (np.abs(real_b) >= ar_threshold)
    qs = disk_b & (np.abs(real_b) < qs_threshold)
    return {
        "cc": pearson_cc(generated, real, disk),
        "cc_binned": pearson_cc(gen_b, real_b, disk_b),
        "cc_ar": pearson_cc(gen_b, real_b, ar),
        "cc_qs": pearson_cc(gen_b, real_b, qs),
        "n_binned": int(disk_b.sum()), "n_ar": int(ar.sum()), "n_qs": int(qs.sum()),
        "rmse": rmse(generated, real, disk),
        "rmse_binned": rmse(gen_b, real_b, disk_b),
        "unsigned_flux_real": unsigned_flux(real, disk, pixel_area),
        "unsigned_flux_generated": unsigned_flux(generated, disk, pixel_area),
        "net_flux_real": net_flux(real, disk, pixel_area),
        "net_flux_generated": net_flux(generated, disk, pixel_area),
    }
