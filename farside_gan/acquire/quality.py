"""Quality checks on a raw frame: the reasons a frame is dropped from the dataset.

Every check raises :class:`~farside_gan.core.errors.InputDataError` with a ``reason`` code that the
dataset manifest records (``quality_flag``, ``mostly_nan``, ``wrong_channel``, ``eclipse``, and
those of :mod:`farside_gan.core.header_checks`: ``missing_keyword``, ``inconsistent_header``,
``out_of_range``, ``empty_data``, ...). Nothing is dropped silently.

Eclipses: SDO sets ``ACS_ECLP = 'YES'`` in AIA/HMI headers while the Earth or Moon blocks the
Sun (and sets QUALITY bits, which the QUALITY check already catches). Periods that the header
does not flag (lunar transits seen by STEREO, a user's own list) are passed as
``eclipse_periods``: a list of ``(start, end)`` pairs of ISO strings or datetimes.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.core import header_checks as validation
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits
from farside_gan.core.instruments import (EUV, INSTRUMENTS, channel_of, instrument_of, obs_time,
                                          parse_time)

#: A frame with more than this fraction of non-finite pixels is "mostly NaN". HMI 720 s
#: magnetograms are NaN off the disk (about 22 % of the frame), which must pass.
MAX_NAN_FRACTION = 0.5


def _in_periods(t: datetime, periods) -> tuple | None:
    for start, end in periods or ():
        if parse_time(start) <= t < parse_time(end):
            return start, end
    return None


def check_frame(data: np.ndarray, header: fits.Header, instrument: str | None = None,
                channel=None, path: str | os.PathLike | None = None, eclipse_periods=None,
                max_nan_fraction: float = MAX_NAN_FRACTION) -> None:
    """Raise :class:`InputDataError` (naming ``path``) if the frame must be dropped.

    ``instrument``/``channel``, when given, are what the frame was fetched as; the header must
    agree (a catalog or query that returns the wrong channel is caught here). The header must
    hold everything the later stages read (:data:`farside_gan.core.header_checks.REQUIRED` ``fetch``),
    with physically plausible values, and the data must show the Sun (not empty, not constant).
    """
    validation.parse_all_cards(header, path)
    found = instrument_of(header)
    if found is None:
        raise InputDataError(path, "header names no known instrument (TELESCOP/INSTRUME/DETECTOR)",
                             reason="missing_keyword")
    if instrument is not None and found != instrument:
        raise InputDataError(path, f"frame is from {found}, expected {instrument}",
                             reason="wrong_channel")
    validation.require(header, found, "fetch", path)
    t = obs_time(header, path)
    if INSTRUMENTS[found].role == EUV:  # the channel is a wavelength
        validation.number(header, "WAVELNTH", path)
    if channel is not None:
        got = channel_of(header, found)
        if str(got) != str(channel):
            raise InputDataError(path, f"frame is {found} channel {got}, expected {channel}",
                                 reason="wrong_channel")

    quality = header.get("QUALITY")
    if quality not in (None, ""):
        if int(validation.number(header, "QUALITY", path)) != 0:
            raise InputDataError(path, f"QUALITY = {int(quality):#010x} (non-zero: flagged frame)",
                                 reason="quality_flag")
    if header.get("NMISSING") not in (None, "") and validation.number(header, "NMISSING", path) > 0:
        raise InputDataError(path, f"NMISSING = {header['NMISSING']} telemetry blocks missing",
                             reason="quality_flag")

    if str(header.get("ACS_ECLP", "NO")).strip().upper() == "YES":
        raise InputDataError(path, "ACS_ECLP = YES: the spacecraft is in eclipse", reason="eclipse")
    period = _in_periods(t, eclipse_periods)
    if period:
        raise InputDataError(path, f"DATE-OBS {t:%Y-%m-%dT%H:%M:%S} is inside the eclipse/transit "
                             f"period {period[0]} - {period[1]}", reason="eclipse")

    validation.check_raw_header(header, found, path)
    validation.check_image(data, path)
    disk = validation.check_geometry(header, found, data.shape, path)
    bad_fraction = 1.0 - np.count_nonzero(np.isfinite(data)) / data.size
    if bad_fraction > max_nan_fraction:
        raise InputDataError(path, f"{100 * bad_fraction:.0f}% of the pixels are NaN/inf "
                             f"(limit {100 * max_nan_fraction:.0f}%)", reason="mostly_nan")
    validation.check_disk_data(data, disk, path)


def check_file(path: str | os.PathLike, instrument: str | None = None, channel=None,
               eclipse_periods=None, max_nan_fraction: float = MAX_NAN_FRACTION):
    """Read and check a raw frame; returns ``(data, header)`` or raises :class:`InputDataError`."""
    data, header = read_fits(path)
    if instrument is not None and instrument not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {instrument!r}")
    check_frame(data, header, instrument, channel, Path(path), eclipse_periods, max_nan_fraction)
    return data, header
