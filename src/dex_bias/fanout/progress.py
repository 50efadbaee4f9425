"""Progress over a whole fan-out: images done, rate and time left, on the console and in the log."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("dex_bias.fanout")


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``2 min 35 s``, ``12 s``."""
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s"


class Progress:
    """Counts ``unit`` s done of ``total`` (``initial`` of them done before this run started).

    The rate counts only what this run did (resumed chunks are not work done now); time left is
    the rest at that rate. A tqdm bar shows it on the console (``bar``), and a log line every
    ``log_every`` seconds (and at the end) says the same for the run's log.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        *,
        initial: int = 0,
        unit: str = "image",
        log_every: float = 10.0,
        bar: bool = True,
    ):
        self.stage, self.total, self.initial, self.unit = stage, int(total), int(initial), unit
        self.done = int(initial)
        self.log_every = float(log_every)
        self.started = time.perf_counter()
        self._last_log = self.started
        self._bar = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total, initial=self.initial, desc=stage, unit=unit, mininterval=1.0, dynamic_ncols=True
            )

    @property
    def rate(self) -> float:
        """Units per second done by this run so far."""
        return (self.done - self.initial) / max(time.perf_counter() - self.started, 1e-9)

    def line(self) -> str:
        share = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.stage}: {self.done}/{self.total} {self.unit}s ({share:.0f} %)"
        if self.done > self.initial:
            rate = self.rate
            text += f", {rate:.2f} {self.unit}s/s"
            if self.done < self.total:
                text += f", about {duration((self.total - self.done) / max(rate, 1e-9))} left"
        return text

    def update(self, count: int) -> None:
        self.done += int(count)
        if self._bar is not None:
            self._bar.update(int(count))
        now = time.perf_counter()
        if self.log_every >= 0 and now - self._last_log >= self.log_every and self.done < self.total:
            self._last_log = now
            logger.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elapsed = time.perf_counter() - self.started
        new = self.done - self.initial
        logger.info(
            "%s: %d/%d %ss done; %d in this run in %s (%.2f %ss/s)%s",
            self.stage,
            self.done,
            self.total,
            self.unit,
            new,
            duration(elapsed),
            new / max(elapsed, 1e-9),
            self.unit,
            f", {self.initial} done before" if self.initial else "",
        )
