"""The Hale-rule oracle: the scale for what EUV brightness can say about magnetic polarity.

EUV brightness follows |B|, not its sign. A model can only infer polarity from morphology and
context: Hale's law (leading polarity opposite in the two hemispheres, flipping every cycle)
and the compact leading spot west of the diffuse following one. The oracle is given the true
|B| exactly and signs it by that rule alone: per connected region of smoothed |B| above a
threshold, the part west of the |B|-weighted centroid takes the hemisphere's leading polarity of
the map's cycle. A generator's binned CC is read against this oracle's on the same maps: it is a
scale, not a strict ceiling (a model also sees shapes the rule ignores, and anti-Hale regions
defeat both).

The regions are found on |B| smoothed over ``smooth_px`` pixels; evaluate passes the binning
factor (the solar area of 8x8 pixels at 1024 px), so the oracle sees active regions, not the
network, at any image size (at 512 px a 1-pixel smoothing splits the disk into ~60 network
"regions" and the oracle's CC falls to ~0.1).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from scipy import ndimage

from farside_gan.core.solar_cycle import hale_leading_sign, solar_cycle


def hale_rule_oracle(field: np.ndarray, time: datetime, threshold: float = 60.0,
                     smooth_px: float = 1.0) -> np.ndarray:
    """|B| of a north-up, disk-centred map (G) signed by Hale's law for the cycle at ``time``."""
    n = field.shape[0]
    y, x = np.indices(field.shape) - (n - 1) / 2
    leading_north = hale_leading_sign(solar_cycle(time)[0], 1)
    labels, count = ndimage.label(ndimage.gaussian_filter(np.abs(field), smooth_px) > threshold)
    out = np.zeros_like(field, dtype=np.float64)
    for i in range(1, count + 1):
        m = labels == i
        w = np.abs(field[m])
        cx, cy = (w * x[m]).sum() / w.sum(), (w * y[m]).sum() / w.sum()
        lead = leading_north if cy > 0 else -leading_north
        out[m] = w * np.where(x[m] > cx, lead, -lead)
    return out
