"""A progress bar per training epoch, on a text stream.

On a terminal the current epoch's bar is redrawn in place (at most 10 times a second) and replaced by the
epoch's summary line when it ends; elsewhere (a log file, CI, a pipe) only the summary lines are written,
so logs stay one line per epoch.
"""

from __future__ import annotations

import time
from typing import TextIO


class EpochProgress:
    """``start(epoch, batches)``, ``step(done, loss)`` per batch, ``end(line)`` per epoch."""

    def __init__(self, stream: TextIO, epochs: int, live: bool | None = None, width: int = 30) -> None:
        self.stream, self.epochs, self.width = stream, epochs, width
        self.live = stream.isatty() if live is None else live
        self._epoch = 0
        self._batches = 0
        self._start = 0.0
        self._last = 0.0
        self._drawn = False

    def start(self, epoch: int, batches: int) -> None:
        """Epoch ``epoch`` (1-based) of ``batches`` batches begins."""
        self._epoch, self._batches = epoch, batches
        self._start = self._last = time.monotonic()
        self._drawn = False

    def step(self, done: int, loss: float) -> None:
        """``done`` batches of this epoch are finished; ``loss`` is the running mean training loss."""
        if not self.live:
            return
        now = time.monotonic()
        if done < self._batches and now - self._last < 0.1:
            return
        self._last = now
        frac = done / self._batches if self._batches else 1.0
        fill = int(frac * self.width)
        rate = done / max(now - self._start, 1e-9)
        self.stream.write(f"\repoch {self._epoch}/{self.epochs} [{'#' * fill}{'-' * (self.width - fill)}] "
                          f"{done}/{self._batches} batches  loss {loss:.4f}  {rate:.1f} batches/s ")
        self.stream.flush()
        self._drawn = True

    def end(self, line: str) -> None:
        """The epoch ended: write its summary line (over the bar on a terminal)."""
        prefix = "\r\x1b[2K" if self._drawn else ""  # carriage return, then erase the bar's line
        self.stream.write(f"{prefix}{line}\n")
        self.stream.flush()
        self._drawn = False


__all__ = ["EpochProgress"]
