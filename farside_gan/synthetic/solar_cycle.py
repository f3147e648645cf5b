"""The solar cycle and Hale's polarity law: facts about the Sun that the synthetic Sun follows."""

from __future__ import annotations

from datetime import datetime

#: Cycle minima (decimal years); cycle n starts at CYCLE_STARTS[n].
CYCLE_STARTS = {22: 1986.7, 23: 1996.4, 24: 2008.9, 25: 2019.9, 26: 2030.9}


def decimal_year(t: datetime) -> float:
    start = datetime(t.year, 1, 1)
    return t.year + (t - start).total_seconds() / (datetime(t.year + 1, 1, 1) - start).total_seconds()


def solar_cycle(t: datetime) -> tuple[int, float]:
    """(cycle number, phase in years since that cycle's minimum)."""
    y = decimal_year(t)
    number = max(n for n, start in CYCLE_STARTS.items() if start <= y) if y >= CYCLE_STARTS[22] else 22
    return number, y - CYCLE_STARTS[number]


def hale_leading_sign(cycle: int, hemisphere: int) -> int:
    """Leading-spot polarity: negative in the north in even cycles (24), positive in odd ones."""
    north = -1 if cycle % 2 == 0 else 1
    return north if hemisphere > 0 else -north
