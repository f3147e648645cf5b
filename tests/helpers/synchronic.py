"""Small source maps for the synchronic tests: an observer's LOS view of a given radial field.

The image is rendered by the synthetic Sun's own ray tracer (``synthetic.projection.Geometry``,
numpy, tested against sunpy), not by reproject, so a feature placed at a Carrington longitude
and latitude here is an independent check of where the synchronic map puts it. Observers are
the synthetic archive's (SDO at Earth, STEREO-A/-B on their 2011 orbits).
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from sunpy.coordinates import frames
from sunpy.map.header_helper import make_fitswcs_header

from farside_gan.core.fitsio import write_fits
from farside_gan.products.uncertainty import uncertainty_hdu
from farside_gan.synthetic.instruments import observer_for
from farside_gan.synthetic.projection import Geometry

INSTRUMENT = {"hmi": "hmi", "stereo_a": "euvi_a", "stereo_b": "euvi_b"}
RSUN_M = 695700000.0


def blob(lon0: float, lat0: float, width: float = 4.0, amplitude: float = 1000.0):
    """A radial field: a Gaussian spot at Carrington (lon0, lat0), degrees."""
    def field(lon, lat):
        dlon = (np.asarray(lon) - lon0 + 180.0) % 360.0 - 180.0
        d2 = (dlon * np.cos(np.radians(lat0))) ** 2 + (np.asarray(lat) - lat0) ** 2
        return amplitude * np.exp(-d2 / (2 * width ** 2))
    return field


def write_map(path, role, time, radial_field, size=64, sigma=None, fill=0.0,
              mask_radius=0.98):
    """A co-aligned map (disk centred, radius 450/1024 of the image) of ``role``'s observer at
    ``time`` showing ``radial_field(carrington_lon, lat)`` as LOS field (times mu); pixels beyond
    ``mask_radius`` are ``fill`` (0, or NaN as the workflow's ``image.fill`` may make them). With
    ``sigma`` the map gets a constant UNCERTAINTY extension on the disk."""
    obs = observer_for(INSTRUMENT[role], time)
    observer = SkyCoord(obs.hgln * u.deg, obs.hglt * u.deg, obs.dsun * u.m, obstime=time,
                        frame=frames.HeliographicStonyhurst)
    rsun_px = size * 450 / 1024
    rsun_arcsec = np.degrees(np.arcsin(RSUN_M / obs.dsun)) * 3600
    ref = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime=time, observer=observer,
                   frame=frames.Helioprojective)
    header = fits.Header(make_fitswcs_header(
        (size, size), ref, scale=[rsun_arcsec / rsun_px] * 2 * u.arcsec / u.pix))
    header["R_SUN"] = (rsun_px, "[px] disk radius")
    header["MASKRAD"] = mask_radius
    header["BUNIT"] = "Gauss"
    if role != "hmi":
        header["CKPTSHA"] = "ab" * 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = Geometry.from_target(header).render(radial_field, los=True)
    y, x = np.indices(data.shape)
    off = np.hypot(x - (size - 1) / 2, y - (size - 1) / 2) > mask_radius * rsun_px
    data[off | ~np.isfinite(data)] = fill
    extra = []
    if sigma is not None:
        s = np.full(data.shape, sigma, np.float32)
        s[off] = fill
        extra = [uncertainty_hdu(s, header, 3)]
    return write_fits(path, data.astype(np.float32), header, extra_hdus=extra)
