"""One validation layer for frames at the stage boundaries: fetch, calibrate, align, normalize,
stack, predict.

sunpy completes a header that lacks geometry with assumptions (CROTA2 0, CDELT 1"/px, CRPIX at
the frame centre, DATE-OBS the current time, an Earth observer), so a bad frame would become a
wrong map without a word. Every check here raises :class:`InputDataError` naming the file and
the keyword, with a ``reason`` code: the fetch check records it and drops the frame (the
manifest shows why); the later stages stop with that one line.

The tables below (required keywords per stage and instrument, physical ranges) are the one place
for these facts. Requirements are written as ``"A|B+C"``: keyword A, or both B and C.

Reason codes: ``corrupt_header`` (a card astropy cannot parse), ``missing_keyword``,
``inconsistent_header`` (a value that is not what it claims, or two keywords that disagree),
``out_of_range`` (physically implausible), ``bad_shape``, ``empty_data`` (0/NaN where the
Sun is), ``degenerate_data`` (constant), ``mostly_nan``, ``wrong_channel``, ``time_mismatch``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError

from farside_gan.core import conventions
from farside_gan.core.conventions import GEOMETRY_KEYWORDS
from farside_gan.core.errors import InputDataError
from farside_gan.core.instruments import (CHANNELS, EUV, EUV_INSTRUMENTS, INSTRUMENTS, MAGNETOGRAM,
                                          instrument_of, obs_time, reference_time, utc_time)

AU_M = 149_597_870_700.0

# ----------------------------------------------------------------------------- tables

_DATE = "DATE-OBS|DATE_OBS"
_PC = "PC1_1+PC1_2+PC2_1+PC2_2"
_CD = "CD1_1+CD1_2+CD2_1+CD2_2"
#: The roll keyword each instrument's sunpy map class reads when there is no PC/CD matrix
#: (EUVIMap reads CROTA, the others CROTA2); without any of them sunpy assumes 0 degrees.
CROTA_KEY = {key: i.roll_keyword for key, i in INSTRUMENTS.items()}
_ROTATION = {inst: f"{key}|{_PC}|{_CD}" for inst, key in CROTA_KEY.items()}
_ALIGNED_ROTATION = f"CROTA2|{_PC}|{_CD}"  # align writes PC and CROTA2, whatever the instrument
_WCS = ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
        "CDELT1", "CDELT2")
_OBSERVER = ("DSUN_OBS", "HGLN_OBS+HGLT_OBS|CRLN_OBS+CRLT_OBS")
_GEOMETRY = {inst: (_DATE, *_WCS, _ROTATION[inst], *_OBSERVER) for inst in CROTA_KEY}
_EXPOSURE = ("WAVELNTH", "EXPTIME")
_STACK_WCS = (_DATE, *_WCS, _ALIGNED_ROTATION, *_OBSERVER, "R_SUN|RSUN_OBS")
#: What each role's raw frame must say beyond its geometry: an EUV imager its channel and
#: exposure, a magnetograph what the image is.
_ROLE_KEYWORDS = {EUV: _EXPOSURE, MAGNETOGRAM: ("CONTENT",)}
#: What each calibration procedure (``calibrate.CALIBRATIONS``) reads.
_CALIBRATION_KEYWORDS = {"aia_prep": (_DATE, *_EXPOSURE), "hmi_los": (),
                         "secchi_prep": ("EXPTIME",)}

#: stage -> instrument -> keywords the stage reads (and must not guess).
REQUIRED = {
    # the fetch check asks for everything the later stages need, so a frame that would fail
    # there is dropped (and recorded) here instead of stopping the workflow later
    "fetch": {key: (*_GEOMETRY[key], *_ROLE_KEYWORDS[i.role]) for key, i in INSTRUMENTS.items()},
    "calibrate": {key: _CALIBRATION_KEYWORDS[i.calibration] for key, i in INSTRUMENTS.items()},
    "align": _GEOMETRY,
    # the disk's centre, CRPIX, tells whether the data are of the size the header was written for
    "normalize": {inst: (GEOMETRY_KEYWORDS["rsun_px"], GEOMETRY_KEYWORDS["mask_radius"],
                         "CRPIX1", "CRPIX2") for inst in CROTA_KEY},
    "stack": {inst: (_DATE, "WAVELNTH", GEOMETRY_KEYWORDS["rsun_px"],
                     GEOMETRY_KEYWORDS["mask_radius"], "CRPIX1", "CRPIX2", "NORMMED")
              for inst in EUV_INSTRUMENTS},
    "predict": {inst: (*_STACK_WCS, "CHAN1") for inst in EUV_INSTRUMENTS},
}

#: Exposure time (s) of the instruments that have one (HMI's 720 s magnetograms are not
#: exposure-normalized); observer distance (au): SDO at Earth (0.983-1.017), STEREO-A ~0.96,
#: STEREO-B ~1.0-1.09; first light. The registry (``layout.INSTRUMENTS``) holds the values.
EXPOSURE_S = {key: i.exposure_s for key, i in INSTRUMENTS.items() if i.exposure_s}
DSUN_AU = {key: i.dsun_au for key, i in INSTRUMENTS.items()}
#: RSUN_REF (m), when given: 6.957e8 (IAU nominal) to 6.96e8 (SDO, SECCHI).
RSUN_REF_M = (6.90e8, 7.00e8)
#: Relative disagreement allowed between RSUN_OBS and asin(RSUN_REF / DSUN_OBS).
RSUN_TOLERANCE = 0.02
#: Plate scale, as the disk radius over the frame width: full-disk frames of AIA (0.39), HMI
#: (0.47) and EUVI (0.30), binned or not; a wrong CDELT or CUNIT puts it far outside.
DISK_RADIUS_FRACTION = (0.1, 1.0)
#: An aligned frame's MASKRAD (solar radii).
MASK_RADIUS_RANGE = (0.1, 2.0)
#: CDELT1 / CDELT2: the pixels of every instrument here are square.
MAX_PIXEL_ASPECT = 1.01
#: A PC (or CD / CDELT) matrix must be a rotation to this accuracy, and agree with CROTA.
ROTATION_TOLERANCE = 1e-3
CROTA_AGREEMENT_DEG = 0.1
MISSION_START = {key: i.mission_start for key, i in INSTRUMENTS.items()}
#: T_OBS / DATE-AVG lie within this of DATE-OBS (HMI's T_OBS is 6 min later, in TAI).
TIME_KEYWORDS_AGREE = timedelta(hours=1)
#: How much further than the fetch tolerance a fetched frame's own mid-exposure time may lie
#: from the time it was fetched for: what separates the time a source lists (the exposure's
#: start at the VSO) from the middle of the exposure (EUVI's are at most a minute).
OBS_TIME_SLACK = timedelta(minutes=1)
#: Fraction of the pixels within 0.9 Rsun that may be 0 or NaN: a few exact zeros are possible
#: (quantized weak fields); more is a partly empty frame (lost telemetry blocks).
MAX_EMPTY_DISK_FRACTION = 0.05
EMPTY_DISK_RADIUS = 0.9
#: The channels of a stack observed at most this far apart: twice the default fetch
#: tolerance (each channel is the one nearest the wanted time within 1 h).
MAX_STACK_TIME_SPREAD = timedelta(hours=2)

_ANGLE_UNITS_ARCSEC = {"arcsec": 1.0, "arcmin": 60.0, "deg": 3600.0, "rad": math.degrees(1) * 3600}


# ----------------------------------------------------------------------------- headers

def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_all_cards(header: fits.Header, path=None) -> None:
    """Raise ``corrupt_header`` naming the first card astropy cannot parse (it would raise a
    VerifyError from wherever the value is first read)."""
    for card in header.cards:
        try:
            card.value  # noqa: B018 - parsing is the point
        except (VerifyError, ValueError) as exc:
            with warnings.catch_warnings():  # showing the card makes astropy "fix" it, loudly
                warnings.simplefilter("ignore")
                image = card.image.strip()
            raise InputDataError(path, f"header card {card.keyword or '?'} cannot be parsed "
                                 f"({image!r})", reason="corrupt_header") from exc


def _present(header, key: str) -> bool:
    value = header.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip()) \
        and not isinstance(value, fits.card.Undefined)


def _satisfied(header, requirement: str) -> bool:
    return any(all(_present(header, k) for k in option.split("+"))
               for option in requirement.split("|"))


def _describe(requirement: str) -> str:
    """``"CROTA2|PC1_1+...|CD1_1+..."`` -> ``"CROTA2 or a complete PC matrix or ..."``."""
    options = []
    for option in requirement.split("|"):
        keys = option.split("+")
        options.append(f"a complete {keys[0][:2]} matrix" if keys[0][:2] in ("PC", "CD")
                       and len(keys) == 4 else "/".join(keys))
    return " or ".join(options)


def require(header: fits.Header, instrument: str, stage: str, path=None) -> None:
    """Raise ``missing_keyword`` naming every requirement of ``stage`` the header lacks."""
    missing = [r for r in REQUIRED[stage].get(instrument, ()) if not _satisfied(header, r)]
    if missing:
        roll = any(r in (_ROTATION.get(instrument), _ALIGNED_ROTATION) for r in missing)
        raise InputDataError(path, f"header lacks {'; '.join(_describe(r) for r in missing)}, which "
                             f"{stage} needs for {instrument} frames"
                             + (" (sunpy would assume a roll of 0 degrees)" if roll else ""),
                             reason="missing_keyword")


def number(header: fits.Header, key: str, path=None) -> float:
    """A keyword's value as a finite float, or ``inconsistent_header`` naming it."""
    value = header.get(key)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputDataError(path, f"{key} = {value!r} is not a number",
                             reason="inconsistent_header") from None
    if not math.isfinite(x):
        raise InputDataError(path, f"{key} = {x} is not finite", reason="inconsistent_header")
    return x


