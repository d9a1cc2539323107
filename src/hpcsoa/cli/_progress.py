"""Progress on stderr: a live rich bar on a terminal, plain periodic lines otherwise.

Callers report absolute counters as often as they like; both reporters throttle, so a
100 000-result loop costs a few hundred redraws, not 100 000.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ._output import is_terminal, make_console

__all__ = ["PlainProgress", "ProgressReporter", "RichProgress", "make_progress"]


def _eta(remaining: int | None, rate: float) -> str:
    if remaining is None or rate <= 0:
        return "-"
    seconds = int(remaining / rate + 0.5)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressReporter:
    """Common bookkeeping: counters, rate over this run, throttling."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None,
        initial: int = 0,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.initial = initial
        self.done = initial
        self.faults = 0
        self.retries = 0
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._min_interval = min_interval
        self._rendered: tuple[int, int, int] | None = None

    @property
    def rate(self) -> float:
        """Completed items per second in this run (resumed items excluded)."""
        elapsed = self._clock() - self._start
        return (self.done - self.initial) / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, *, faults: int = 0, retries: int = 0, force: bool = False) -> None:
        """Record absolute counters; redraw when ``min_interval`` has passed (or ``force``)."""
        self.done, self.faults, self.retries = done, faults, retries
        now = self._clock()
        if force or now - self._last >= self._min_interval:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        self._rendered = (self.done, self.faults, self.retries)
        self._render()

    def _render(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Draw the final state (unless already shown) and release the terminal."""
        if self._rendered != (self.done, self.faults, self.retries):
            self._draw()

    def line(self) -> str:
        """The counters as one plain line."""
        total = "?" if self.total is None else str(self.total)
        pct = ""
        if self.total:
            pct = f" ({100.0 * self.done / self.total:.1f}%)"
        remaining = None if self.total is None else max(self.total - self.done, 0)
        return (
            f"{self.label}: {self.done}/{total}{pct} {self.rate:,.0f}/s "
            f"eta {_eta(remaining, self.rate)} faults {self.faults} retries {self.retries}"
        )


class PlainProgress(ProgressReporter):
    """One line every ``interval`` seconds: for logs, pipes and CI."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None,
        initial: int = 0,
        interval: float = 2.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(label, total=total, initial=initial, min_interval=interval, clock=clock)
        self._stream = stream if stream is not None else sys.stderr

    def _render(self) -> None:
        try:
            self._stream.write(self.line() + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass


class RichProgress(ProgressReporter):
    """A live bar: done/total, rate, ETA, faults, retries."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None,
        initial: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(label, total=total, initial=initial, min_interval=0.1, clock=clock)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            TextColumn("faults {task.fields[faults]} retries {task.fields[retries]}"),
            console=make_console(stderr=True),
            refresh_per_second=8,
        )
        self._task: TaskID = self._progress.add_task(
            label, total=total, completed=initial, rate="-", faults=0, retries=0
        )
        self._progress.start()

    def _render(self) -> None:
        self._progress.update(
            self._task,
            completed=self.done,
            rate=f"{self.rate:,.0f}/s",
            faults=self.faults,
            retries=self.retries,
        )

    def close(self) -> None:
        self._draw()
        self._progress.refresh()
        self._progress.stop()


def make_progress(
    label: str, *, total: int | None, initial: int = 0, quiet: bool = False
) -> ProgressReporter:
    """Rich bar when stderr is a terminal, plain lines every 2 s otherwise (none if quiet)."""
    if quiet:
        return _Silent(label, total=total, initial=initial, min_interval=3600.0)
    if is_terminal(sys.stderr):
        return RichProgress(label, total=total, initial=initial)
    return PlainProgress(label, total=total, initial=initial)


class _Silent(ProgressReporter):
    def _render(self) -> None:
        pass
