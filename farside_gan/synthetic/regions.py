"""The synthetic Sun's active regions as a map's observer sees them: the ``REGIONS`` table.

One row per active region whose centre lies on the map's scored disk (the visible hemisphere,
within the map's ``MASKRAD`` x ``R_SUN`` of the disk centre) at the map's time. The evaluation
reads it from the truth file (it must not import the synthetic Sun): which regions break Hale's
law, where their polarities are, how much flux they carry.

The columns are :data:`farside_gan.core.truth_file.REGION_COLUMNS`: the region's name
(``seed:bin:index``: the Sun's seed, the emergence bin and the region's place in that bin's
draw, the same in every map of every observer), whether it is anti-Hale, its leading sign, its
unsigned flux, the pixel positions of its polarity centres and the mu of its centre.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits

from farside_gan.core import conventions
from farside_gan.core.truth_file import REGION_COLUMNS, REGIONS_EXTNAME


def region_id(seed: int, region) -> str:
    """The stable name of a region: the Sun's seed, its emergence bin, its index in the bin."""
    return f"{int(seed)}:{region.time_bin}:{region.index}"


def visible_regions(sun, header, path=None) -> list[dict]:
    """The rows of the ``REGIONS`` table for a map ``header`` (its WCS, observer, date, ``R_SUN``
    and ``MASKRAD``), in the order of the Sun's region list."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS
    from sunpy.coordinates import HeliographicStonyhurst

    from farside_gan.synthetic.field import days_since_epoch
    from farside_gan.synthetic.projection import Geometry

    size = int(header["NAXIS1"])
    found = conventions.of_map(header, path, (int(header["NAXIS2"]), size))
    geometry = Geometry.from_target(header)
    when = geometry.time
    day = days_since_epoch(sun.field_time(when))
    regions = sun.active_regions(when)
    if not regions:
        return []
    # the truth is rendered with Carrington = Stonyhurst + L0 (synthetic.projection): the same here
    l0 = geometry.carrington_l0(when)
    lonlat = []
    for region in regions:
        leading, following = region.polarity_centres(day)
        centre = ((leading[0] + following[0]) / 2, (leading[1] + following[1]) / 2)
        lonlat += [centre, leading, following]
    lon, lat = np.array(lonlat).T
    lon = lon - l0
    mu = _mu(lon, lat, geometry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = HeliographicStonyhurst(obstime=geometry.time)
        points = SkyCoord(lon * u.deg, lat * u.deg, geometry.rsun * u.m, frame=frame)
        x, y = WCS(header).celestial.world_to_pixel(points)
    centre_px = (size - 1) / 2.0
    limit = found.mask_radius * found.rsun_px
    rows = []
    for k, region in enumerate(regions):
        c, lead, foll = 3 * k, 3 * k + 1, 3 * k + 2
        if mu[c] <= 0 or np.hypot(x[c] - centre_px, y[c] - centre_px) > limit:
            continue
        rows.append({"REGION": region_id(sun.seed, region), "ANTIHALE": region.anti_hale,
                     "LEADSIGN": region.leading_sign, "FLUX": sun.region_flux(region, when),
                     "LEAD_X": float(x[lead]), "LEAD_Y": float(y[lead]),
                     "FOLL_X": float(x[foll]), "FOLL_Y": float(y[foll]), "MU": float(mu[c])})
    return rows


def _mu(lon, lat, geometry) -> np.ndarray:
    """mu at Stonyhurst (lon, lat) degrees on the sphere seen from the geometry's observer (at a
    finite distance: the limb lies slightly behind the plane of the sky)."""
    def unit(lon_deg, lat_deg):
        lon_r, lat_r = np.radians(lon_deg), np.radians(lat_deg)
        return np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r),
                         np.sin(lat_r)], axis=-1)
    surface = unit(np.asarray(lon), np.asarray(lat))
    to_observer = geometry.dsun / geometry.rsun * unit(geometry.hgln, geometry.hglt) - surface
    return (surface * to_observer).sum(axis=-1) / np.linalg.norm(to_observer, axis=-1)


def regions_hdu(rows: list[dict]) -> fits.BinTableHDU:
    """The ``REGIONS`` binary table of :func:`visible_regions`' rows (an empty table: none)."""
    columns = [fits.Column(name=name, format=fmt, unit=unit,
                           array=np.array([r[name] for r in rows]) if rows else None)
               for name, fmt, unit, _ in REGION_COLUMNS]
    hdu = fits.BinTableHDU.from_columns(columns, nrows=len(rows), name=REGIONS_EXTNAME)
    hdu.header["COMMENT"] = ("active regions centred on the scored disk; pixel positions "
                             "0-based (x = column)")
    return hdu
