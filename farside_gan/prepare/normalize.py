"""Normalization of co-aligned images to the GAN's [-1, 1] range, and its inverse for HMI.

EUV (docs/DESIGN.md, "Processing", step 4): divide by the on-disk median and multiply by
``euv_median`` (100), clip to ``euv_clip`` ([1, 200]), log10, map linearly to [-1, 1]. HMI: clip
to +-``hmi_clip`` G, divide by ``hmi_clip``. Constants come from the config; these defaults are
the published ones.
"""

from __future__ import annotations

import numpy as np

EUV_MEDIAN = 100.0
EUV_CLIP = (1.0, 200.0)
HMI_CLIP = 3000.0


def check_euv_clip(clip) -> tuple[float, float]:
    """``euv_clip`` as a (low, high) pair with 0 < low < high, else ValueError naming it: an
    unordered clip (e.g. [200, 1]) would map every pixel to one value."""
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise ValueError(f"euv_clip must be two numbers (low, high), got {clip!r}") from None
    if not (0 < lo < hi and np.isfinite(hi)):
        raise ValueError(f"euv_clip must be increasing positive numbers (0 < low < high), got "
                         f"{list(clip)}")
    return lo, hi


def normalize_euv(image: np.ndarray, on_disk: np.ndarray, median: float = EUV_MEDIAN,
                  clip: tuple[float, float] = EUV_CLIP) -> np.ndarray:
    """EUV image -> [-1, 1]. ``on_disk`` is a boolean mask of the pixels used for the median.

    Off-disk pixels are clipped like any other, so a fill value of 0 maps to -1.
    """
    lo, hi = check_euv_clip(clip)
    disk_values = image[on_disk & np.isfinite(image)]
    if disk_values.size == 0:
        raise ValueError("no finite on-disk pixels to take a median of")
    disk_median = float(np.median(disk_values))
    if not disk_median > 0:
        raise ValueError(f"on-disk median is {disk_median}; an EUV image must be positive on the disk")
    scaled = np.clip(np.nan_to_num(image, nan=lo) * (median / disk_median), lo, hi)
    log_lo, log_hi = np.log10(lo), np.log10(hi)
    out = (2.0 * (np.log10(scaled) - log_lo) / (log_hi - log_lo) - 1.0).astype(np.float32)
    return np.clip(out, -1.0, 1.0, out=out)  # float rounding can give 1.0000001 at the clip


def denormalize_euv(values: np.ndarray, clip: tuple[float, float] = EUV_CLIP) -> np.ndarray:
    """Inverse of :func:`normalize_euv` up to the median scaling: [-1, 1] -> median-100 units."""
    log_lo, log_hi = np.log10(clip[0]), np.log10(clip[1])
    return (10.0 ** ((np.asarray(values, dtype=np.float64) + 1.0) / 2.0 * (log_hi - log_lo) + log_lo))


def normalize_hmi(field_gauss: np.ndarray, clip: float = HMI_CLIP) -> np.ndarray:
    """LOS field in Gauss -> [-1, 1]. NaNs (off-disk in HMI 720 s data) become 0 G."""
    return (np.clip(np.nan_to_num(field_gauss, nan=0.0), -clip, clip) / clip).astype(np.float32)


def denormalize_hmi(values: np.ndarray, clip: float = HMI_CLIP) -> np.ndarray:
    """Generator output in [-1, 1] -> Gauss (inverse of :func:`normalize_hmi` inside the clip)."""
    return (np.asarray(values, dtype=np.float32) * np.float32(clip)).astype(np.float32)


# File-level normalization of aligned frames (added for the `normalize` stage).

def normalize_frame(data: np.ndarray, header, euv_median: float = EUV_MEDIAN,
                    euv_clip: tuple[float, float] = EUV_CLIP, hmi_clip: float = HMI_CLIP,
                    path=None):
    """Aligned frame (header from ``align``) -> ([-1, 1] float32 image, header with constants).

    The on-disk pixels for the EUV median are those within ``MASKRAD`` x ``R_SUN`` pixels of the
    centre, as written by align. The frame must be one (``validation.check_aligned``): finite
    on the disk, not empty there; ``euv_clip`` an increasing pair.
    """
    from farside_gan.core.conventions import (of_map, write_euv_normalization,
                                              write_hmi_normalization)
    from farside_gan.core.errors import InputDataError
    from farside_gan.core.header_checks import check_aligned
    from farside_gan.core.instruments import INSTRUMENTS, MAGNETOGRAM

    euv_clip = check_euv_clip(euv_clip)
    for name, value in (("euv_median", euv_median), ("hmi_clip", hmi_clip)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    header = header.copy()
    instrument = check_aligned(data, header, path)
    if INSTRUMENTS[instrument].role == MAGNETOGRAM:
        out = normalize_hmi(data, hmi_clip)
        write_hmi_normalization(header, hmi_clip)
    else:
        on_disk = of_map(header, path, data.shape).disk_mask()
        finite = data[on_disk & np.isfinite(data)]
        if finite.size == 0 or not np.median(finite) > 0:
            raise InputDataError(path, "on-disk median is not positive (empty or dark image)",
                                 reason="empty_data")
        write_euv_normalization(header, float(np.median(finite)), euv_median, euv_clip)
        out = normalize_euv(data, on_disk, euv_median, tuple(euv_clip))
    header["BUNIT"] = ""
    header.add_history("farside-gan normalize: mapped to [-1, 1]")
    return out, header


def normalize_file(in_path, out_path, euv_median: float = EUV_MEDIAN,
                   euv_clip: tuple[float, float] = EUV_CLIP, hmi_clip: float = HMI_CLIP):
    from farside_gan.core.fitsio import read_fits, write_fits

    data, header = read_fits(in_path)
    out, header = normalize_frame(data, header, euv_median, euv_clip, hmi_clip, path=in_path)
    return write_fits(out_path, out, header)
