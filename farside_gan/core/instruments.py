"""The instrument registry: instruments, channels, wavelengths, observers, series, header
identity, time formats and file names, as the real archives use them.

One place for these facts: every other module (and ``workflow/rules/common.smk``) takes them
from here, and a test checks that no other module spells an instrument's name or channel.
Adding an instrument (SOHO/EIT, Solar Orbiter/EUI) means an :class:`Instrument` here and its
calibration procedure in :mod:`farside_gan.prepare.calibrate`.

The synthetic archive writes files with these names and the download code parses them, exactly
as it would parse files from JSOC or the STEREO archive. Archive layout (relative to an archive
root, local directory or HTTP base URL)::

    aia/lev1_euv_12s/2011/01/01/aia.lev1_euv_12s.2011-01-01T000008Z.171.image_lev1.fits
    hmi/M_720s/2011/01/01/hmi.m_720s.20110101_000000_TAI.1.magnetogram.fits
    secchi/L0/a/img/euvi/20110101/20110101_000530_n4euA.fts     (STEREO-A; 'b' / 'euB' for B)
    catalog.csv

SECCHI file names do not carry the wavelength (it is in the header), so, like the VSO, the
archive keeps a catalog: one row per file with ``instrument, channel, time, path, size, sha256``.
``catalog.csv.sha256`` (``sha256sum`` format) makes the catalog checkable: a catalog cut short in
transfer, even with a matching Content-Length, no longer passes for a complete one. Catalog paths
are relative POSIX paths inside the archive (:func:`check_archive_path`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from farside_gan.core.errors import InputDataError

CATALOG_NAME = "catalog.csv"

#: Observation-time keys in workflow paths and file names (``20110101T0000``): compact, sortable,
#: and the grid time the user asked for (a frame's own DATE-OBS is in its header).
TIME_KEY_FORMAT = "%Y%m%dT%H%M"
#: Times in the dataset manifest and in tables.
MANIFEST_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"

CATALOG_CHECKSUM_NAME = CATALOG_NAME + ".sha256"
CATALOG_COLUMNS = ("instrument", "channel", "time", "path", "size", "sha256")

#: Roles: an EUV imager (training input near side, model input far side) or a LOS magnetograph.
EUV, MAGNETOGRAM = "euv", "magnetogram"


@dataclass(frozen=True)
class Instrument:
    """What the pipeline knows of one instrument (``key`` names it in paths, records, the CLI)."""
    key: str
    role: str                      # EUV or MAGNETOGRAM
    label: str                     # for people: "SDO/AIA"
    channels: tuple                # the method's channels, in the fixed stack order
    observer: str                  # workflow paths: results/farside/<observer>/
    series: str                    # the data series its frames come from, whatever the source
    archive_path: str              # archive file name: format(t=datetime, channel=...)
    # header identity (:func:`instrument_of`): the camera as INSTRUME starts with it, DETECTOR
    # says it or TELESCOP ends with it; OBSRVTRY tells instruments of one camera apart
    camera: str
    observatory: str
    roll_keyword: str              # the roll keyword sunpy's map class reads (no PC matrix)
    rsun_keyword: str              # the angular radius keyword sunpy's map class reads
    calibration: str               # its procedure in calibrate.CALIBRATIONS
    calibration_tables: bool       # the procedure reads tables (calibration-tables writes them)
    all_channels: tuple            # every channel (the method uses ``channels``)
    exposure_s: tuple | None       # plausible EXPTIME (s): catches garbage, not odd exposures
    dsun_au: tuple                 # plausible observer distance (au)
    mission_start: datetime        # first light: an earlier DATE-OBS is garbage
    raw_format: tuple              # uncompressed (pixels, bytes per pixel) of a raw frame
    series_cadence_s: float | None = None  # the header's CADENCE for this series, when it has one
    jsoc_segment: str | None = None        # JSOC record segment (AIA, HMI come from JSOC)
    vso: tuple | None = None               # (Instrument, Source) attributes of a VSO query


def _euvi(spacecraft: str) -> Instrument:
    """SECCHI/EUVI on STEREO-A or -B (``spacecraft`` "a" or "b"): twins, which differ only in
    the spacecraft's letter."""
    letter = spacecraft.upper()
    return Instrument(
        f"euvi_{spacecraft}", EUV, f"STEREO-{letter}/EUVI", (304, 195, 171),
        f"stereo_{spacecraft}", f"secchi.L0.euvi_{spacecraft}",
        f"secchi/L0/{spacecraft}/img/euvi/{{t:%Y%m%d}}/{{t:%Y%m%d_%H%M%S}}_n4eu{letter}.fts",
        camera="EUVI", observatory=f"STEREO_{letter}", roll_keyword="CROTA", rsun_keyword="RSUN",
        calibration="secchi_prep", calibration_tables=False,
        all_channels=(171, 195, 284, 304),
        exposure_s=(1e-3, 300.0),  # up to about a minute (284 A)
        dsun_au=(0.90, 1.10), mission_start=datetime(2006, 10, 26), raw_format=(2048 ** 2, 2),
        vso=("EUVI", f"STEREO_{letter}"))


