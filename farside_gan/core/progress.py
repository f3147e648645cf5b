"""Progress of a long loop: a tqdm bar on a terminal, plain log lines everywhere else.

A bar redraws itself with carriage returns, which a log file (a Snakemake rule's ``log:``, a
SLURM job's output) keeps as one ever-growing line. When the stream is not a terminal the
progress goes to the logger instead: one line every ``every_s`` seconds, after the first step
and at the last.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time


class StepProgress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True, every_s: float = 30.0,
                 desc: str = "train", logger: logging.Logger | None = None, stream=None):
        stream = stream or sys.stderr
        self.total, self.step, self.first = total, initial, initial
        self.every_s, self.desc = every_s, desc
        self.log = logger or logging.getLogger(__name__)
        self.bar = None
        self.lines = enabled and not _isatty(stream)
        if enabled and not self.lines:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step",
                            dynamic_ncols=True, file=stream)
        self.start = self.last_line = time.monotonic()
        self.losses: dict[str, float] = {}

    def update(self, epoch: int, losses: dict[str, float] | None = None) -> None:
        """One step done; ``losses`` when they were read back (not every step on a GPU)."""
        self.step += 1
        if losses:
            self.losses = losses
        if self.bar is not None:
            self.bar.update(1)
            if losses:
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        elif self.lines:
            now = time.monotonic()
            if (now - self.last_line >= self.every_s or self.step == self.total
                    or self.step == self.first + 1):
                self.last_line = now
                self.log.info(self.line(epoch, now))

    def line(self, epoch: int, now: float) -> str:
        done = self.step - self.first
        rate = done / max(now - self.start, 1e-9)
        left = (self.total - self.step) / rate if rate > 0 else 0.0
        losses = " ".join(f"{k} {v:.3f}" for k, v in self.losses.items())
        return (f"{self.desc}: step {self.step}/{self.total} "
                f"({100 * self.step / max(self.total, 1):.0f}%), epoch {epoch}, "
                f"{rate:.2f} steps/s, {datetime.timedelta(seconds=round(left))} left"
                + (f", {losses}" if losses else ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