def in_range(header: fits.Header, key: str, bounds: tuple[float, float], path=None,
             unit: str = "", scale: float = 1.0) -> float:
    """``number(key)``, refused as ``out_of_range`` outside ``bounds`` (in units of ``scale``)."""
    x = number(header, key, path)
    lo, hi = bounds
    if not lo <= x / scale <= hi:
        shown = f"{x / scale:.4g}{unit}"
        raise InputDataError(path, f"{key} = {shown} is outside the physical range "
                             f"[{lo:g}, {hi:g}]{unit}", reason="out_of_range")
    return x


def check_exposure(header: fits.Header, instrument: str, path=None) -> float:
    """EXPTIME (s) within the instrument's range; the value calibrate divides by."""
    if not _present(header, "EXPTIME"):
        raise InputDataError(path, "header lacks EXPTIME", reason="missing_keyword")
    return in_range(header, "EXPTIME", EXPOSURE_S[instrument], path, " s")


def check_wavelength(header: fits.Header, instrument: str, known=None, path=None) -> int:
    """WAVELNTH as an integer (Angstrom), one of ``known`` (default: the pipeline's channels)."""
    if not _present(header, "WAVELNTH"):
        raise InputDataError(path, "header lacks WAVELNTH", reason="missing_keyword")
    wavelength = number(header, "WAVELNTH", path)
    known = CHANNELS[instrument] if known is None else known
    if int(round(wavelength)) not in known:
        raise InputDataError(path, f"WAVELNTH = {wavelength:g} is not a {instrument} channel "
                             f"{tuple(known)}", reason="wrong_channel")
    return int(round(wavelength))


