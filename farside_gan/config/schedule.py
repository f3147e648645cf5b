"""The run's calendar: the observation times a workflow configuration asks for, the periods that
batch them into jobs, and the months held out for evaluation.

Times are time keys (``YYYYMMDDTHHMM``, ``core.instruments.TIME_KEY_FORMAT``), the names of the
workflow's files. A period is the first 6 (month), 8 (day) or 13 (time) characters of its times'
keys (``fetch.batch``), so periods sort as their times do. The evaluation split is by month,
seeded per year (:func:`split_months`), so the near-side periods to predict are known before
any data is; the manifest splits its pairs with the same function.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from farside_gan.core.instruments import FARSIDE_INPUTS, TRAINING_INPUT, TRAINING_TARGET, time_key
from farside_gan.core.times import times_at_cadence

#: ``fetch.batch`` -> the length of a period's key, a prefix of its times' keys.
PERIOD_KEY_LENGTH = {"month": 6, "day": 8, "time": 13}


def split_months(years, seed: int = 0, eval_months: int = 2) -> dict[int, tuple[int, ...]]:
    """Per year, the months (1-12) held out for evaluation; seeded, independent of other years."""
    if not 0 <= eval_months <= 12:
        raise ValueError(f"eval_months must be in 0..12, got {eval_months}")
    out = {}
    for year in sorted(set(int(y) for y in years)):
        rng = np.random.default_rng([int(seed), year])
        out[year] = tuple(sorted(int(m) for m in rng.choice(np.arange(1, 13), eval_months,
                                                            replace=False)))
    return out


def time_keys(start: str, end: str, hours: float) -> list[str]:
    """Time keys from ``start`` to ``end`` inclusive, every ``hours``."""
    return [time_key(t) for t in times_at_cadence(start, end, timedelta(hours=hours))]


class Schedule:
    """The times, periods and evaluation months of a validated workflow configuration
    (``farside_gan.config.workflow.validate_config``): AIA and HMI at the training times
    (``start``, ``end``, ``cadence_hours``), each STEREO/EUVI with a ``farside.spacecraft``
    range at ``farside.cadence_hours``."""

    def __init__(self, config: dict):
        self.batch = config["fetch"]["batch"]
        self._key_length = PERIOD_KEY_LENGTH[self.batch]
        #: (instruments, start, end, cadence hours) of each time grid, as the configuration says
        self.spans = [((TRAINING_INPUT, TRAINING_TARGET), config["start"], config["end"],
                       config["cadence_hours"])]
        farside = config["farside"]
        for instrument in FARSIDE_INPUTS:
            span = farside["spacecraft"].get(instrument)
            if span:
                self.spans.append(((instrument,), span["start"], span["end"],
                                   farside["cadence_hours"]))
        self._times = {}
        for instruments, start, end, hours in self.spans:
            times = time_keys(start, end, hours)
            self._times.update((i, times) for i in instruments)
        self._periods = {}
        for instrument, times in self._times.items():
            by_period = self._periods[instrument] = {}
            for t in times:
                by_period.setdefault(self.period_of(t), []).append(t)
        dataset = config["dataset"]
        #: {year: evaluation months} of the training years
        self.eval_months = split_months({int(t[:4]) for t in self.times(TRAINING_INPUT)},
                                        dataset["seed"], dataset["eval_months"])

    @property
    def instruments(self) -> tuple[str, ...]:
        """The instruments the run fetches (the training pair, the STEREOs with a range)."""
        return tuple(self._times)

    def times(self, instrument: str) -> list[str]:
        """The instrument's observation times ([] for a STEREO without a range)."""
        return self._times.get(instrument, [])

    def period_of(self, time: str) -> str:
        return time[:self._key_length]

    def periods(self, instrument: str) -> list[str]:
        """The periods with times of the instrument, in order."""
        return sorted(self._periods.get(instrument, ()))

    def times_in(self, instrument: str, period: str) -> list[str]:
        return self._periods.get(instrument, {}).get(period, [])

    @property
    def eval_periods(self) -> list[str]:
        """The training input's periods in an evaluation month (where near-side maps are made)."""
        return [p for p in self.periods(TRAINING_INPUT)
                if int(p[4:6]) in self.eval_months.get(int(p[:4]), ())]
