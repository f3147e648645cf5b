"""Statistics of per-map scores: Fisher-z mean of correlations and block-bootstrap intervals.

Consecutive maps are not independent: an active region stays on the disk for up to two weeks,
so maps a day apart show much the same Sun. The bootstrap therefore resamples *blocks* of
:data:`BLOCK_DAYS` of observation time (fixed calendar blocks counted from the first map; a
block holds every map of its two weeks), drawn with replacement as many times as there are
non-empty blocks, :data:`N_RESAMPLES` times, from a generator seeded with :data:`SEED` so
every number reproduces. The interval is the 2.5th to 97.5th percentile of the resampled
statistic. With fewer than :data:`MIN_BLOCKS` blocks there is no interval (NaN).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

#: Block length (days): about the time an active region takes to cross the disk.
BLOCK_DAYS = 14.0
#: Resamples of a bootstrap: with 2000, an interval's ends vary between generator seeds by
#: about 2% of its width (standard deviation; autocorrelated series of 61-366 maps).
N_RESAMPLES = 2000
#: The bootstrap generator's seed.
SEED = 0
#: Fewest blocks for an interval: with two, the resampled means take only three values.
MIN_BLOCKS = 3
#: Confidence level of the intervals.
LEVEL = 0.95
#: CCs of exactly +-1 are moved this far inward before atanh (which is infinite there).
_CC_LIMIT = 1.0 - 1e-12


def fisher_z_mean(values) -> float:
    """tanh of the mean of atanh(CC) over the finite values: the mean of correlations in the
    space where they add (NaN when there are none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return math.nan
    return float(np.tanh(np.mean(np.arctanh(np.clip(v, -_CC_LIMIT, _CC_LIMIT)))))


def days_of(times) -> np.ndarray:
    """Times (datetimes) as days since the first of them."""
    times = list(times)
    if not times:
        return np.zeros(0)
    t0 = min(times)
    return np.array([(t - t0).total_seconds() / 86400.0 for t in times])


def time_blocks(days, block_days: float = BLOCK_DAYS) -> list[np.ndarray]:
    """Indices of the maps in each non-empty block of ``block_days``, in time order."""
    days = np.asarray(days, np.float64)
    if not days.size:
        return []
    number = np.floor((days - days.min()) / block_days).astype(int)
    return [np.flatnonzero(number == k) for k in np.unique(number)]


def block_resamples(days, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                    block_days: float = BLOCK_DAYS,
                    rng: np.random.Generator | None = None) -> list[np.ndarray] | None:
    """``n_resamples`` index arrays, each the maps of as many blocks as there are, drawn with
    replacement; None when there are fewer than :data:`MIN_BLOCKS` blocks."""
    blocks = time_blocks(days, block_days)
    if len(blocks) < MIN_BLOCKS:
        return None
    rng = rng if rng is not None else np.random.default_rng(seed)
    draws = rng.integers(0, len(blocks), size=(n_resamples, len(blocks)))
    return [np.concatenate([blocks[k] for k in row]) for row in draws]


def percentile_interval(estimates, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap estimates (NaN when none is finite)."""
    e = np.asarray(estimates, np.float64)
    e = e[np.isfinite(e)]
    if not e.size:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(e, [tail, 100.0 - tail])
    return float(low), float(high)


def nanmean(values) -> float:
    v = np.asarray(values, np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def nanmedian(values) -> float:
    v = np.asarray(values, np.float64)
    return float(np.nanmedian(v)) if np.isfinite(v).any() else math.nan


def ratio_of_means(numerator, denominator) -> float:
    """mean(numerator) / mean(denominator) over the entries where both are finite."""
    a, b = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any() or b[both].mean() == 0:
        return math.nan
    return float(a[both].mean() / b[both].mean())


def parse_map_time(text: str) -> datetime:
    """A table's map time: a time key (YYYYMMDDTHHMM, the grid time of a file) or ISO."""
    from farside_gan.core.instruments import TIME_KEY_FORMAT, parse_time
    try:
        return datetime.strptime(text, TIME_KEY_FORMAT)
    except ValueError:
        return parse_time(text)
