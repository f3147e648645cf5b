"""Whole-Sun synchronic Carrington maps: HMI on the near side, generated STEREO maps on the far.

For one time, every source map -- the observed HMI magnetogram (the prepared aligned frame) and
the generated STEREO-A/-B maps, all LOS field in Gauss on their own helioprojective grids -- is
reprojected (``reproject``, through the WCS frames sunpy registers with astropy) onto one
Carrington grid (``sunpy.map.header_helper.make_heliographic_header``: CEA, sine-latitude
spacing as GONG's and HMI's synoptic maps, or CAR), optionally turned into the radial field
(B_LOS / mu, the usual assumption of synoptic maps), and merged with weights mu**k that favour
what each observer saw near its disk centre. ``mu`` is the cosine of the angle between the local
vertical and the line of sight to that observer, computed for every grid pixel from sunpy's
coordinates.

A source covers a grid pixel where its reprojected value is finite (the input's pixels beyond
its ``MASKRAD`` and NaN pixels are left out before reprojecting, so nothing masked leaks in)
and ``mu >= mu_min`` (also the floor of the 1/mu of the radial field). Pixels no source covers
(the poles, gaps between the spacecraft) are NaN and counted in the header (``NGAP``,
``NGAPPOLE``), never filled.

The FITS file: the merged field (primary; Carrington WCS, ``BUNIT = 'Gauss'``), the extensions
``UNCERTAINTY`` (1 sigma in G, when the generated maps carry one: the ensemble spread,
``farside_gan.products.uncertainty``, propagated through the merge), ``SOURCE`` (which instrument
dominates each pixel: the code in the header's ``SRCn`` keywords, 0 = none), ``MU`` (that
source's mu) -- each an image with the same WCS, so ``sunpy.map.Map(path)`` gives the four as
maps, ``sunpy.map.Map(path, hdus=0)`` the field alone -- and ``PROVENANCE`` (a table: role, file,
sha256, the generator's ``CKPTSHA``, observation date and observer of every input).

Uncertainty through the merge: a source's sigma is reprojected like its field (divided by mu
for the radial field) and merged with the same weights, as if the sources' errors were fully
correlated (sum of w sigma / sum of w: the generated maps come from the same generators, so
their errors are not independent; this is the upper bound). The observed HMI field contributes
0: its own noise is not modelled.

What no library does here: the merge itself (weights, coverage, uncertainty propagation) and the
per-pixel mu of a heliographic grid for a given observer (sunpy gives the coordinates; the dot
product is ours). ``reproject_and_coadd`` merges, but with one weight per input pixel, not per
output pixel, and without a dominant-source map.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan import __version__
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, sha256_of, write_fits
from farside_gan.core.instruments import (CHANNELS, FARSIDE_INPUTS, OBSERVERS, TIME_KEY_FORMAT,
                                          TRAINING_TARGET)
from farside_gan.products.uncertainty import UNCERTAINTY_EXTNAME, read_uncertainty

log = logging.getLogger(__name__)

#: SOURCE extension codes (0: no source covers the pixel). Near side first: it wins ties.
SOURCE_CODES = {TRAINING_TARGET: 1,
                **{OBSERVERS[key]: code for code, key in enumerate(FARSIDE_INPUTS, start=2)}}
OBSERVED = (TRAINING_TARGET,)  # observations: no model uncertainty
PROJECTIONS = ("CEA", "CAR")
ALGORITHMS = ("adaptive", "interpolation")
POLE_LATITUDE = 60.0          # gaps poleward of this are counted as polar (NGAPPOLE)


@dataclass(frozen=True)
class SynchronicSettings:
    """The grid and the merge (config section ``synchronic:``)."""
    projection: str = "CEA"              # CEA (sine-latitude, as synoptic maps) or CAR
    pixels: tuple[int, int] = (360, 180)  # longitude x latitude
    weight_power: float = 4.0            # weight of a source: mu ** weight_power
    radial: bool = True                  # B_LOS / mu (else the LOS field as observed)
    mu_min: float = 0.1                  # sources seen at mu below this are not used
    algorithm: str = "adaptive"          # reproject_adaptive (anti-aliased) or bilinear interp

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, not {self.projection!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {self.algorithm!r}")
        nlon, nlat = self.pixels
        if not (int(nlon) == nlon >= 4 and int(nlat) == nlat >= 2):
            raise ValueError(f"pixels (longitude, latitude) must be integers >= (4, 2), not "
                             f"{self.pixels}")
        if not 0 < self.mu_min < 1:
            raise ValueError(f"mu_min must be in (0, 1), not {self.mu_min}")
        if not self.weight_power >= 0:
            raise ValueError(f"weight_power must be >= 0, not {self.weight_power}")


@dataclass
class OnGrid:
    """One source on the Carrington grid."""
    name: str
    path: Path
    value: np.ndarray                 # field (radial or LOS), NaN where not covered
    mu: np.ndarray                    # cosine of the viewing angle (<= 0: far side)
    sigma: np.ndarray | None          # 1 sigma (same units as value); None: unknown
    header: fits.Header = field(repr=False)


def parse_time_key(key: str) -> datetime:
    return datetime.strptime(key, TIME_KEY_FORMAT)


def carrington_header(time, settings: SynchronicSettings) -> fits.Header:
    """The Carrington grid at ``time`` (longitudes 0-360 from the left edge), seen from Earth
    (sunpy's Carrington frame needs an observer: the light travel time to it)."""
    import astropy.units as u
    from sunpy.coordinates import get_earth
    from sunpy.map.header_helper import make_heliographic_header

    nlon, nlat = (int(p) for p in settings.pixels)
    header = make_heliographic_header(time, get_earth(time), (nlat, nlon), frame="carrington",
                                      projection_code=settings.projection,
                                      map_center_longitude=180 * u.deg)
    return fits.Header(header)


def grid_coordinates(header: fits.Header) -> tuple[np.ndarray, np.ndarray]:
    """(Carrington longitude, latitude) in degrees of every pixel centre of a grid header."""
    from astropy.wcs import WCS
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    x, y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float))
    lon, lat = WCS(header).pixel_to_world_values(x, y)
    return np.mod(lon, 360.0), lat


