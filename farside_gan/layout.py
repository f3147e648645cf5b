"""Names of instruments, channels and files, as the real archives use them.

One place for these conventions: the synthetic archive writes files with these names and the
download code parses them, exactly as it would parse files from JSOC or the STEREO archive.

Archive layout (relative to an archive root, local directory or HTTP base URL)::

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
from datetime import datetime

CATALOG_NAME = "catalog.csv"

#: Observation-time keys in workflow paths and file names (``20110101T0000``): compact, sortable,
#: and the grid time the user asked for (a frame's own DATE-OBS is in its header).
TIME_KEY_FORMAT = "%Y%m%dT%H%M"

CATALOG_CHECKSUM_NAME = CATALOG_NAME + ".sha256"
CATALOG_COLUMNS = ("instrument", "channel", "time", "path", "size", "sha256")

#: The data series each instrument's frames come from, whatever the source (JSOC, Fido, a mirror
#: laid out as below). HMI is the 720-second LOS magnetogram of the method, never hmi.M_45s.
SERIES = {
    "aia": "aia.lev1_euv_12s",
    "hmi": "hmi.M_720s",
    "euvi_a": "secchi.L0.euvi_a",
    "euvi_b": "secchi.L0.euvi_b",
}
#: What a file's header says about its series where it can (JSOC copies CADENCE into the FITS
#: header: 720 for hmi.M_720s, 45 for hmi.M_45s).
SERIES_CADENCE_S = {"hmi.M_720s": 720.0}

#: Channel order is fixed (DESIGN.md): 195 on EUVI plays the role of 193 on AIA.
CHANNELS = {
    "aia": (304, 193, 171),
    "hmi": ("magnetogram",),
    "euvi_a": (304, 195, 171),
    "euvi_b": (304, 195, 171),
}
EUV_INSTRUMENTS = ("aia", "euvi_a", "euvi_b")
#: The observer of each EUV instrument, as workflow paths name it (results/farside/<observer>/).
OBSERVERS = {"aia": "sdo", "euvi_a": "stereo_a", "euvi_b": "stereo_b"}
SPACECRAFT = {"aia": "SDO", "hmi": "SDO", "euvi_a": "STEREO_A", "euvi_b": "STEREO_B"}


@dataclass(frozen=True)
class Observation:
    instrument: str   # one of CHANNELS
    channel: int | str
    time: datetime    # naive UTC (TAI for HMI file names, as JSOC writes them)


def archive_relpath(obs: Observation) -> str:
    """Relative archive path of an observation, named as the real archive names it."""
    t = obs.time
    if obs.instrument == "aia":
        name = f"aia.lev1_euv_12s.{t:%Y-%m-%dT%H%M%S}Z.{obs.channel}.image_lev1.fits"
        return f"aia/lev1_euv_12s/{t:%Y/%m/%d}/{name}"
    if obs.instrument == "hmi":
        name = f"hmi.m_720s.{t:%Y%m%d_%H%M%S}_TAI.1.magnetogram.fits"
        return f"hmi/M_720s/{t:%Y/%m/%d}/{name}"
    if obs.instrument in ("euvi_a", "euvi_b"):
        sc = obs.instrument[-1]
        name = f"{t:%Y%m%d_%H%M%S}_n4eu{sc.upper()}.fts"
        return f"secchi/L0/{sc}/img/euvi/{t:%Y%m%d}/{name}"
    raise ValueError(f"unknown instrument {obs.instrument!r}; expected one of {sorted(CHANNELS)}")


def check_channel(instrument: str, channel) -> int | str:
    """Return the channel normalised to the catalog's type, or raise a ValueError naming both."""
    if instrument not in CHANNELS:
        raise ValueError(f"unknown instrument {instrument!r}; expected one of {sorted(CHANNELS)}")
    for c in CHANNELS[instrument]:
        if str(c) == str(channel):
            return c
    raise ValueError(f"{instrument} has no channel {channel!r}; expected one of {CHANNELS[instrument]}")


def time_key(time: datetime) -> str:
    """A naive UTC datetime as a time key (``TIME_KEY_FORMAT``)."""
    return time.strftime(TIME_KEY_FORMAT)


def parse_time_key(key: str) -> datetime:
    return datetime.strptime(key, TIME_KEY_FORMAT)


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
