"""The synthetic Sun's photospheric magnetic field, evolving in time.

The radial field lives on a Carrington longitude x latitude grid. It is the sum of

* bipolar active regions (ARs): they emerge at random (seeded) times at Spoerer-law latitudes,
  obey Hale's polarity law (leading polarity opposite in the two hemispheres, flipping every
  11-year cycle) and Joy's law (the leading polarity sits closer to the equator), grow in a day or
  two and decay over weeks. The leading spot is compact, the following polarity diffuse, so the
  bipole's shape tells which side leads -- and with the hemisphere, its sign;
* a mixed-polarity network: flux concentrations along supergranular lanes (renewed daily,
  blended between days);
* polar fields (unipolar caps whose sign reverses near cycle maximum);
* low-latitude coronal holes: weak unipolar patches that are dark in the corona.

Everything a time needs is drawn from generators seeded by (seed, kind, time bin), so the field at
a time does not depend on which other times were asked for. Features drift with the photospheric
differential rotation relative to the Carrington frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import ndimage

from farside_gan.synthetic.solar_cycle import hale_leading_sign, solar_cycle

#: Snodgrass (1983) magnetic-feature sidereal rotation, deg/day: A + B sin^2 + C sin^4 (latitude).
ROTATION_DEG_PER_DAY = (14.713, -2.396, -1.787)
CARRINGTON_DEG_PER_DAY = 14.1844
EPOCH = datetime(2000, 1, 1)
AR_BIN_DAYS = 27.0
AR_MAX_AGE_DAYS = 100.0
CH_BIN_DAYS = 54.0
CH_MAX_AGE_DAYS = 120.0


def days_since_epoch(t: datetime) -> float:
    return (t - EPOCH).total_seconds() / 86400.0


def activity_level(phase_years: float) -> float:
    """Relative AR emergence rate over a cycle (0.1 at minimum, 1 near maximum at ~4 years)."""
    x = min(max(phase_years / 11.0, 0.0), 1.0)
    return 0.1 + 0.9 * (math.sin(math.pi * x ** 0.8)) ** 2


def rotation_rate(lat_deg) -> np.ndarray:
    s2 = np.sin(np.radians(lat_deg)) ** 2
    a, b, c = ROTATION_DEG_PER_DAY
    return a + b * s2 + c * s2 * s2


def drift(lat_deg, days) -> np.ndarray:
    """Carrington-longitude drift (deg) of a feature at ``lat_deg`` after ``days``."""
    return (rotation_rate(lat_deg) - CARRINGTON_DEG_PER_DAY) * days


@dataclass(frozen=True)
class ActiveRegion:
    """A bipole. Longitudes are Carrington degrees at emergence; fields in Gauss; sizes in degrees."""
    emerged_day: float       # days since EPOCH
    decay_days: float
    lat: float
    lon: float
    hemisphere: int          # +1 north, -1 south
    leading_sign: int        # polarity of the leading (westward) spot
    tilt: float              # Joy's-law tilt, degrees (leading spot equatorward when > 0)
    separation: float
    sigma_leading: float
    sigma_following: float
    peak_field: float        # |B| at the leading spot's centre at full strength
    anti_hale: bool = False  # leading_sign is the opposite of Hale's law's
    time_bin: int = 0        # the emergence bin it was drawn in (AR_BIN_DAYS wide) ...
    index: int = 0           # ... and its place in that bin's draw: (Sun's seed, bin, index) names it

    @property
    def hale_sign(self) -> int:
        """The leading polarity Hale's law gives this region (its hemisphere, its cycle)."""
        return -self.leading_sign if self.anti_hale else self.leading_sign

    def strength(self, day: float) -> float:
        age = day - self.emerged_day
        if age < 0 or age > min(4.0 * self.decay_days, AR_MAX_AGE_DAYS):
            return 0.0
        return (1.0 - math.exp(-age / 1.5)) * math.exp(-age / self.decay_days)

    def polarity_centres(self, day: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """((lon, lat) of the leading spot, (lon, lat) of the following spot) at ``day``."""
        lon = self.lon + float(drift(self.lat, day - self.emerged_day))
        half = self.separation / 2.0
        # Joy's law: the axis is tilted so the leading spot is nearer the equator.
        dlat = half * math.sin(math.radians(self.tilt)) * self.hemisphere
        dlon = half * math.cos(math.radians(self.tilt)) / math.cos(math.radians(self.lat))
        return (lon + dlon, self.lat - dlat), (lon - dlon, self.lat + dlat)


@dataclass(frozen=True)
class CoronalHole:
    emerged_day: float
    lifetime_days: float
    lat: float
    lon: float
    sigma: float
    sign: int
    field: float

    def strength(self, day: float) -> float:
        age = day - self.emerged_day
        if age < 0 or age > self.lifetime_days:
            return 0.0
        return math.sin(math.pi * age / self.lifetime_days) ** 0.5


class SyntheticSun:
    """A seeded, evolving photospheric field and the EUV emission it drives.

    ``grid_deg`` is the resolution of the heliographic grid everything is computed on; it is fixed
    per Sun so every instrument observing it at one time sees the same field.
    """

    def __init__(self, seed: int = 0, grid_deg: float = 0.2, ar_rate_per_day: float = 0.9,
                 anti_hale_fraction: float = 0.04, network_field: float = 25.0,
                 polar_field: float = 12.0, field_cadence_minutes: float = 30.0,
                 coronal_hole_rate: float = 1.5):
        self.seed = int(seed)
        self.grid_deg = float(grid_deg)
        self.ar_rate_per_day = ar_rate_per_day
        self.anti_hale_fraction = anti_hale_fraction
        self.network_field = network_field
        self.polar_field = polar_field
        self.field_cadence_minutes = field_cadence_minutes
        self.coronal_hole_rate = coronal_hole_rate
        self.nlat = int(round(180.0 / grid_deg))
        self.nlon = 2 * self.nlat
        self.lats = -90.0 + (np.arange(self.nlat) + 0.5) * grid_deg
        self.lons = (np.arange(self.nlon) + 0.5) * grid_deg
        self._field_cache: dict = {}
        self._emission_cache: dict = {}
        self._network = functools.lru_cache(maxsize=4)(self._network_realization)

    #: What :meth:`parameters` records: everything the field at any time depends on.
    PARAMETERS = ("seed", "grid_deg", "ar_rate_per_day", "anti_hale_fraction", "network_field",
                  "polar_field", "field_cadence_minutes", "coronal_hole_rate")

    def parameters(self) -> dict:
        """The constructor's arguments: ``SyntheticSun(**sun.parameters())`` is the same Sun."""
        return {name: getattr(self, name) for name in self.PARAMETERS}

    # ------------------------------------------------------------------ feature catalogues
    def _rng(self, kind: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, kind, index + 1_000_000])

    def _regions_in_bin(self, k: int) -> list[ActiveRegion]:
        rng = self._rng(1, k)
        start = k * AR_BIN_DAYS
        mid = EPOCH + timedelta(days=start + AR_BIN_DAYS / 2)
        cycle, phase = solar_cycle(mid)
        n = rng.poisson(self.ar_rate_per_day * AR_BIN_DAYS * activity_level(phase))
        regions = []
        # Spoerer's law: emergence latitudes drift from ~28 deg to ~8 deg over the cycle.
        mean_lat = 28.0 - 20.0 * min(max(phase / 11.0, 0.0), 1.0)
        for index in range(n):
            hemisphere = 1 if rng.random() < 0.5 else -1
            abs_lat = float(np.clip(mean_lat + rng.normal(0.0, 5.0), 3.0, 42.0))
            # Relative AR size (lognormal: many small regions, a few large ones). Sizes are those
            # of real regions: the leading spot + its plage ~2-6 deg across (25-70 Mm), polarity
            # separation 5-15 deg, total flux ~1e21-1e23 Mx, so ARs dominate the unsigned flux of an
            # active Sun and keep kG peaks when a 1024-px disk is binned 8x8 (~1 deg per bin).
            size = float(rng.lognormal(0.0, 0.35))
            sign = hale_leading_sign(cycle, hemisphere)
            anti_hale = bool(rng.random() < self.anti_hale_fraction)
            if anti_hale:
                sign = -sign
            regions.append(ActiveRegion(
                emerged_day=start + float(rng.uniform(0.0, AR_BIN_DAYS)),
                decay_days=float(rng.uniform(6.0, 22.0)),
                lat=hemisphere * abs_lat,
                lon=float(rng.uniform(0.0, 360.0)),
                hemisphere=hemisphere,
                leading_sign=sign,
                tilt=float(0.5 * abs_lat + rng.normal(0.0, 4.0)),
                separation=float(np.clip(8.0 * size + rng.normal(0.0, 1.0), 4.0, 18.0)),
                # The leading polarity is a compact sunspot, the following one a diffuse, weaker
                # spread of pores and plage with the same flux (real ARs: Fan 2009, LRSP 6, 4).
                sigma_leading=float(np.clip(1.3 * size, 0.8, 3.0)),
                sigma_following=float(np.clip(2.8 * size, 1.8, 6.0)),
                peak_field=float(np.clip(rng.normal(2600.0, 400.0) * size ** 0.3, 1500.0, 3500.0)),
                anti_hale=anti_hale, time_bin=k, index=index,
            ))
        return regions

    @staticmethod
    def _alive(time: datetime, bin_days: float, max_age_days: float, features_in_bin) -> list:
        """Features born in the time bins that can still be alive at ``time``, and are."""
        day = days_since_epoch(time)
        k_now = math.floor(day / bin_days)
        back = math.ceil(max_age_days / bin_days)
        return [f for k in range(k_now - back, k_now + 1) for f in features_in_bin(k)
                if f.strength(day) > 0.0]

    def active_regions(self, time: datetime) -> list[ActiveRegion]:
        """The ARs alive at ``time`` (deterministic for the seed)."""
        return self._alive(time, AR_BIN_DAYS, AR_MAX_AGE_DAYS, self._regions_in_bin)

    def _holes_in_bin(self, k: int) -> list[CoronalHole]:
        rng = self._rng(2, k)
        n = rng.poisson(self.coronal_hole_rate)
        return [CoronalHole(emerged_day=k * CH_BIN_DAYS + float(rng.uniform(0.0, CH_BIN_DAYS)),
                            lifetime_days=float(rng.uniform(40.0, CH_MAX_AGE_DAYS)),
                            lat=float(rng.uniform(-35.0, 35.0)), lon=float(rng.uniform(0, 360)),
                            sigma=float(rng.uniform(4.0, 8.0)), sign=1 if rng.random() < 0.5 else -1,
                            field=float(rng.uniform(6.0, 12.0)))
                for _ in range(n)]

    def coronal_holes(self, time: datetime) -> list[CoronalHole]:
        return self._alive(time, CH_BIN_DAYS, CH_MAX_AGE_DAYS, self._holes_in_bin)

    def polar_signs(self, time: datetime) -> tuple[int, int]:
        """(north, south) polar-field signs: they match the hemisphere's leading polarity at
        cycle start and reverse around cycle maximum (~4.5 years in)."""
        cycle, phase = solar_cycle(time)
        north = hale_leading_sign(cycle, 1) * (1 if phase < 4.5 else -1)
        return north, -north

    # ------------------------------------------------------------------ grids
    def _blob(self, grid, lon0, lat0, sigma, amplitude):
        """Add amplitude * exp(-d^2 / 2 sigma^2) (d: great-circle-ish distance) to ``grid``."""
        d = self.grid_deg
        half = 4.0 * sigma
        j0 = max(int((lat0 - half + 90.0) / d), 0)
        j1 = min(int((lat0 + half + 90.0) / d) + 1, self.nlat)
        if j1 <= j0:
            return
        lats = self.lats[j0:j1]
        coslat = max(math.cos(math.radians(lat0)), 0.05)
        lon_half = min(half / coslat, 179.0)
        i0 = int(math.floor((lon0 - lon_half) / d))
        cols = np.arange(i0, int(math.ceil((lon0 + lon_half) / d)) + 1)
        dlon = ((cols + 0.5) * d - lon0) * np.cos(np.radians(lats))[:, None]
        dlat = (lats - lat0)[:, None]
        values = amplitude * np.exp(-(dlon ** 2 + dlat ** 2) / (2.0 * sigma ** 2))
        grid[j0:j1, cols % self.nlon] += values.astype(grid.dtype)

    def _network_realization(self, day_index: int) -> np.ndarray:
        """A mixed-polarity network (Gauss) for one day: small flux concentrations of random
        sign along the lanes between supergranular cells (~2-3 deg across). The lanes are the
        zero contours of a smooth random field; the flux is fine-scale, intermittent noise."""
        rng = self._rng(3, day_index)
        px = 1.0 / self.grid_deg
        cells = ndimage.gaussian_filter(rng.standard_normal((self.nlat, self.nlon), dtype=np.float32),
                                        0.6 * px, mode=("nearest", "wrap"))
        lanes = np.exp(-(cells / (0.35 * cells.std())) ** 2)
        flux = ndimage.gaussian_filter(rng.standard_normal((self.nlat, self.nlon), dtype=np.float32),
                                       0.25 * px, mode=("nearest", "wrap"))
        network = lanes * flux * np.abs(flux)
        return (0.8 * self.network_field / network.std() * network).astype(np.float32)

    def _rotated(self, pattern: np.ndarray, days: float) -> np.ndarray:
        """Shift each latitude row by its differential-rotation drift over ``days`` (linear interp)."""
        shift = drift(self.lats, days) / self.grid_deg
        whole = np.floor(shift).astype(int)
        frac = (shift - whole).astype(np.float32)[:, None]
        cols = np.arange(self.nlon)[None, :]
        a = np.take_along_axis(pattern, (cols - whole[:, None]) % self.nlon, axis=1)
        b = np.take_along_axis(pattern, (cols - whole[:, None] - 1) % self.nlon, axis=1)
        return (1.0 - frac) * a + frac * b

    def _network_at(self, day: float) -> np.ndarray:
        """The network (G) at ``day``: two daily realizations blended so it evolves smoothly,
        its variance kept."""
        k = math.floor(day)
        f = day - k
        return (math.cos(math.pi * f / 2) * self._rotated(self._network(k), f)
                + math.sin(math.pi * f / 2) * self._rotated(self._network(k + 1), f - 1.0))

    def _add_region(self, br: np.ndarray, region: ActiveRegion, day: float,
                    leading_sign: int) -> None:
        """Add ``region``'s field at ``day`` to ``br``, its leading polarity ``leading_sign``."""
        s = region.strength(day)
        (llon, llat), (flon, flat) = region.polarity_centres(day)
        peak = region.peak_field * s
        flux_ratio = (region.sigma_leading / region.sigma_following) ** 2
        self._blob(br, llon, llat, region.sigma_leading, leading_sign * peak)
        self._blob(br, flon, flat, region.sigma_following, -leading_sign * peak * flux_ratio)
        # Plage: weaker, wider field of both polarities around the spots.
        self._blob(br, llon, llat, 2.5 * region.sigma_leading, leading_sign * 0.08 * peak)
        self._blob(br, flon, flat, 2.0 * region.sigma_following,
                   -leading_sign * 0.08 * peak * (region.sigma_leading * 2.5) ** 2
                   / (region.sigma_following * 2.0) ** 2)

    def _polar_term(self, time: datetime, network: np.ndarray) -> np.ndarray:
        """The polar caps' field (G): unipolar, concentrated where the network is strong."""
        lat = self.lats[:, None].astype(np.float32)
        north, south = self.polar_signs(time)
        cap = np.abs(np.sin(np.radians(lat))) ** 8
        concentration = (1.0 + 0.5 * np.abs(network) / self.network_field if self.network_field
                         else 1.0)
        return np.where(lat > 0, north, south) * self.polar_field * cap * concentration

    def field_time(self, time: datetime) -> datetime:
        """``time`` rounded to the field's cadence: the channels of one observation (seconds to
        minutes apart) share one surface; the Sun's rotation seen by the observer stays exact."""
        step = self.field_cadence_minutes * 60.0
        seconds = (time - EPOCH).total_seconds()
        return EPOCH + timedelta(seconds=step * round(seconds / step))

    def surface(self, time: datetime) -> dict[str, np.ndarray]:
        """Grids at ``time`` (Carrington lon x lat, float32): 'br' radial field in Gauss, 'open'
        (0-1) the open-field (coronal hole) fraction, and |B| smoothed at 0.3 deg ('fine') and
        2 deg ('loops'). The field evolves in steps of ``field_cadence_minutes``; cached."""
        time = self.field_time(time)
        key = time.isoformat()
        if key in self._field_cache:
            return self._field_cache[key]
        day = days_since_epoch(time)
        network = self._network_at(day)
        br = network.astype(np.float32)
        for region in self.active_regions(time):
            self._add_region(br, region, day, region.leading_sign)
        br += self._polar_term(time, network)
        lat = self.lats[:, None].astype(np.float32)
        # Open field: polar caps (larger near minimum) and low-latitude holes.
        _, phase = solar_cycle(time)
        edge = 60.0 + 10.0 * activity_level(phase)
        open_ = np.broadcast_to(1.0 / (1.0 + np.exp(-(np.abs(lat) - edge) / 2.0)), br.shape).copy()
        for hole in self.coronal_holes(time):
            s = hole.strength(day)
            lon = hole.lon + float(drift(hole.lat, day - hole.emerged_day))
            mask = np.zeros_like(br)
            self._blob(mask, lon, hole.lat, hole.sigma, 1.0)
            shape = np.clip(1.6 * mask, 0.0, 1.0) * s
            open_ = np.maximum(open_, shape)
            br += hole.sign * hole.field * shape
        b = np.abs(br)
        px = 1.0 / self.grid_deg
        result = {"br": br.astype(np.float32), "open": open_.astype(np.float32),
                  "fine": ndimage.gaussian_filter(b, 0.3 * px, mode=("nearest", "wrap")),
                  "loops": ndimage.gaussian_filter(b, 2.0 * px, mode=("nearest", "wrap"))}
        if len(self._field_cache) >= 3:
            self._field_cache.pop(next(iter(self._field_cache)))
        self._field_cache[key] = result
        return result

    def sign_blind_ceiling(self, time: datetime) -> np.ndarray:
        """The radial field (G, the grid of :meth:`surface`) that a model seeing only |B| can at
        best produce: every active region with its Hale sign (anti-Hale ones flipped), the polar
        caps as they are, network and coronal holes zeroed.

        EUV brightness follows |B|, so the sign is what a model must infer. Hale's law gives an
        active region's sign from its hemisphere and shape; the polar caps' sign follows the
        cycle the same way (the same in every map of a hemisphere between reversals), so a model
        learns it as it learns Hale's law, and they stay. An anti-Hale region breaks the rule and
        nothing in |B| says so; the network's and the low-latitude holes' signs are random
        draws: for them the best sign-blind guess is 0.
        """
        time = self.field_time(time)
        day = days_since_epoch(time)
        network = self._network_at(day)
        br = np.zeros_like(network, dtype=np.float32)
        for region in self.active_regions(time):
            self._add_region(br, region, day, region.hale_sign)
        br += self._polar_term(time, network)
        return br

    def region_flux(self, region: ActiveRegion, time: datetime) -> float:
        """Unsigned flux (Mx) of ``region``'s radial field alone at ``time``: |B| over the sphere
        (the photospheric radius of sunpy's constants), as the grid holds it."""
        from sunpy.sun.constants import radius
        day = days_since_epoch(self.field_time(time))
        grid = np.zeros((self.nlat, self.nlon), dtype=np.float32)
        self._add_region(grid, region, day, region.leading_sign)
        cell_cm = math.radians(self.grid_deg) * float(radius.to_value("cm"))
        weights = np.cos(np.radians(self.lats)) * cell_cm ** 2
        return float(np.abs(grid, dtype=np.float64).sum(axis=1) @ weights)

    def radial_field(self, lon_carrington, lat, time: datetime) -> np.ndarray:
        """Radial field (G) at Carrington longitudes / latitudes (degrees), bilinear on the grid."""
        return sample_grid(self.surface(time)["br"], lon_carrington, lat, self.grid_deg)

    def los_field(self, target, time: datetime | None = None) -> np.ndarray:
        """Noiseless line-of-sight field (G) on the pixel grid of ``target``; NaN off the disk.

        ``target`` is a sunpy Map, a FITS header (or dict) with a helioprojective WCS and the
        observer keywords (DSUN_OBS, HGLN_OBS, HGLT_OBS), a path to such a FITS file, or an
        astropy WCS carrying its observer (as ``Map.wcs`` does) and ``pixel_shape``.
        ``time`` defaults to the target's reference time (T_OBS / DATE-AVG / DATE-OBS).
        """
        return self._los(target, time, lambda when: self.surface(when)["br"])

    def ceiling_los_field(self, target, time: datetime | None = None) -> np.ndarray:
        """:meth:`sign_blind_ceiling` seen along the line of sight, as :meth:`los_field`."""
        return self._los(target, time, self.sign_blind_ceiling)

    def _los(self, target, time, grid_at) -> np.ndarray:
        from farside_gan.synthetic.projection import Geometry
        geometry = Geometry.from_target(target)
        when = time or geometry.time
        grid = grid_at(when)
        return geometry.render(lambda lon, lat: sample_grid(grid, lon, lat, self.grid_deg),
                               los=True, carrington_l0=geometry.carrington_l0(when))


def sample_grid(grid: np.ndarray, lon, lat, grid_deg: float) -> np.ndarray:
    """Bilinear interpolation of a (lat, lon) grid at the given degrees; periodic in longitude."""
    nlat, nlon = grid.shape
    x = (np.asarray(lon, dtype=np.float32) % np.float32(360.0)) / np.float32(grid_deg) - np.float32(0.5)
    y = (np.asarray(lat, dtype=np.float32) + np.float32(90.0)) / np.float32(grid_deg) - np.float32(0.5)
    y = np.clip(y, 0.0, nlat - 1.001)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    i0 = x0.astype(np.int64) % nlon
    i1 = (i0 + 1) % nlon
    j0 = y0.astype(np.int64)
    flat = grid.ravel()
    r0 = j0 * nlon
    r1 = r0 + nlon
    return ((flat[r0 + i0] * (1 - fx) + flat[r0 + i1] * fx) * (1 - fy)
            + (flat[r1 + i0] * (1 - fx) + flat[r1 + i1] * fx) * fy)