def check_times(header: fits.Header, instrument: str | None, path=None) -> datetime:
    """DATE-OBS parsed and plausible (after first light, not in the future); T_OBS and DATE-AVG,
    when given, parse and agree with it. Returns DATE-OBS (naive UTC)."""
    t = obs_time(header, path)
    start = MISSION_START.get(instrument, datetime(1990, 1, 1))
    if not start <= t <= _utc_now() + timedelta(days=1):
        raise InputDataError(path, f"DATE-OBS {t.isoformat()} is outside the {instrument or 'mission'} "
                             f"data period (from {start:%Y-%m-%d} to now)", reason="out_of_range")
    for key in ("T_OBS", "DATE-AVG"):
        text = str(header.get(key, "") or "").strip()
        if not text or "MISSING" in text.upper():
            continue
        try:
            other = utc_time(text)
        except ValueError:
            raise InputDataError(path, f"{key} = {text!r} is not a time",
                                 reason="inconsistent_header") from None
        if abs(other - t) > TIME_KEYWORDS_AGREE:
            raise InputDataError(path, f"{key} {other.isoformat()} is {abs(other - t)} from DATE-OBS "
                                 f"{t.isoformat()}", reason="inconsistent_header")
    return t


def check_requested_time(header: fits.Header, requested: datetime, tolerance: timedelta,
                         path=None) -> datetime:
    """The frame's own time (mid-exposure UTC, ``reference_time``) within ``tolerance`` of the
    time it was fetched for; a source whose catalog lists the file under another time would
    otherwise make it a frame of that time. Returns the frame's time."""
    t = reference_time(header, path)
    off = abs(t - requested)
    if off > tolerance + OBS_TIME_SLACK:
        date_obs = obs_time(header, path).isoformat()
        raise InputDataError(path, f"observed {t.isoformat()} (DATE-OBS {date_obs}), {off} from "
                             f"the requested {requested.isoformat()} (tolerance {tolerance}): "
                             "the source lists it under another time", reason="time_mismatch")
    return t


