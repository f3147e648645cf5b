"""Agreement between generated and real magnetograms (both in Gauss), on the solar disk.

Pixel-to-pixel Pearson CC at full resolution and after ``bin`` x ``bin`` binning (Jeong et al.
2022 report 8x8), the binned CC split into active-region and quiet-Sun pixels and into three mu
bands, RMSE, and total unsigned and net flux of both maps. Binned pixels are block means; a block
counts as on the disk only when all its pixels are (partial blocks would mix in the off-disk
fill). Active-region pixels: binned |B| >= ``ar_threshold`` in the real *or* the generated map
(a region the model invents counts against it); quiet Sun: binned |B| < ``qs_threshold`` in both.
A region CC over fewer than ``MIN_REGION_PIXELS`` binned pixels is NaN: with two or three points
a correlation is +-1 by construction, whatever the model does.

mu bands (:data:`MU_BANDS`): the cosine of the viewing angle of each binned pixel, the block mean
of mu = sqrt(1 - (r / R_SUN)^2) (r the distance from the disk centre in pixels). The aligned
frame's disk is centred with radius ``R_SUN``, and for an observer at the Sun's distance this
is the exact mu to 1e-5 (the gnomonic projection's tan against sin at 0.27 deg).

"Binned" means the same solar area at every image size: 8 x 8 pixels of the published 1024-px
frame with a 450-px disk radius (:func:`bin_factor_for`). :func:`leading_polarity` and
:func:`leading_polarity_right` score the physics the model must infer from EUV morphology:
whether the generated map gives an active region's leading (westward) polarity the right sign.
"""

from __future__ import annotations

import math

import numpy as np

ARCSEC = math.pi / (180 * 3600)
#: The binning of the published figures (Jeong et al. 2022): 8 x 8 at a 450-px disk radius.
REFERENCE_BIN, REFERENCE_RSUN_PX = 8, 450.0
#: Fewest binned pixels a region CC (active region, quiet Sun) is computed over.
MIN_REGION_PIXELS = 20
#: Leading-polarity score: active regions with at least this unsigned LOS flux (Mx) count...
MIN_AR_FLUX_MX = 5e21
#: ...and only bipolar ones: each polarity holds at least this fraction of the region's flux.
MIN_POLARITY_FRACTION = 0.2
#: (name, lowest mu, highest mu) of the bands the binned CC is split into: centre mu >= 0.8
#: (within 37 deg of disk centre), middle 0.5 <= mu < 0.8, limb mu < 0.5 (60 deg and further,
#: to the mask's edge). Bands are closed below, open above; together they are the disk.
MU_BANDS = (("centre", 0.8, math.inf), ("middle", 0.5, 0.8), ("limb", -math.inf, 0.5))
#: A map's unsigned flux "within 10%" of the truth's: |generated / true - 1| <= this.
FLUX_TOLERANCE = 0.1


def bin_factor_for(rsun_px: float) -> int:
    """Binning factor covering the solar area of 8x8 pixels at a 450-px radius (1 at 128 px)."""
    return max(1, int(round(REFERENCE_BIN * float(rsun_px) / REFERENCE_RSUN_PX)))


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


def region_cc(a: np.ndarray, b: np.ndarray, mask: np.ndarray,
              min_pixels: int = MIN_REGION_PIXELS) -> float:
    """Pearson CC over ``mask``, NaN when it holds fewer than ``min_pixels`` pixels."""
    return pearson_cc(a, b, mask) if int(np.count_nonzero(mask)) >= min_pixels else math.nan


def ratio(a: float, b: float) -> float:
    """a / b, NaN when b is 0."""
    return a / b if b else math.nan


def mu_map(image_size: int, rsun_px: float) -> np.ndarray:
    """mu = sqrt(1 - (r / R)^2) of every pixel of a centred disk of radius ``rsun_px`` (0 off
    the disk)."""
    from farside_gan.core.geometry import radius_map
    rho = radius_map(image_size) / float(rsun_px)
    return np.sqrt(np.clip(1.0 - rho * rho, 0.0, None))