INSTRUMENT_LIST = (
    Instrument(
        "aia", EUV, "SDO/AIA", (304, 193, 171), "sdo", "aia.lev1_euv_12s",
        "aia/lev1_euv_12s/{t:%Y/%m/%d}/aia.lev1_euv_12s.{t:%Y-%m-%dT%H%M%S}Z.{channel}.image_lev1.fits",
        camera="AIA", observatory="SDO", roll_keyword="CROTA2", rsun_keyword="RSUN_OBS",
        calibration="aia_prep", calibration_tables=True,
        all_channels=(94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500),
        exposure_s=(1e-3, 30.0),  # 2-3 s nominal, shorter in flares (automatic exposure control)
        dsun_au=(0.97, 1.03), mission_start=datetime(2010, 3, 24), raw_format=(4096 ** 2, 2),
        jsoc_segment="image"),
    Instrument(
        "hmi", MAGNETOGRAM, "SDO/HMI", ("magnetogram",), "sdo", "hmi.M_720s",
        "hmi/M_720s/{t:%Y/%m/%d}/hmi.m_720s.{t:%Y%m%d_%H%M%S}_TAI.1.{channel}.fits",
        camera="HMI", observatory="SDO", roll_keyword="CROTA2", rsun_keyword="RSUN_OBS",
        calibration="hmi_los", calibration_tables=False, all_channels=("magnetogram",),
        exposure_s=None,
        dsun_au=(0.97, 1.03), mission_start=datetime(2010, 3, 24), raw_format=(4096 ** 2, 4),
        series_cadence_s=720.0,  # the 720 s series of the method, never hmi.M_45s
        jsoc_segment="magnetogram"),
    _euvi("a"),
    _euvi("b"),
)
INSTRUMENTS = {i.key: i for i in INSTRUMENT_LIST}

#: The method's roles (docs/DESIGN.md): AIA -> HMI pairs train the model, EUVI stacks are the
#: far side.
TRAINING_INPUT, TRAINING_TARGET = "aia", "hmi"
FARSIDE_INPUTS = ("euvi_a", "euvi_b")

