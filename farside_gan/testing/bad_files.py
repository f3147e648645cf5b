"""Deliberately bad files, each the kind of defect the real archives deliver now and then.

``make_bad_files(directory)`` writes one file per defect with archive-style names and returns
``{defect: path}``; :data:`BAD_FILES` says, per defect, which observation the file claims to be
and the manifest reason code (docs/ARCHITECTURE.md) a quality check should give it.
:data:`BAD_EUVI_FILES` are STEREO/EUVI defects (farside inputs, which no manifest lists):
``make_bad_files(directory, defects=BAD_EUVI_FILES)``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.core.instruments import Observation, archive_relpath
from farside_gan.synthetic.archive import _write_deterministic, plan_observation, write_plan

#: defect -> (instrument, channel the file is named / requested as, time, reason code).
#: Times are minutes apart so the files share one field surface (cheap to make).
BAD_FILES = {
    "truncated": ("aia", 171, datetime(2011, 1, 1, 0, 0), "corrupt_fits"),
    "missing_date_obs": ("aia", 171, datetime(2011, 1, 1, 0, 2), "missing_keyword"),
    "all_nan": ("hmi", "magnetogram", datetime(2011, 1, 1, 0, 4), "mostly_nan"),
    "quality_flagged": ("aia", 193, datetime(2011, 1, 1, 0, 6), "quality_flag"),
    "wrong_channel": ("aia", 171, datetime(2011, 1, 1, 0, 8), "wrong_channel"),
    # geometry sunpy would otherwise complete with guesses: the fetch check must refuse it
    "hmi_without_crota2": ("hmi", "magnetogram", datetime(2011, 1, 1, 0, 10), "missing_keyword"),
    "missing_cdelt": ("aia", 171, datetime(2011, 1, 1, 0, 14), "missing_keyword"),
    "missing_crpix": ("aia", 304, datetime(2011, 1, 1, 0, 16), "missing_keyword"),
    "dsun_zero": ("aia", 193, datetime(2011, 1, 1, 0, 18), "out_of_range"),
    "exptime_huge": ("aia", 171, datetime(2011, 1, 1, 0, 20), "out_of_range"),
    "hmi_all_zero": ("hmi", "magnetogram", datetime(2011, 1, 1, 0, 24), "empty_data"),
    "aia_all_zero": ("aia", 304, datetime(2011, 1, 1, 0, 26), "empty_data"),
    "partly_empty": ("aia", 193, datetime(2011, 1, 1, 0, 28), "empty_data"),
    "corrupt_header": ("aia", 171, datetime(2011, 1, 1, 0, 30), "corrupt_header"),
}
BAD_EUVI_FILES = {
    "euvi_without_roll": ("euvi_a", 195, datetime(2011, 1, 1, 0, 0), "missing_keyword"),
    "exptime_tiny": ("euvi_a", 304, datetime(2011, 1, 1, 0, 2), "out_of_range"),
    "euvi_partly_empty": ("euvi_b", 171, datetime(2011, 1, 1, 0, 4), "empty_data"),
}
#: Header keywords each defect replaces (None deletes the keyword).
HEADER_DEFECTS = {
    "missing_date_obs": {"DATE-OBS": None},
    "hmi_without_crota2": {"CROTA2": None},
    "missing_cdelt": {"CDELT1": None, "CDELT2": None},
    "missing_crpix": {"CRPIX1": None, "CRPIX2": None},
    "dsun_zero": {"DSUN_OBS": 0.0},
    "exptime_huge": {"EXPTIME": 1e12},
    "euvi_without_roll": {"PC1_1": None, "PC1_2": None, "PC2_1": None, "PC2_2": None, "CROTA": None},
    "exptime_tiny": {"EXPTIME": 1e-30},
}
#: A QUALITY word with a flag set (non-zero means the frame should be dropped).
QUALITY_FLAG = 0x00020000


def _empty_rows(data: np.ndarray) -> np.ndarray:
    """The lower third of the frame lost (0), as a missing telemetry block leaves it."""
    data = data.copy()
    data[: data.shape[0] // 3] = 0
    return data


def _with_defect(path, header, defect) -> np.ndarray:
    """The file's pixels with ``defect`` applied to their physical values, stored as the file
    stores them: integers (AIA's int16 under BLANK, EUVI's under BZERO/BSCALE) stay integers
    where the defect leaves them finite (float data under an integer BLANK is an invalid file
    of its own), and a 0 is a physical 0."""
    stored = fits.getdata(path, do_not_scale_image_data=True)
    bzero, bscale = float(header.get("BZERO", 0.0)), float(header.get("BSCALE", 1.0))
    physical = stored.astype(np.float64) * bscale + bzero
    if "BLANK" in header and np.issubdtype(stored.dtype, np.integer):
        physical[stored == header["BLANK"]] = np.nan
    bad = defect(physical)
    if np.issubdtype(stored.dtype, np.integer) and np.all(np.isfinite(bad)):
        return np.round((bad - bzero) / bscale).astype(stored.dtype)
    return bad.astype(np.float32)


#: Pixel defects: a function of the rendered data.
DATA_DEFECTS = {
    "all_nan": lambda data: np.full(data.shape, np.nan, dtype=np.float32),
    "hmi_all_zero": lambda data: np.zeros(data.shape, dtype=np.float32),
    "aia_all_zero": lambda data: np.zeros_like(data),
    "partly_empty": _empty_rows,
    "euvi_partly_empty": _empty_rows,
}


def make_bad_files(directory, size: int = 64, seed: int = 0, sun=None,
                   defects: dict | None = None) -> dict[str, Path]:
    """Write the bad files (``defects``: :data:`BAD_FILES` by default) into ``directory``;
    return ``{defect: path}``."""
    directory = Path(directory)
    return {defect: write_bad_file(directory / bad_file_relpath(defect, seed, defects).name,
                                   defect, size, seed, sun, defects)
            for defect in (defects or BAD_FILES)}


def bad_file_relpath(defect: str, seed: int = 0, defects: dict | None = None) -> Path:
    """The archive path of a defect's file: named as the observation it claims to be."""
    instrument, channel, time, _ = (defects or BAD_FILES)[defect]
    content_channel = 193 if defect == "wrong_channel" else channel
    plan = plan_observation(instrument, content_channel, time, size=16, seed=seed)
    return Path(archive_relpath(Observation(instrument, channel, plan.timing.name_time)))