def compare(generated: np.ndarray, real: np.ndarray, disk: np.ndarray, bin_factor: int = 8,
            ar_threshold: float = 100.0, qs_threshold: float | None = None,
            pixel_area: float = 1.0, min_region_pixels: int = MIN_REGION_PIXELS,
            mu: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of one generated/real pair (Gauss), ``disk`` the boolean on-disk mask, ``mu``
    (per pixel, e.g. :func:`mu_map`) for the mu bands (NaN without it)."""
    qs_threshold = ar_threshold if qs_threshold is None else qs_threshold
    gen_b, real_b = bin_image(generated, bin_factor), bin_image(real, bin_factor)
    disk_b = bin_mask(disk, bin_factor)
    ar = disk_b & ((np.abs(real_b) >= ar_threshold) | (np.abs(gen_b) >= ar_threshold))
    qs = disk_b & (np.abs(real_b) < qs_threshold) & (np.abs(gen_b) < qs_threshold)
    unsigned = (unsigned_flux(real, disk, pixel_area), unsigned_flux(generated, disk, pixel_area))
    net = (net_flux(real, disk, pixel_area), net_flux(generated, disk, pixel_area))
    flux_ratio = ratio(unsigned[1], unsigned[0])
    row = {
        "cc": pearson_cc(generated, real, disk),
        "cc_binned": pearson_cc(gen_b, real_b, disk_b),
        "cc_ar": region_cc(gen_b, real_b, ar, min_region_pixels),
        "cc_qs": region_cc(gen_b, real_b, qs, min_region_pixels),
        "n_binned": int(disk_b.sum()), "n_ar": int(ar.sum()), "n_qs": int(qs.sum()),
    }
    mu_b = bin_image(mu, bin_factor) if mu is not None else None
    for name, low, high in MU_BANDS:
        band = disk_b & (mu_b >= low) & (mu_b < high) if mu_b is not None else None
        row[f"cc_binned_mu_{name}"] = (region_cc(gen_b, real_b, band, min_region_pixels)
                                       if band is not None else math.nan)
        row[f"n_mu_{name}"] = int(band.sum()) if band is not None else 0
    row.update({
        "rmse": rmse(generated, real, disk),
        "rmse_binned": rmse(gen_b, real_b, disk_b),
        "unsigned_flux_real": unsigned[0], "unsigned_flux_generated": unsigned[1],
        "unsigned_flux_ratio": flux_ratio,
        "unsigned_flux_within_10pct": (float(abs(flux_ratio - 1.0) <= FLUX_TOLERANCE)
                                       if math.isfinite(flux_ratio) else math.nan),
        "net_flux_real": net[0], "net_flux_generated": net[1],
        "net_flux_error": ratio(abs(net[1] - net[0]), unsigned[0]),
    })
    return row


def leading_polarity(generated: np.ndarray, real: np.ndarray, disk: np.ndarray, header,
                     ar_threshold: float = 100.0, smooth_px: float = 1.0,
                     min_flux: float = MIN_AR_FLUX_MX, pixel_area: float = 1.0,
                     min_fraction: float = MIN_POLARITY_FRACTION) -> tuple[int, int]:
    """(active regions scored, of which the generated map gives the leading polarity its sign).

    Active regions are the connected on-disk areas where the real |B|, smoothed by
    ``smooth_px`` pixels, reaches ``ar_threshold``, with at least ``min_flux`` unsigned flux
    (in the units of ``pixel_area`` x G) and each polarity at least ``min_fraction`` of it. The
    leading polarity is the one whose flux-weighted centroid lies further west (larger
    Stonyhurst longitude, through the map's WCS and observer); the generated map has it right
    when its net field over the real leading polarity's pixels has the real one's sign.
    """
    from scipy import ndimage

    strong = ndimage.gaussian_filter(np.abs(np.asarray(real, np.float64)), smooth_px) >= ar_threshold
    labels, count = ndimage.label(strong & disk)
    centroids, regions = [], []
    for index in range(1, count + 1):
        region = labels == index
        values = real[region]
        flux = np.abs(values).sum() * pixel_area
        pos, neg = values[values > 0].sum() * pixel_area, -values[values < 0].sum() * pixel_area
        if flux < min_flux or min(pos, neg) < min_fraction * flux:
            continue
        ys, xs = np.nonzero(region)
        for sign in (1, -1):
            w = np.clip(sign * values, 0, None)
            centroids.append(((w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()))
        regions.append(region)
    if not regions:
        return 0, 0
    longitudes = _stonyhurst_longitudes(header, np.array(centroids))
    right = 0
    for k, region in enumerate(regions):
        leading_sign = 1 if longitudes[2 * k] > longitudes[2 * k + 1] else -1
        leading = region & (leading_sign * real > 0)
        right += int(np.sign(np.asarray(generated, np.float64)[leading].sum()) == leading_sign)
    return len(regions), right


def leading_polarity_right(generated: np.ndarray, real: np.ndarray, disk: np.ndarray,
                           leading_xy: tuple[float, float], following_xy: tuple[float, float],
                           leading_sign: int) -> bool | None:
    """Whether ``generated`` gives a known region's leading polarity its sign ``leading_sign``:
    the sign of its net field over the leading polarity's pixels, those on the disk within half
    the distance between the polarity centres (0-based pixel x, y) of the leading centre where
    the real field has the leading sign. None when there are no such pixels (a region at the
    limb, its leading polarity off the disk or drowned)."""
    ny, nx = real.shape
    y, x = np.ogrid[:ny, :nx]
    radius = max(0.5 * math.hypot(leading_xy[0] - following_xy[0],
                                  leading_xy[1] - following_xy[1]), 1.0)
    near = (x - leading_xy[0]) ** 2 + (y - leading_xy[1]) ** 2 <= radius * radius
    leading = near & disk & (leading_sign * np.asarray(real, np.float64) > 0)
    if not leading.any():
        return None
    return bool(np.sign(np.asarray(generated, np.float64)[leading].sum()) == leading_sign)


def _stonyhurst_longitudes(header, pixels: np.ndarray) -> np.ndarray:
    """Stonyhurst longitudes (deg) of 0-based (x, y) pixel positions of a map header (its WCS,
    observer and date; sunpy's frames through astropy's WCS)."""
    import warnings

    import astropy.units as u
    from astropy.wcs import WCS
    from sunpy.coordinates import HeliographicStonyhurst

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header).celestial
        coords = wcs.pixel_to_world(pixels[:, 0], pixels[:, 1])
        return coords.transform_to(HeliographicStonyhurst(obstime=coords.obstime)).lon.to_value(u.deg)