# ----------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class Disk:
    """Where a header puts the Sun in its frame: centre (0-based column, row) and radius (px)."""
    x: float
    y: float
    radius: float

    def mask(self, shape, fraction: float = 1.0) -> np.ndarray:
        # broadcast rows against columns: a 4096 px frame needs no (2, N, N) index grid
        y = (np.arange(shape[-2], dtype=np.float32) - np.float32(self.y))[:, None]
        x = (np.arange(shape[-1], dtype=np.float32) - np.float32(self.x))[None, :]
        return x * x + y * y <= np.float32((fraction * self.radius) ** 2)


def _arcsec_per_unit(header, axis: int, path) -> float:
    unit = str(header.get(f"CUNIT{axis}", "")).strip().lower()
    if unit not in _ANGLE_UNITS_ARCSEC:
        raise InputDataError(path, f"CUNIT{axis} = {header.get(f'CUNIT{axis}')!r} is not an angle "
                             f"unit {tuple(_ANGLE_UNITS_ARCSEC)}", reason="inconsistent_header")
    return _ANGLE_UNITS_ARCSEC[unit]


def rotation_matrix(header: fits.Header, instrument: str, cdelt=(1.0, 1.0), path=None) -> np.ndarray:
    """The matrix sunpy's map takes the roll from (PC, else CD / CDELT, else CROTA), checked to
    be a rotation and, when both are given, to agree with the CROTA keyword."""
    crota_key = CROTA_KEY.get(instrument, "CROTA2")
    crota = None
    if _present(header, crota_key):
        crota = number(header, crota_key, path)
        if abs(crota) > 360:
            raise InputDataError(path, f"{crota_key} = {crota:g} deg is not a roll angle",
                                 reason="out_of_range")
    if _satisfied(header, _PC):
        matrix, source = np.array([[number(header, f"PC{i}_{j}", path) for j in (1, 2)]
                                   for i in (1, 2)]), "PC"
    elif _satisfied(header, _CD):
        matrix = np.array([[number(header, f"CD{i}_{j}", path) for j in (1, 2)] for i in (1, 2)])
        matrix, source = matrix / np.array(cdelt)[:, None], "CD/CDELT"
    elif crota is not None:
        c, s = math.cos(math.radians(crota)), math.sin(math.radians(crota))
        return np.array([[c, -s], [s, c]])
    else:
        raise InputDataError(path, f"header lacks {_describe(_ROTATION.get(instrument, crota_key))}",
                             reason="missing_keyword")
    if not np.allclose(matrix @ matrix.T, np.eye(2), atol=ROTATION_TOLERANCE):
        raise InputDataError(path, f"the {source} matrix {matrix.round(4).tolist()} is not a rotation",
                             reason="inconsistent_header")
    if crota is not None:
        angle = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
        if abs((angle - crota + 180) % 360 - 180) > CROTA_AGREEMENT_DEG:
            raise InputDataError(path, f"{crota_key} = {crota:.4f} deg disagrees with the {source} "
                                 f"matrix's roll {angle:.4f} deg", reason="inconsistent_header")
    return matrix