#: Channel order is fixed (docs/DESIGN.md): 195 on EUVI plays the role of 193 on AIA.
CHANNELS = {key: i.channels for key, i in INSTRUMENTS.items()}
SERIES = {key: i.series for key, i in INSTRUMENTS.items()}
#: What a file's header says about its series where it can (JSOC copies CADENCE into the FITS
#: header: 720 for hmi.M_720s, 45 for hmi.M_45s).
SERIES_CADENCE_S = {i.series: i.series_cadence_s for i in INSTRUMENT_LIST if i.series_cadence_s}
EUV_INSTRUMENTS = tuple(key for key, i in INSTRUMENTS.items() if i.role == EUV)
#: The observer of each EUV instrument, as workflow paths name it (results/farside/<observer>/).
OBSERVERS = {key: INSTRUMENTS[key].observer for key in EUV_INSTRUMENTS}
#: Evaluation comparisons are named SIDE/OBSERVER/TRUTH (``evaluate.Comparison``): the near or
#: far side, seen by an observer, scored against the observed magnetogram (the training target's
#: instrument) or the synthetic Sun's own field.
SIDES = ("nearside", "farside")
OBSERVER_NAMES = tuple(dict.fromkeys(i.observer for i in INSTRUMENT_LIST))
TRUTHS = (TRAINING_TARGET, "synthetic")
NEARSIDE_LABEL = f"{SIDES[0]}/{INSTRUMENTS[TRAINING_INPUT].observer}/{TRAINING_TARGET}"
#: The emission line each EUV channel images: a model's input channels and a stack's must agree
#: position by position (EUVI 195 and AIA 193 both image Fe XII).
BANDS = {304: "He II 30.4 nm", 193: "Fe XII 19.3 nm", 195: "Fe XII 19.3 nm", 171: "Fe IX 17.1 nm"}


def bands(channels) -> tuple:
    """The emission lines of these channels, in order (unknown channels as themselves)."""
    return tuple(BANDS.get(int(c), str(c)) if str(c).isdigit() else str(c) for c in channels)


@dataclass(frozen=True)
class Observation:
    instrument: str   # one of INSTRUMENTS
    channel: int | str
    time: datetime    # naive UTC (TAI for HMI file names, as JSOC writes them)


def instrument_spec(key: str) -> Instrument:
    """The registry entry of ``key``, or a ValueError naming the known ones."""
    try:
        return INSTRUMENTS[key]
    except KeyError:
        raise ValueError(f"unknown instrument {key!r}; expected one of {sorted(INSTRUMENTS)}") from None


def archive_relpath(obs: Observation) -> str:
    """Relative archive path of an observation, named as the real archive names it."""
    return instrument_spec(obs.instrument).archive_path.format(t=obs.time, channel=obs.channel)


def _header_text(header, key: str) -> str:
    return str(header.get(key, "") or "").strip().upper().replace("-", "_").replace(" ", "_")


def instrument_of(header) -> str | None:
    """The registry key of the instrument that wrote this header (raw, aligned, normalized or
    stacked: the identity keywords travel with the frame), or None if it is none of them.

    The camera decides (INSTRUME starts with it, DETECTOR says it, or TELESCOP ends with
    ``/camera``); where two instruments share a camera (EUVI on STEREO-A and -B), OBSRVTRY
    decides, and a header without it is None rather than a guess."""
    telescop, instrume, detector, observatory = (_header_text(header, k) for k in
                                                 ("TELESCOP", "INSTRUME", "DETECTOR", "OBSRVTRY"))
    found = [i for i in INSTRUMENT_LIST
             if detector == i.camera or instrume.startswith(i.camera)
             or telescop.endswith("/" + i.camera)]
    if len({i.camera for i in found}) != 1:
        return None
    if len(found) > 1:
        found = [i for i in found if observatory == i.observatory]
    return found[0].key if len(found) == 1 else None


def channel_of(header, key: str):
    """The channel as ``CHANNELS`` names it: the wavelength (WAVELNTH) of an EUV imager; for a
    magnetograph its channel name when CONTENT says it (e.g. 'magnetogram'), else CONTENT."""
    spec = instrument_spec(key)
    if spec.role == MAGNETOGRAM:
        content = str(header.get("CONTENT", "") or "").strip()
        return next((c for c in spec.channels if str(c).upper() in content.upper()), content.lower())
    wavelength = header.get("WAVELNTH")
    return None if wavelength is None else int(round(float(wavelength)))


def check_channel(instrument: str, channel) -> int | str:
    """Return the channel normalised to the catalog's type, or raise a ValueError naming both."""
    for c in instrument_spec(instrument).channels:
        if str(c) == str(channel):
            return c
    raise ValueError(f"{instrument} has no channel {channel!r}; expected one of {CHANNELS[instrument]}")


def time_key(time: datetime) -> str:
    """A naive UTC datetime as a time key (``TIME_KEY_FORMAT``)."""
    return time.strftime(TIME_KEY_FORMAT)