def write_bad_file(path, defect: str, size: int = 64, seed: int = 0, sun=None,
                   defects: dict | None = None) -> Path:
    """Write one defect's file at ``path`` (for wrong_channel: a 171 name, 193 inside)."""
    from farside_gan.synthetic.field import SyntheticSun
    instrument, channel, time, _ = (defects or BAD_FILES)[defect]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sun = sun or SyntheticSun(seed=seed)
    content_channel = 193 if defect == "wrong_channel" else channel
    plan = plan_observation(instrument, content_channel, time, size=size, seed=seed,
                            **({"quality": QUALITY_FLAG} if defect == "quality_flagged" else {}))
    write_plan(path, plan, sun, seed=seed, header_overrides=HEADER_DEFECTS.get(defect))
    if defect in DATA_DEFECTS:
        header = fits.getheader(path)
        for key in ("CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "DATAMEAN"):
            header.remove(key, ignore_missing=True)
        keywords = {k: v for k, v in header.items() if k not in ("SIMPLE", "BITPIX", "NAXIS",
                                                                  "NAXIS1", "NAXIS2", "EXTEND")}
        data = _with_defect(path, header, DATA_DEFECTS[defect])
        if np.issubdtype(data.dtype, np.floating):  # the integer encoding's keywords go with it
            keywords = {k: v for k, v in keywords.items() if k not in ("BZERO", "BSCALE", "BLANK")}
        _write_deterministic(path, data, keywords, header["DATE"])
    if defect == "truncated":
        # Cut the file in the middle of its data unit, as an interrupted download does.
        data_bytes = fits.getdata(path).nbytes
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) - data_bytes // 2 - 1000])
    if defect == "corrupt_header":
        # One card garbled in transfer: the file opens, its EXPTIME cannot be parsed.
        raw = path.read_bytes()
        at = raw.index(b"EXPTIME =")
        path.write_bytes(raw[:at] + b"EXPTIME = 2.0.0 / garbled".ljust(80) + raw[at + 80:])
    return path


#: What a web server's error page looks like when it is saved under a file's name (a proxy's
#: maintenance page, an archive answering 200 with HTML).
HTML_ANSWER = (b"<!DOCTYPE html>\n<html><head><title>Service Temporarily Unavailable</title>"
               b"</head>\n<body><h1>Service Temporarily Unavailable</h1>\n<p>The server is "
               b"down for maintenance. Please try again later.</p></body></html>\n")


def garble_naxis_cards(path, seed: int = 0) -> Path:
    """Overwrite the NAXIS1..n cards of ``path``'s first header with binary garbage (a damaged
    copy): astropy can no longer tell the data's shape. The bytes include newlines, which a
    message quoting them would spread over several lines."""
    path = Path(path)
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    end = raw.index(b"END" + b" " * 77)
    for axis in range(1, 4):
        at = raw.find(f"NAXIS{axis}".ljust(8).encode() + b"=", 0, end)
        if at >= 0 and at % 80 == 0:
            garbage = rng.integers(0, 256, 80, dtype=np.uint8)
            garbage[::16] = ord("\n")
            raw[at:at + 80] = garbage.tobytes()
    path.write_bytes(bytes(raw))
    return path