def rsun_arcsec(header: fits.Header, instrument: str | None, path=None) -> float:
    """The Sun's angular radius: RSUN_OBS (RSUN for EUVI), checked against RSUN_REF / DSUN_OBS."""
    dsun = number(header, "DSUN_OBS", path)
    if instrument in DSUN_AU:
        in_range(header, "DSUN_OBS", DSUN_AU[instrument], path, " au", scale=AU_M)
    elif not dsun > 0:
        raise InputDataError(path, f"DSUN_OBS = {dsun:g} m is not a distance", reason="out_of_range")
    rsun_ref = in_range(header, "RSUN_REF", RSUN_REF_M, path, " m") \
        if _present(header, "RSUN_REF") else 6.957e8
    expected = math.degrees(math.asin(rsun_ref / dsun)) * 3600
    key = next((k for k in ("RSUN_OBS", "RSUN") if _present(header, k)), None)
    if key is None:
        return expected
    given = number(header, key, path)
    if abs(given / expected - 1) > RSUN_TOLERANCE:
        raise InputDataError(path, f"{key} = {given:.1f} arcsec disagrees with DSUN_OBS "
                             f"(expects {expected:.1f} arcsec)", reason="inconsistent_header")
    return given


def check_observer(header: fits.Header, path=None) -> None:
    for lon_key, lat_key, lon_range in (("HGLN_OBS", "HGLT_OBS", (-360, 360)),
                                        ("CRLN_OBS", "CRLT_OBS", (-360, 360))):
        if _present(header, lon_key) or _present(header, lat_key):
            in_range(header, lon_key, lon_range, path, " deg")
            in_range(header, lat_key, (-90, 90), path, " deg")


def check_geometry(header: fits.Header, instrument: str | None, shape, path=None) -> Disk:
    """The header's WCS and observer, checked: units, plate scale, roll, distance, solar radius,
    and a disk whose centre lies in the frame. Returns where the disk is."""
    ny, nx = shape[-2:]
    scale = [_arcsec_per_unit(header, i, path) for i in (1, 2)]
    cdelt = [number(header, f"CDELT{i}", path) * scale[i - 1] for i in (1, 2)]
    for i, c in enumerate(cdelt, 1):
        if c == 0:
            raise InputDataError(path, f"CDELT{i} = 0: no plate scale", reason="out_of_range")
    if max(abs(cdelt[0] / cdelt[1]), abs(cdelt[1] / cdelt[0])) > MAX_PIXEL_ASPECT:
        raise InputDataError(path, f"CDELT1 = {cdelt[0]:.5g} and CDELT2 = {cdelt[1]:.5g} arcsec "
                             "differ: pixels are not square", reason="inconsistent_header")
    crpix = np.array([number(header, f"CRPIX{i}", path) for i in (1, 2)])
    crval = np.array([number(header, f"CRVAL{i}", path) * scale[i - 1] for i in (1, 2)])
    matrix = rotation_matrix(header, instrument, cdelt, path)
    check_observer(header, path)
    radius_arcsec = rsun_arcsec(header, instrument, path)
    # world = CRVAL + CDELT * M (p - CRPIX), linear near the disk centre: where is world (0, 0)?
    x, y = crpix + np.linalg.solve(matrix, -crval / np.array(cdelt)) - 1.0
    if not (-0.5 <= x <= nx - 0.5 and -0.5 <= y <= ny - 0.5):
        raise InputDataError(path, f"CRPIX/CRVAL put the Sun's centre at pixel ({x:.1f}, {y:.1f}), "
                             f"outside the {nx} x {ny} frame", reason="out_of_range")
    radius = radius_arcsec / float(np.mean(np.abs(cdelt)))
    lo, hi = DISK_RADIUS_FRACTION
    if not lo * nx <= radius <= hi * nx:
        raise InputDataError(path, f"CDELT1 = {header.get('CDELT1')} {header.get('CUNIT1')}/px makes "
                             f"the solar radius {radius:.4g} px in a {nx} px frame (expected "
                             f"{lo:g}-{hi:g} of the width): plate scale out of range",
                             reason="out_of_range")
    return Disk(float(x), float(y), float(radius))


# ----------------------------------------------------------------------------- data

def check_image(data: np.ndarray, path=None, square: bool = False) -> None:
    if data.ndim != 2:
        raise InputDataError(path, f"image has {data.ndim} dimensions {data.shape}, expected 2",
                             reason="bad_shape")
    if min(data.shape) < 8 or (square and data.shape[0] != data.shape[1]):
        raise InputDataError(path, f"image shape {data.shape} is not a {'square ' if square else ''}"
                             "solar image", reason="bad_shape")


