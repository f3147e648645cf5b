"""Geometry of the co-aligned image: disk centred in the frame with a fixed radius in pixels."""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 1024
RSUN_PX = 450.0
MASK_RADIUS = 0.98


def radius_map(image_size: int) -> np.ndarray:
    """Distance of every pixel centre from the image centre, in pixels.

    The centre is at (image_size - 1) / 2 in 0-based pixel coordinates, i.e. FITS CRPIX
    (image_size + 1) / 2, so the disk is symmetric in the array.
    """
    c = (image_size - 1) / 2.0
    y, x = np.indices((image_size, image_size), dtype=np.float64)
    return np.hypot(x - c, y - c)


def disk_mask(image_size: int, rsun_px: float, mask_radius: float = MASK_RADIUS) -> np.ndarray:
    """Boolean mask, True within ``mask_radius`` solar radii of the centre."""
    return radius_map(image_size) <= mask_radius * rsun_px
