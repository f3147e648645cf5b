"""From an image's WCS and observer to where each pixel's ray meets the Sun.

The pointing is interpreted by sunpy itself (a Map built from the header gives the reference
pixel, scale, rotation matrix and observer, with each instrument's conventions: HMI's CROTA2,
EUVI's CROTA/PC), then the gnomonic (TAN) projection and the ray-sphere intersection are done in
vectorized numpy, in row chunks, because sunpy's coordinate machinery is too slow for 16 Mpixel.
Tests check this against ``Map.pixel_to_world`` and sunpy's frame transformations.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np

ARCSEC = np.pi / (180.0 * 3600.0)
CHUNK_PIXELS = 1 << 20


@functools.lru_cache(maxsize=256)
def carrington_l0(time: datetime) -> float:
    """sunpy's L0 (deg): Carrington longitude = Stonyhurst longitude + L0."""
    from sunpy.coordinates import sun
    return float(sun.L0(time).deg)


@dataclass
class Geometry:
    shape: tuple[int, int]          # (ny, nx)
    reference_pixel: tuple[float, float]   # 0-based (x, y)
    scale: tuple[float, float]      # arcsec / pixel (x, y)
    rotation: np.ndarray            # 2x2 PC matrix
    reference_coord: tuple[float, float]   # (Tx, Ty) arcsec
    hgln: float                     # observer Stonyhurst longitude, deg
    hglt: float                     # observer latitude (B0), deg
    dsun: float                     # observer distance, m
    rsun: float                     # photospheric radius, m
    time: datetime

    @classmethod
    def from_target(cls, target) -> "Geometry":
        import sunpy.map
        from astropy.io import fits
        from astropy.wcs import WCS
        if isinstance(target, Geometry):
            return target
        if isinstance(target, WCS):
            if target.pixel_shape is None:
                raise ValueError("a WCS target needs its pixel_shape (NAXIS1, NAXIS2) set")
            header = target.to_header()
            header["NAXIS"] = 2
            header["NAXIS1"], header["NAXIS2"] = target.pixel_shape
            target = header
        if isinstance(target, (str, os.PathLike)):
            target = fits.getheader(target, ext=0) if fits.getheader(target, ext=0).get("NAXIS", 0) \
                else fits.getheader(target, ext=1)
        if not isinstance(target, sunpy.map.GenericMap):
            header = fits.Header(target) if not isinstance(target, fits.Header) else target
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target = sunpy.map.Map(np.zeros((1, 1), dtype=np.float32), header)
        else:
            shape = target.data.shape
        return cls.from_map(target, shape)

    @classmethod
    def from_map(cls, smap, shape) -> "Geometry":
        import astropy.units as u
        from sunpy.coordinates import HeliographicStonyhurst
        observer = smap.observer_coordinate.transform_to(HeliographicStonyhurst(obstime=smap.reference_date))
        ref = smap.reference_coordinate
        return cls(shape=tuple(shape),
                   reference_pixel=(float(smap.reference_pixel.x.to_value(u.pix)),
                                    float(smap.reference_pixel.y.to_value(u.pix))),
                   scale=(float(smap.scale.axis1.to_value(u.arcsec / u.pix)),
                          float(smap.scale.axis2.to_value(u.arcsec / u.pix))),
                   rotation=np.asarray(smap.rotation_matrix, dtype=np.float64),
                   reference_coord=(float(ref.Tx.to_value(u.arcsec)), float(ref.Ty.to_value(u.arcsec))),
                   hgln=float(observer.lon.to_value(u.deg)), hglt=float(observer.lat.to_value(u.deg)),
                   dsun=float(observer.radius.to_value(u.m)), rsun=float(smap.rsun_meters.to_value(u.m)),
                   time=smap.reference_date.utc.to_datetime())

    def carrington_l0(self, time: datetime | None = None) -> float:
        """Carrington longitude of the Stonyhurst prime meridian (deg) at ``time``."""
        return carrington_l0(time or self.time)

    def chunks(self):
        """Yield (row slice, rays) for blocks of rows; rays holds float64 arrays over the block:
        ``rho`` (impact parameter, solar radii), ``on`` (rho < 1), and for on-disk pixels (1-D,
        in ``on`` order) ``lon`` / ``lat`` (Stonyhurst, deg) and ``mu`` (cosine of the viewing
        angle); ``pa_sin`` is the sine of the solar-north position angle of every pixel."""
        ny, nx = self.shape
        rows = max(1, CHUNK_PIXELS // nx)
        (m11, m12), (m21, m22) = self.rotation
        px = np.arange(nx, dtype=np.float64) - self.reference_pixel[0]
        alpha, delta = self.reference_coord[0] * ARCSEC, self.reference_coord[1] * ARCSEC
        ca, sa, cd, sd = np.cos(alpha), np.sin(alpha), np.cos(delta), np.sin(delta)
        cb, sb = np.cos(np.radians(self.hglt)), np.sin(np.radians(self.hglt))
        distance = self.dsun / self.rsun
        for start in range(0, ny, rows):
            sl = slice(start, min(start + rows, ny))
            py = (np.arange(sl.start, sl.stop, dtype=np.float64) - self.reference_pixel[1])[:, None]
            x = self.scale[0] * ARCSEC * (m11 * px[None, :] + m12 * py)
            y = self.scale[1] * ARCSEC * (m21 * px[None, :] + m22 * py)
            inv = 1.0 / np.sqrt(x * x + y * y + 1.0)
            ux, uy, uz = x * inv, y * inv, inv
            # Gnomonic projection about the reference direction (LONPOLE 180): tilt by Ty0, turn by Tx0.
            uy, uz = uy * cd + uz * sd, -uy * sd + uz * cd
            dx, dy, dz = ux * ca + uz * sa, uy, -ux * sa + uz * ca
            s2 = dx * dx + dy * dy
            rho = distance * np.sqrt(s2)
            on = rho < 1.0
            rays = {"rho": rho, "on": on, "pa_sin": dy / np.maximum(np.sqrt(s2), 1e-300)}
            dxo, dyo, dzo, s2o = dx[on], dy[on], dz[on], s2[on]
            mu = np.sqrt(1.0 - distance * distance * s2o)
            t = distance * dzo - mu
            xh, yh, zh = t * dxo, t * dyo, distance * s2o + mu * dzo
            rays["lat"] = np.degrees(np.arcsin(np.clip(yh * cb + zh * sb, -1.0, 1.0)))
            rays["lon"] = self.hgln + np.degrees(np.arctan2(xh, zh * cb - yh * sb))
            rays["mu"] = mu
            yield sl, rays

    def render(self, surface_fn, los: bool = False, carrington_l0: float | None = None) -> np.ndarray:
        """Image of ``surface_fn(carrington_lon, lat)`` on the disk (times mu when ``los``), NaN off."""
        l0 = self.carrington_l0() if carrington_l0 is None else carrington_l0
        out = np.full(self.shape, np.nan, dtype=np.float32)
        for sl, rays in self.chunks():
            values = surface_fn(rays["lon"] + l0, rays["lat"])
            if los:
                values = values * rays["mu"]
            block = out[sl]
            block[rays["on"]] = values
        return out