def _disk_pixels_anywhere(disk: Disk, fraction: float) -> int:
    """How many pixels of a grid without edges lie within ``fraction`` of ``disk``'s radius."""
    r = fraction * disk.radius
    x0, y0 = math.floor(disk.x - r), math.floor(disk.y - r)
    shape = (math.ceil(disk.y + r) - y0 + 1, math.ceil(disk.x + r) - x0 + 1)
    return int(np.count_nonzero(Disk(disk.x - x0, disk.y - y0, disk.radius).mask(shape, fraction)))


def check_disk_filled(data: np.ndarray, disk: Disk, path=None) -> np.ndarray:
    """On the disk (within 0.9 Rsun): inside the frame, not empty (0 or NaN), not partly empty
    (the part of the disk beyond the frame's edges counts as empty). Returns the finite values
    there."""
    values = np.asarray(data)[disk.mask(data.shape, EMPTY_DISK_RADIUS)]
    whole = _disk_pixels_anywhere(disk, EMPTY_DISK_RADIUS)
    beyond = max(whole - values.size, 0) / max(whole, 1)
    if beyond > MAX_EMPTY_DISK_FRACTION:
        raise InputDataError(path, f"{100 * beyond:.0f}% of the solar disk lies beyond the edges "
                             f"of the {data.shape[-1]} x {data.shape[-2]} frame (limit "
                             f"{100 * MAX_EMPTY_DISK_FRACTION:.0f}%): a cropped, partly empty "
                             "frame",
                             reason="empty_data")
    if values.size == 0:
        return values
    finite = np.isfinite(values)
    empty = np.count_nonzero(~finite | (values == 0)) / values.size
    if empty == 1.0:
        raise InputDataError(path, "every pixel on the solar disk is 0 or NaN: an empty frame",
                             reason="empty_data")
    if empty > MAX_EMPTY_DISK_FRACTION:
        raise InputDataError(path, f"{100 * empty:.0f}% of the pixels on the solar disk are 0 or NaN "
                             f"(limit {100 * MAX_EMPTY_DISK_FRACTION:.0f}%): a partly empty frame",
                             reason="empty_data")
    return values[finite]


def check_disk_data(data: np.ndarray, disk: Disk, path=None) -> None:
    """The disk filled (:func:`check_disk_filled`) and not one value (a constant frame)."""
    good = check_disk_filled(data, disk, path)
    if good.size and good.min() == good.max():
        raise InputDataError(path, f"every pixel on the solar disk is {good.min():g}: a constant "
                             "frame", reason="degenerate_data")


def check_not_empty(data: np.ndarray, path=None) -> None:
    """A frame whose header does not yet say where the disk is (calibrate's input): not every
    pixel NaN, inf or 0."""
    values = np.asarray(data)
    finite = np.isfinite(values)
    if not finite.any():
        raise InputDataError(path, "every pixel is NaN or inf: an empty frame", reason="empty_data")
    if not values[finite].any():
        raise InputDataError(path, "every finite pixel is 0: an empty frame", reason="empty_data")


#: How far (px) an aligned frame's CRPIX may be from its centre, (N + 1) / 2: decimals in a card.
CRPIX_TOLERANCE_PX = 1e-3


def check_aligned_grid(header: fits.Header, shape, path=None) -> None:
    """A co-aligned frame (or stack) whose header puts the disk's centre at the centre of its
    data, CRPIX = (N + 1) / 2, as align writes it: data of another size than the header was
    written for (resized, cropped, or a NAXIS card changed) would put the disk elsewhere."""
    n = shape[-1]
    for axis in (1, 2):
        key = f"CRPIX{axis}"
        if not _present(header, key):
            raise InputDataError(path, f"header lacks {key}: not a co-aligned frame",
                                 reason="missing_keyword")
        crpix = number(header, key, path)
        if abs(crpix - (n + 1) / 2) > CRPIX_TOLERANCE_PX:
            raise InputDataError(path, f"{key} = {crpix:g} is not the centre of this {n} x "
                                 f"{shape[-2]} frame ({(n + 1) / 2:g}): the data's size "
                                 "disagrees with its header", reason="inconsistent_header")