def parse_time_key(key: str) -> datetime:
    return datetime.strptime(key, TIME_KEY_FORMAT)


# ----------------------------------------------------------------------------- times

def parse_time(value) -> datetime:
    """ISO time (with or without 'Z', or a datetime) -> naive UTC datetime."""
    if isinstance(value, datetime):
        t = value
    else:
        text = str(value).strip().replace("Z", "")
        if re.match(r"^\d{4}\.\d{2}\.\d{2}_", text):  # JSOC style 2011.01.01_00:00:00_TAI
            text = re.sub(r"_(TAI|UTC)$", "", text).replace(".", "-", 2).replace("_", "T", 1)
        t = datetime.fromisoformat(text)
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def obs_time(header, path=None) -> datetime:
    value = header.get("DATE-OBS") or header.get("DATE_OBS")
    if not value:
        raise InputDataError(path, "header has no DATE-OBS", reason="missing_keyword")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputDataError(path, f"DATE-OBS {value!r} is not a time ({exc})",
                             reason="inconsistent_header") from exc


def utc_time(value) -> datetime:
    """Like :func:`parse_time`, but JSOC times ending in ``_TAI`` are converted to UTC."""
    text = str(value).strip()
    if text.endswith("_TAI"):
        from astropy.time import Time
        return Time(parse_time(text), scale="tai").utc.to_datetime()
    return parse_time(text)


def reference_time(header, path=None) -> datetime:
    """Mid-exposure time in UTC, for pairing: T_OBS (AIA UTC; HMI TAI, converted), else
    DATE-AVG (EUVI), else DATE-OBS. HMI's DATE-OBS is the start of the 720 s integration,
    six minutes before its T_OBS, so DATE-OBS alone would mis-pair it with AIA."""
    t_obs = str(header.get("T_OBS", "") or "").strip()
    if t_obs and "MISSING" not in t_obs.upper():
        try:
            return utc_time(t_obs)
        except ValueError:
            pass
    if header.get("DATE-AVG"):
        try:
            return parse_time(header["DATE-AVG"])
        except ValueError:
            pass
    return obs_time(header, path)



def catalog_checksum_line(catalog_bytes: bytes) -> str:
    """The ``catalog.csv.sha256`` content for a catalog (``sha256sum -c`` accepts it)."""
    return f"{hashlib.sha256(catalog_bytes).hexdigest()}  {CATALOG_NAME}\n"


def check_catalog_checksum(catalog_bytes: bytes, checksum_text: str) -> str | None:
    """None when ``checksum_text`` (the sidecar) vouches for ``catalog_bytes``, else the problem."""
    fields = checksum_text.split()
    if len(fields) != 2 or fields[1].lstrip("*") != CATALOG_NAME or \
            not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
        return f"{CATALOG_CHECKSUM_NAME} is not a sha256sum line for {CATALOG_NAME}"
    got = hashlib.sha256(catalog_bytes).hexdigest()
    if got != fields[0]:
        return (f"{CATALOG_NAME} ({len(catalog_bytes)} bytes) does not match {CATALOG_CHECKSUM_NAME}: "
                "incomplete or changed in transfer")
    return None


_UNSAFE_SEGMENT = re.compile(r"^\.{1,2}$|[\x00-\x1f\x7f\\]")


def check_archive_path(path: str) -> str:
    """Return ``path`` if it names a file inside an archive root, else raise ValueError.

    Catalog paths are relative POSIX paths of plain segments: no absolute path, no ``..`` or
    ``.``, no ``//host`` (which a URL join would read as another server), no scheme, no
    backslash or control character."""
    text = str(path)
    if not text or text.startswith("/") or ":" in text.split("/", 1)[0]:
        raise ValueError(f"archive path {text!r} is absolute or names another host/scheme")
    segments = text.split("/")
    if any(seg == "" or _UNSAFE_SEGMENT.search(seg) for seg in segments):
        raise ValueError(f"archive path {text!r} leaves the archive root or has an empty, '.', "
                         "'..' or control-character segment")
    return text
