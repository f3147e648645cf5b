"""Durations as the configuration and the command line write them ('6m', '1h', '1d12h'), and
the grids of observation times they space."""

from __future__ import annotations

from datetime import datetime, timedelta


def parse_duration(text: str | float | timedelta) -> timedelta:
    """'90s', '6m', '1h', '2d', combinations like '1d12h', or a number of seconds -> timedelta."""
    import re

    if isinstance(text, timedelta):
        return text
    text = str(text).strip()
    if re.fullmatch(r"[0-9.]+", text):
        return timedelta(seconds=float(text))
    if not re.fullmatch(r"(\s*[0-9.]+\s*[smhd])+\s*", text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 6m, 1h, 2d, 1d12h)")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=sum(float(v) * seconds[u]
                                 for v, u in re.findall(r"([0-9.]+)\s*([smhd])", text)))


def times_at_cadence(start, end, cadence) -> list[datetime]:
    """Times from ``start`` to ``end`` inclusive every ``cadence`` (e.g. '12h' or a timedelta):
    the one time grid of the workflow's configuration, the fetches and the synthetic archive."""
    from farside_gan.core.instruments import parse_time

    t, stop, step = parse_time(start), parse_time(end), parse_duration(cadence)
    out = []
    while t <= stop:
        out.append(t)
        t += step
    return out