def check_normalized_plane(data: np.ndarray, header: fits.Header, path=None) -> None:
    """A normalized plane (stack's or predict's input) that shows the Sun: not one value over
    the disk (normalize maps a real disk to many; an all-zero plane is none of its output)."""
    found = conventions.read(header, path, data.shape[-2:])
    centre = (found.size - 1) / 2
    disk = Disk(centre, centre, found.rsun_px)
    values = np.asarray(data)[disk.mask(data.shape, min(found.mask_radius, EMPTY_DISK_RADIUS))]
    if values.size and values.min() == values.max():
        raise InputDataError(path, f"every pixel on the solar disk is {values.min():g}: a constant "
                             "plane, which normalize never writes", reason="degenerate_data")


# ----------------------------------------------------------------------------- stages

def known_instrument(header: fits.Header, path=None, allowed=None) -> str:
    instrument = instrument_of(header)
    if instrument is None:
        raise InputDataError(path, "header names no known instrument (TELESCOP/INSTRUME/DETECTOR)",
                             reason="missing_keyword")
    if allowed is not None and instrument not in allowed:
        raise InputDataError(path, f"is a {instrument} frame; expected one of {tuple(allowed)}",
                             reason="wrong_channel")
    return instrument


def check_raw_header(header: fits.Header, instrument: str, path=None) -> None:
    """The values of a raw header that has what ``require(.., "fetch")`` asks for: times,
    channel, exposure (quality flags and eclipses are quality.py's)."""
    check_times(header, instrument, path)
    if INSTRUMENTS[instrument].role == EUV:
        check_wavelength(header, instrument, path=path)
        check_exposure(header, instrument, path)


def check_calibrate_input(data: np.ndarray, header: fits.Header, path=None) -> str:
    """What calibrate reads: returns the instrument."""
    parse_all_cards(header, path)
    instrument = known_instrument(header, path)
    check_image(data, path)
    check_not_empty(data, path)
    require(header, instrument, "calibrate", path)
    reads = REQUIRED["calibrate"][instrument]
    if "WAVELNTH" in reads:  # e.g. AIA's pointing and degradation tables: any of its channels
        check_wavelength(header, instrument, INSTRUMENTS[instrument].all_channels, path)
    if _DATE in reads:
        check_times(header, instrument, path)
    if "EXPTIME" in reads:
        check_exposure(header, instrument, path)
    return instrument


def check_align_input(data: np.ndarray, header: fits.Header, path=None) -> Disk:
    """What align reads: the full geometry, and a disk in the frame and filled (align would
    resample nothing into a frame that looks like one); returns where the disk is."""
    parse_all_cards(header, path)
    instrument = known_instrument(header, path)
    check_image(data, path)
    require(header, instrument, "align", path)
    check_times(header, instrument, path)
    disk = check_geometry(header, instrument, data.shape, path)
    check_disk_filled(data, disk, path)
    return disk


def check_aligned(data: np.ndarray, header: fits.Header, path=None) -> str:
    """An aligned frame for normalize: square image, R_SUN/MASKRAD sane, finite on the disk and
    not empty or constant there (an all-zero HMI frame would become a 0 G target). Returns the
    instrument."""
    parse_all_cards(header, path)
    instrument = known_instrument(header, path)
    check_image(data, path, square=True)
    missing = [k for k in REQUIRED["normalize"][instrument] if not _present(header, k)]
    if missing:
        raise InputDataError(path, f"not an aligned frame: header lacks {', '.join(missing)}",
                             reason="missing_keyword")
    n = data.shape[0]
    check_aligned_grid(header, data.shape, path)
    found = conventions.of_map(header, path, data.shape)
    radius, maskrad = found.rsun_px, found.mask_radius
    for name, value, (lo, hi), unit in (
            ("rsun_px", radius, (DISK_RADIUS_FRACTION[0] * n, DISK_RADIUS_FRACTION[1] * n), " px"),
            ("mask_radius", maskrad, MASK_RADIUS_RANGE, " Rsun")):
        if not lo <= value <= hi:
            raise InputDataError(path, f"{GEOMETRY_KEYWORDS[name]} = {value:.4g}{unit} is outside "
                                 f"the physical range [{lo:g}, {hi:g}]{unit}",
                                 reason="out_of_range")
    centre = (n - 1) / 2
    disk = Disk(centre, centre, radius)
    bad = np.count_nonzero(~np.isfinite(data[disk.mask(data.shape, min(maskrad, 1.0))]))
    if bad:
        raise InputDataError(path, f"{bad} pixels on the solar disk are NaN/inf (align fills them)",
                             reason="mostly_nan")
    check_disk_data(data, disk, path)
    return instrument


