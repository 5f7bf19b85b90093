"""Progress of the sample stream: what ``account(..., progress=callback)``
reports, and the terminal bar the command line draws from it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Progress:
    """How far the engine has pulled the ``power`` stream.

    ``rows`` and ``files`` count what has been handed to the engine so far;
    ``rows_total`` is known for Parquet files (from their footers) and
    in-memory tables, ``files_total`` for path inputs, else ``None``.
    ``done`` is set once, on the last call, when the stream is exhausted.
    """

    rows: int
    rows_total: int | None = None
    files: int = 0
    files_total: int | None = None
    done: bool = False


ProgressCallback = Callable[[Progress], None]


def _count(n: float) -> str:
    """3 significant figures with a k/M/G suffix: 950, 12.3k, 4.56M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{suffix}" if v < 1000 else f"{v:.0f}{suffix}"
    return f"{n:.0f}"


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_progress(p: Progress, elapsed: float, width: int = 20) -> str:
    """One status line: a bar (when the total is known), files and rows done,
    rows per second and the time left, e.g.
    ``power [#####-----]  25%  2/8 files  1.05M/4.19M rows  3.1M rows/s  ETA 0:01``."""
    parts = ["power"]
    frac: float | None = None
    if p.rows_total:
        frac = min(1.0, p.rows / p.rows_total)
    elif p.files_total:
        frac = min(1.0, p.files / p.files_total)
    if p.done:
        frac = 1.0
    if frac is not None:
        filled = int(frac * width)
        parts.append(f"[{'#' * filled}{'-' * (width - filled)}] {100 * frac:3.0f}%")
    if p.files_total is not None:
        parts.append(f"{p.files}/{p.files_total} files")
    rows = _count(p.rows)
    parts.append(f"{rows}/{_count(p.rows_total)} rows" if p.rows_total else f"{rows} rows")
    rate = p.rows / elapsed if elapsed > 0 else 0.0
    if rate > 0:
        parts.append(f"{_count(rate)} rows/s")
    if p.done:
        parts.append(f"in {_clock(elapsed)}")
    elif frac is not None and frac > 0 and elapsed > 0:
        parts.append(f"ETA {_clock(elapsed * (1 - frac) / frac)}")
    return "  ".join(parts)


class ProgressBar:
    """A ``\\r``-updated status line on a terminal: a ``progress`` callback
    for ``account``. Redraws at most ``max_rate`` times a second (and always
    for the final call); ``close`` ends or erases the line."""

    def __init__(
        self,
        stream: TextIO,
        max_rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval = 1.0 / max_rate
        self._clock = clock
        self._start = clock()
        self._last_draw = -float("inf")
        self._drawn = 0

    def __call__(self, p: Progress) -> None:
        """Redraw the line with ``p``: at most ``max_rate`` times a second,
        and always for the final state."""
        now = self._clock()
        if not p.done and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        line = format_progress(p, now - self._start)
        pad = " " * max(0, self._drawn - len(line))
        self._stream.write(f"\r{line}{pad}")
        self._stream.flush()
        self._drawn = len(line)

    def close(self, keep: bool = False) -> None:
        """End the line: keep it (a newline after the last state drawn) or
        erase it, leaving the cursor at the start of an empty line."""
        if self._drawn:
            end = "\n" if keep else f"\r{' ' * self._drawn}\r"
            self._stream.write(end)
            self._stream.flush()
            self._drawn = 0