def pixel_areas(header: fits.Header) -> np.ndarray:
    """Solid angle of every pixel of a cylindrical grid (steradian): dlon x d(sin lat), from
    the pixel edges in the WCS (equal for CEA, cos(lat)-weighted for CAR)."""
    from astropy.wcs import WCS
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    wcs = WCS(header)
    _, lat_edges = wcs.pixel_to_world_values(np.zeros(ny + 1), np.arange(ny + 1) - 0.5)
    lon_edges, _ = wcs.pixel_to_world_values(np.array([-0.5, 0.5]), np.zeros(2))
    dlon = np.radians(abs(lon_edges[1] - lon_edges[0]))
    dsin = np.abs(np.diff(np.sin(np.radians(np.clip(lat_edges, -90, 90)))))
    return np.broadcast_to((dlon * dsin)[:, None], (ny, nx)).copy()


def observer_mu(grid_header: fits.Header, observer, obstime) -> np.ndarray:
    """Cosine of the angle between the local vertical of every grid pixel's surface point and
    the line of sight to ``observer`` (a SkyCoord): 1 at the observer's disk centre, 0 at its
    limb, negative on its far side."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import HeliographicCarrington, HeliographicStonyhurst, get_earth

    lon, lat = grid_coordinates(grid_header)
    frame = HeliographicCarrington(obstime=obstime, observer=get_earth(obstime))
    # the unit sphere: mu depends on direction only up to R_sun / distance, taken exactly below
    rsun = float(grid_header.get("RSUN_REF", 695700000.0))
    points = SkyCoord(lon * u.deg, lat * u.deg, rsun * u.m, frame=frame)
    stonyhurst = HeliographicStonyhurst(obstime=obstime)
    p = points.transform_to(stonyhurst).cartesian.xyz.to_value(u.m)
    o = observer.transform_to(stonyhurst).cartesian.xyz.to_value(u.m)
    normal = p / np.linalg.norm(p, axis=0)
    sight = o[:, None, None] - p
    return np.sum(normal * sight, axis=0) / np.linalg.norm(sight, axis=0)


def disk_pixels(header: fits.Header, shape, path) -> np.ndarray:
    """The pixels a map's values are valid on: within ``MASKRAD`` disk radii of the Sun's
    centre (its pixel from the WCS; the radius R_SUN in pixels, else RSUN_OBS / CDELT1)."""
    from astropy.wcs import WCS
    for key in ("MASKRAD",):
        if key not in header:
            raise InputDataError(path, f"no {key}: cannot tell which pixels are on the disk",
                                 reason="missing_keyword")
    if header.get("R_SUN"):
        radius = float(header["R_SUN"])
    elif header.get("RSUN_OBS") and header.get("CDELT1"):
        radius = abs(float(header["RSUN_OBS"]) / float(header["CDELT1"]))
    else:
        raise InputDataError(path, "no R_SUN (nor RSUN_OBS with CDELT1): the disk radius is "
                             "unknown", reason="missing_keyword")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sunpy/astropy warn about keywords they complete
        cx, cy = WCS(header).celestial.world_to_pixel_values(0.0, 0.0)
    y, x = np.ogrid[:shape[0], :shape[1]]
    return np.hypot(x - float(cx), y - float(cy)) <= float(header["MASKRAD"]) * radius


def source_map(path, role: str) -> tuple[np.ndarray, np.ndarray | None, fits.Header, object]:
    """(field with NaN off the disk, its uncertainty or None, header, sunpy map of the header)
    of one input map. The header must give the geometry (WCS, observer, date, MASKRAD)."""
    import sunpy.map
    data, header = read_fits(path)
    if data.ndim != 2:
        raise InputDataError(path, f"expected a 2-D map, got shape {data.shape}",
                             reason="bad_shape")
    for key in ("DATE-OBS", "HGLN_OBS", "HGLT_OBS", "DSUN_OBS"):
        if key not in header:
            raise InputDataError(path, f"no {key}: the observer is unknown",
                                 reason="missing_keyword")
    disk = disk_pixels(header, data.shape, path)
    value = np.where(disk, data.astype(np.float32), np.float32(np.nan))
    sigma = None if role in OBSERVED else read_uncertainty(path)
    if sigma is not None:
        sigma = np.where(disk, sigma, np.float32(np.nan))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smap = sunpy.map.Map(np.zeros((1, 1), dtype=np.float32), header)
            smap.observer_coordinate  # noqa: B018  (fails here, naming the file, if unusable)
    except Exception as exc:  # sunpy raises several types for unusable metadata
        raise InputDataError(path, f"header does not give a usable WCS/observer ({exc})",
                             reason="inconsistent_header") from exc
    return value, sigma, header, smap


def reproject_to_grid(images: np.ndarray, header: fits.Header, grid_header: fits.Header,
                      algorithm: str) -> np.ndarray:
    """``images`` (k, ny, nx) on the WCS of ``header`` -> (k, nlat, nlon) on the grid; NaN
    where the grid pixel is not seen or touches a NaN input pixel."""
    import reproject
    from astropy.wcs import WCS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sunpy/astropy warn about keywords they complete
        wcs_in, wcs_out = WCS(header).celestial, WCS(grid_header)
        shape = (int(grid_header["NAXIS2"]), int(grid_header["NAXIS1"]))
        if algorithm == "adaptive":
            # Averages over each grid pixel's footprint (anti-aliased), ignoring NaN inputs; a
            # grid pixel counts as seen only where its centre falls on a valid input pixel, so
            # the average never reaches past the disk's mask (strict NaN handling would lose
            # the limb band a kernel's width wide instead).
            values = reproject.reproject_adaptive((images, wcs_in), wcs_out, shape_out=shape,
                                                  conserve_flux=False, bad_value_mode="ignore",
                                                  boundary_mode="strict", return_footprint=False)
            valid = np.where(np.isfinite(images[0]), 1.0, np.nan)
            seen = reproject.reproject_interp((valid, wcs_in), wcs_out, shape_out=shape,
                                              order="nearest-neighbor", return_footprint=False)
            return np.where(np.isfinite(seen), values, np.nan)
        return reproject.reproject_interp((images, wcs_in), wcs_out, shape_out=shape,
                                          order="bilinear", return_footprint=False)


def source_on_grid(role: str, path, settings: SynchronicSettings) -> OnGrid:
    """One input map on the Carrington grid: its field (B_LOS / mu when ``radial``), mu and
    sigma. The grid is taken at the input's own time, so a feature's Carrington coordinates are
    where this observer saw it."""
    value, sigma, header, smap = source_map(path, role)
    grid = carrington_header(smap.date, settings)
    images = np.stack([value] + ([sigma] if sigma is not None else []))
    on_grid = reproject_to_grid(images, header, grid, settings.algorithm).astype(np.float32)
    mu = observer_mu(grid, smap.observer_coordinate, smap.date).astype(np.float32)
    covered = np.isfinite(on_grid[0]) & (mu >= settings.mu_min)
    scale = np.where(covered, 1.0 / np.maximum(mu, settings.mu_min), np.nan) if settings.radial \
        else np.where(covered, 1.0, np.nan)
    on_sigma = (on_grid[1] * scale).astype(np.float32) if sigma is not None else None
    if role in OBSERVED:
        on_sigma = np.zeros_like(mu)
    return OnGrid(role, Path(path), (on_grid[0] * scale).astype(np.float32), mu, on_sigma,
                  header)


def merge(sources: list[OnGrid], settings: SynchronicSettings) -> dict[str, np.ndarray]:
    """The weighted merge: ``field`` (NaN where no source covers), ``sigma`` (None when a
    generated source has none), ``source`` (code of the source with the largest weight, 0 for
    none) and ``mu`` (that source's). Where one source covers a pixel, its value is the
    merged value."""
    if not sources:
        raise ValueError("nothing to merge")
    shape = sources[0].mu.shape
    total = np.zeros(shape)
    weighted = np.zeros(shape)
    weighted_sigma = np.zeros(shape)
    best = np.zeros(shape)
    code = np.zeros(shape, dtype=np.uint8)
    best_mu = np.full(shape, np.nan, dtype=np.float32)
    count = np.zeros(shape, dtype=int)
    generated = [s for s in sources if s.name not in OBSERVED]
    with_sigma = bool(generated) and all(s.sigma is not None for s in generated)
    for s in sorted(sources, key=lambda s: SOURCE_CODES[s.name]):
        covered = np.isfinite(s.value) & (s.mu > 0)
        w = np.where(covered, np.maximum(s.mu, 0.0) ** settings.weight_power, 0.0)
        total += w
        weighted += np.where(covered, w * np.nan_to_num(s.value), 0.0)
        if with_sigma:
            weighted_sigma += np.where(covered, w * np.nan_to_num(s.sigma), 0.0)
        wins = covered & (w > best)
        best = np.where(wins, w, best)
        code[wins] = SOURCE_CODES[s.name]
        best_mu[wins] = s.mu[wins]
        count = count + covered
    seen = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(seen, weighted / total, np.nan).astype(np.float32)
        sigma = np.where(seen, weighted_sigma / total, np.nan).astype(np.float32) \
            if with_sigma else None
    # one source alone: exactly its value (w * v / w may round)
    for s in sources:
        alone = (count == 1) & (code == SOURCE_CODES[s.name])
        merged[alone] = s.value[alone]
        if sigma is not None:
            sigma[alone] = s.sigma[alone]
    return {"field": merged, "sigma": sigma, "source": code, "mu": best_mu}


def _provenance_hdu(sources: list[OnGrid], missing: list[str],
                    calibration=None) -> fits.BinTableHDU:
    rows = [(s.name, str(s.path), sha256_of(s.path), str(s.header.get("CKPTSHA", "")),
             str(s.header.get("DATE-OBS", "")), float(s.header["HGLN_OBS"]),
             float(s.header["HGLT_OBS"])) for s in sources]
    rows += [(role, "", "", "", "", np.nan, np.nan) for role in missing]
    if calibration is not None:
        rows.append(("calibration", str(calibration), sha256_of(calibration), "", "", np.nan,
                     np.nan))
    names = ("ROLE", "FILE", "SHA256", "CKPTSHA", "DATE_OBS", "HGLN_OBS", "HGLT_OBS")
    formats = ("16A", "300A", "64A", "64A", "32A", "D", "D")
    columns = [fits.Column(name=n, format=f, array=[r[i] for r in rows],
                           unit="deg" if n.startswith("HGL") else None)
               for i, (n, f) in enumerate(zip(names, formats))]
    return fits.BinTableHDU.from_columns(columns, name="PROVENANCE")


def synchronic_map(time, inputs: dict[str, str | os.PathLike | None],
                   settings: SynchronicSettings = SynchronicSettings(),
                   calibration: str | os.PathLike | None = None
                   ) -> tuple[dict[str, np.ndarray], fits.Header, list[fits.hdu.base.ExtensionHDU]]:
    """Merge the ``inputs`` (role -> map file or None: ``hmi``, ``stereo_a``, ``stereo_b``)
    at ``time``; returns (the merged arrays, the primary header, the extension HDUs).

    ``calibration``: a file of ``uncertainty_calibration.fit_calibration`` fitted on this grid; the merged
    uncertainty is multiplied by its factor (the generated maps' own extensions stay the raw
    ensemble std)."""
    unknown = set(inputs) - set(SOURCE_CODES)
    if unknown:
        raise ValueError(f"unknown source roles {sorted(unknown)}; known: {list(SOURCE_CODES)}")
    sources = [source_on_grid(role, path, settings)
               for role, path in inputs.items() if path is not None]
    missing = [role for role, path in inputs.items() if path is None]
    if not sources:
        raise ValueError(f"no input map for {time}")
    arrays = merge(sources, settings)
    factor, calibrated = 1.0, calibration is not None and arrays["sigma"] is not None
    if calibrated:
        from farside_gan.products.uncertainty import read_calibration
        factor = read_calibration(calibration, settings)
        arrays["sigma"] = (arrays["sigma"] * np.float32(factor)).astype(np.float32)
    header = carrington_header(time, settings)
    lon, lat = grid_coordinates(header)
    gap = ~np.isfinite(arrays["field"])
    header["BUNIT"] = ("Gauss", "radial field B_LOS/mu" if settings.radial else "LOS field")
    header["CONTENT"] = "synchronic " + ("radial" if settings.radial else "line-of-sight") \
        + " field"
    header["INSTRUME"] = ("farside-gan", "observed HMI and generated STEREO maps merged")
    header["SYNPROJ"] = (settings.projection, "Carrington grid projection")
    header["RADIAL"] = (bool(settings.radial), "field is B_LOS / mu")
    header["WPOWER"] = (float(settings.weight_power), "merge weight mu ** WPOWER")
    header["MUMIN"] = (float(settings.mu_min), "sources seen at mu below are not used")
    header["REPALG"] = (settings.algorithm, "reproject algorithm")
    header["NGAP"] = (int(gap.sum()), "pixels no source covers (NaN)")
    header["NGAPPOLE"] = (int((gap & (np.abs(lat) > POLE_LATITUDE)).sum()),
                          f"of them poleward of {POLE_LATITUDE:g} deg")
    for role, code in SOURCE_CODES.items():
        header[f"SRC{code}"] = (role, f"SOURCE code {code}")
        header[f"NSRC{code}"] = (int((arrays["source"] == code).sum()), f"pixels led by {role}")
    if arrays["sigma"] is not None:
        header["UNCCALF"] = (factor, "UNCERTAINTY = this x the merged ensemble std")
    header["CREATOR"] = ("farside-gan", "software that wrote this file")
    header["SWVER"] = (__version__, "farside-gan version")
    for s in sources:
        header.add_history(f"{s.name}: {s.path.name} ({s.header.get('DATE-OBS', '')})")
    for role in missing:
        header.add_history(f"{role}: no map at this time")

    def image(data, bunit, content):
        h = header.copy()
        h.remove("HISTORY", ignore_missing=True, remove_all=True)
        h["BUNIT"], h["CONTENT"] = bunit, content
        return h, data

    extensions = []
    if arrays["sigma"] is not None:
        h, data = image(arrays["sigma"], "Gauss", "1-sigma uncertainty (ensemble, merged)")
        extensions.append(fits.ImageHDU(data, h, name=UNCERTAINTY_EXTNAME))
    h, data = image(arrays["source"], "", "dominant source: code SRCn, 0 none")
    extensions.append(fits.ImageHDU(data, h, name="SOURCE"))
    h, data = image(arrays["mu"], "", "mu of the dominant source")
    extensions.append(fits.ImageHDU(data, h, name="MU"))
    extensions.append(_provenance_hdu(sources, missing,
                                      calibration if calibrated else None))
    return arrays, header, extensions


def write_synchronic(path, time, inputs, settings: SynchronicSettings = SynchronicSettings(),
                     png: str | os.PathLike | None = None,
                     uncertainty_png: str | os.PathLike | None = None,
                     calibration: str | os.PathLike | None = None) -> Path:
    """Write the synchronic map of ``time`` (``synchronic_map``) as FITS, and its PNGs."""
    arrays, header, extensions = synchronic_map(time, inputs, settings, calibration)
    path = write_fits(path, arrays["field"], header, extra_hdus=extensions)
    if png is not None or uncertainty_png is not None:
        from farside_gan.core.figures import save
        from farside_gan.products.figures import synchronic_figure, uncertainty_figure
        if png is not None:
            save(synchronic_figure(path), png)
        if uncertainty_png is not None and arrays["sigma"] is not None:
            save(uncertainty_figure(path), uncertainty_png)
    log.info("%s: %s (%d gap pixels)", time, path, header["NGAP"])
    return path


def period_inputs(farside_dirs: dict[str, str | os.PathLike],
                  hmi_prepared: str | os.PathLike | None) -> dict[str, dict[str, Path | None]]:
    """Time key -> role -> map (or None) for every time a farside map exists in the period."""
    farside = {role: {p.stem: p for p in sorted(Path(d).glob("*.fits"))}
               for role, d in farside_dirs.items()}
    hmi = {}
    if hmi_prepared is not None:
        from farside_gan.prepare.period import read_prepared
        for entry in read_prepared(hmi_prepared):
            frame = (entry.get("aligned") or {}).get(CHANNELS[TRAINING_TARGET][0])
            if entry["status"] == "ok" and frame:
                hmi[entry["time"]] = Path(frame)
    times = sorted({t for maps in farside.values() for t in maps})
    return {t: {TRAINING_TARGET: hmi.get(t), **{role: maps.get(t) for role, maps in farside.items()}}
            for t in times}


def synchronic_period(out_dir, farside_dirs: dict[str, str | os.PathLike],
                      hmi_prepared: str | os.PathLike | None = None,
                      settings: SynchronicSettings = SynchronicSettings(),
                      png_dir=None, uncertainty_png_dir=None, calibration=None) -> list[Path]:
    """``out_dir/<time>.fits`` for every time of the period with a farside map (PNGs in
    ``png_dir``/``uncertainty_png_dir`` under the same name); the directories are made even
    when there is no such time."""
    out_dir = Path(out_dir)
    for d in (out_dir, png_dir, uncertainty_png_dir):
        if d is not None:
            Path(d).mkdir(parents=True, exist_ok=True)
    written = []
    for key, inputs in period_inputs(farside_dirs, hmi_prepared).items():
        if inputs[TRAINING_TARGET] is None:
            log.warning("%s: no usable HMI frame; the near side is NaN where no STEREO map "
                        "covers it", key)
        written.append(write_synchronic(
            out_dir / f"{key}.fits", parse_time_key(key), inputs, settings,
            png=Path(png_dir) / f"{key}.png" if png_dir is not None else None,
            uncertainty_png=Path(uncertainty_png_dir) / f"{key}.png"
            if uncertainty_png_dir is not None else None, calibration=calibration))
    return written