def check_stack_frames(frames, paths, max_time_spread: timedelta = MAX_STACK_TIME_SPREAD) -> None:
    """Normalized frames for one stack: headers parse, each frame finite in [-1, 1], one set of
    frame conventions (disk geometry, EUV normalization), observed within ``max_time_spread``
    of each other (channel order: stack_frames)."""
    times, found = [], []
    for (data, header), path in zip(frames, paths):
        parse_all_cards(header, path)
        instrument = known_instrument(header, path, EUV_INSTRUMENTS)
        require(header, instrument, "stack", path)
        data = np.asarray(data)
        bad = np.count_nonzero(~np.isfinite(data))
        if bad:
            raise InputDataError(path, f"{bad} of {data.size} pixels are NaN/inf: not a normalized "
                                 "plane", reason="mostly_nan")
        if data.size and np.abs(data).max() > 1.0 + 1e-4:
            raise InputDataError(path, f"values reach {np.abs(data).max():.3g}; normalized frames "
                                 "lie in [-1, 1]", reason="not_normalized")
        check_aligned_grid(header, data.shape, path)
        check_normalized_plane(data, header, path)
        times.append(obs_time(header, path))
        found.append(conventions.read(header, path, data.shape, need=("euv",)))
    for path, each in zip(paths[1:], found[1:]):  # aligned and normalized alike
        conventions.check(each, found[0], path, f"{paths[0]}'s")
    spread = max(times) - min(times)
    if spread > max_time_spread:
        first, last = int(np.argmin(times)), int(np.argmax(times))
        raise InputDataError(paths[last], f"observed {spread} after {paths[first]} "
                             f"({times[last].isoformat()} vs {times[first].isoformat()}); the channels "
                             f"of a stack must lie within {max_time_spread}", reason="time_mismatch")


def check_image_size_for_generator(size: int, n_downsample: int) -> None:
    """A square image of ``size`` pixels the generator takes: its ``n_downsample`` stride-2
    convolutions halve it evenly (else its decoder returns another size) down to at least 2
    pixels (the reflection padding of its residual blocks needs 2). ValueError saying why, with
    the nearest sizes it takes, otherwise."""
    step = 2 ** int(n_downsample)
    if size % step == 0 and size // step >= 2:
        return
    below, above = max(size // step, 2) * step, max(-(-size // step), 2) * step
    nearest = sorted({s for s in (below, above) if s >= 2 * step})
    raise ValueError(f"its {n_downsample} downsamplings need a size that is a multiple of {step} "
                     f"and at least {2 * step}, not {size} (nearest: "
                     f"{' or '.join(map(str, nearest))})")


def check_stack_for_model(header: fits.Header, shape, path=None, in_channels: int | None = None,
                          n_downsample: int | None = None) -> str:
    """A stack a generator can take: its instrument's channel order (CHAN1..), a size the
    network divides evenly, and the geometry the output map is written with."""
    parse_all_cards(header, path)
    instrument = known_instrument(header, path, EUV_INSTRUMENTS)
    require(header, instrument, "predict", path)
    channels = len(shape) == 3 and shape[0]
    expected = CHANNELS[instrument][:channels] if channels else ()
    found = conventions.read(header, path, shape, need=("channels",)).channels if channels else ()
    if tuple(str(c) for c in found) != tuple(str(c) for c in expected) or not channels:
        raise InputDataError(path, f"channels CHAN1..{channels or '?'} = {found} are not the "
                             f"{instrument} order {CHANNELS[instrument]}", reason="wrong_channel")
    if in_channels is not None and channels != in_channels:
        raise InputDataError(path, f"stack has {channels} channels, the model expects {in_channels}",
                             reason="wrong_channel")
    n = shape[-1]
    if n_downsample is not None:
        try:
            if shape[-2] != n:
                raise ValueError("the generator takes square images")
            check_image_size_for_generator(n, n_downsample)
        except ValueError as exc:
            raise InputDataError(path, f"a {shape[-2]} x {n} stack does not fit the generator: "
                                 f"{exc}", reason="bad_shape") from None
    check_times(header, instrument, path)
    check_aligned_grid(header, shape, path)
    check_geometry(header, instrument, shape, path)
    return instrument
