"""Stack: the three normalized EUV channels of one time as one ``(3, N, N)`` FITS, with
``CHAN1..3`` and ``CTYPE3 = 'CHANNEL'``, each channel's time and normalization."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan.core import conventions
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, write_fits
from farside_gan.core.header_checks import (MAX_STACK_TIME_SPREAD, check_stack_frames,
                                            parse_all_cards)
from farside_gan.core.instruments import (CHANNELS, EUV_INSTRUMENTS, channel_of, instrument_of,
                                          obs_time)


def stack_frames(frames: list[tuple[np.ndarray, fits.Header]], paths=None,
                 max_time_spread: timedelta = MAX_STACK_TIME_SPREAD) -> tuple[np.ndarray, fits.Header]:
    """Three normalized frames, in the instrument's channel order, -> (3, N, N) cube and header.

    The frames must be finite normalized planes of one geometry, observed within
    ``max_time_spread`` of each other (``validation.check_stack_frames``).
    """
    paths = list(paths) if paths is not None else [None] * len(frames)
    if len(frames) != 3:
        raise ValueError(f"a stack needs 3 channels, got {len(frames)}")
    for (_, header), path in zip(frames, paths):
        parse_all_cards(header, path)
    first_data, first_header = frames[0]
    instrument = instrument_of(first_header)
    if instrument not in EUV_INSTRUMENTS:
        raise InputDataError(paths[0], f"not an EUV frame (instrument {instrument})",
                             reason="wrong_channel")
    expected = CHANNELS[instrument]
    times = []
    for i, ((data, header), path) in enumerate(zip(frames, paths)):
        if instrument_of(header) != instrument:
            raise InputDataError(path, f"is {instrument_of(header)}, the stack is {instrument}",
                                 reason="wrong_channel")
        if str(channel_of(header, instrument)) != str(expected[i]):
            raise InputDataError(path, f"is channel {channel_of(header, instrument)}, position {i + 1}"
                                 f" of the stack must be {expected[i]} (order {expected})",
                                 reason="wrong_channel")
        if data.shape != first_data.shape:
            raise InputDataError(path, f"shape {data.shape} differs from {first_data.shape}",
                                 reason="inconsistent_header")
        if "NORMMED" not in header:
            raise InputDataError(path, "is not a normalized frame: header lacks NORMMED",
                                 reason="missing_keyword")
        times.append(obs_time(header, path))
    check_stack_frames(frames, paths, max_time_spread)  # one set of conventions, among others
    cube = np.stack([np.asarray(d, dtype=np.float32) for d, _ in frames])
    h = first_header.copy()
    for key in ("WAVELNTH", "WAVE_STR", "EXPTIME", "DEGRADAT", "NORMMED", "HISTORY"):
        h.remove(key, ignore_missing=True, remove_all=True)
    h["NAXIS"] = 3
    h["NAXIS3"] = 3
    h["CTYPE3"], h["CRPIX3"], h["CRVAL3"], h["CDELT3"], h["CUNIT3"] = "CHANNEL", 1.0, 1.0, 1.0, ""
    conventions.write_channels(h, [int(c) for c in expected])
    for i, ((_, header), path, t) in enumerate(zip(frames, paths, times), start=1):
        h[f"TOBS{i}"] = (t.strftime("%Y-%m-%dT%H:%M:%S.%f"), f"DATE-OBS of channel {expected[i - 1]}")
        h[f"NORMMED{i}"] = header["NORMMED"]
        if path is not None:
            h[f"FILE{i}"] = Path(path).name
    h["BUNIT"] = ""
    return cube, h


def stack_files(out_path, paths, max_time_spread: timedelta = MAX_STACK_TIME_SPREAD) -> Path:
    frames = [read_fits(p) for p in paths]
    cube, header = stack_frames(frames, paths, max_time_spread)
    return write_fits(out_path, cube, header)
