"""The demo game's per-frame log: a streaming CSV, and its loader.

Format (UTF-8 text, one line per presented frame, in order):

    # engine-demo log v1 seed=0 tick_hz=60 size=320x240 autodrive=1 gusts=0
    frame,t_ns,keys,pressed,car_x,road_x,on_road,sent,tap,tap_ns,poll_ns,dx,sent_dx
    0,123456789012,0,0,160.00,160.00,1,0,0,0,123456700000,0,0.00

- frame: the game tick index, the number drawn in the frame stamp (``engine.demo.pattern``); gaps mean
  ticks the game was too late for and skipped.
- t_ns: CLOCK_MONOTONIC (``time.monotonic_ns()``, the engine clock) right after the frame was
  presented (pygame's flip returned: the X server has the pixels).
- keys: key mask held when the game polled for this frame (bit 0 left, bit 1 right, bit 2 up).
- pressed: keys that went down since the previous poll; ``pressed & ~keys`` are taps.
- car_x, road_x: car centre and road centre at the car's row, window pixels; on_road: 0/1.
- sent, tap, tap_ns: autodrive only (else 0): the key mask the driver holds after this frame, the key it
  tapped after this frame, and that tap's press-to-release time in ns.
- poll_ns: CLOCK_MONOTONIC when the keys for this frame were read, before it was drawn. Unlike t_ns it
  is an upper bound a recorder can rely on: this frame cannot have been on screen before poll_ns.
- dx: ``--mouse`` only (else 0): the horizontal mouse motion (counts) the game read for this frame and
  applied to the car (SDL's relative mouse state since the previous frame).
- sent_dx: ``--mouse --autodrive`` only: the motion (counts) the driver asked for after this frame (sent
  as XTest relative motion spread over the next tick).

Logs written before dx and sent_dx existed load with those columns 0.

Why CSV: readable by anything (pandas, a spreadsheet, ``less``) and cheap at 60 lines a second. The file
is flushed every ``flush_every`` frames and when the game exits for any reason it handles (window close,
Escape, duration, SIGTERM, SIGINT), so it is complete then; after a hard kill (SIGKILL) it lacks at most
the last ``flush_every`` frames, and a torn last line is ignored by :func:`load_log`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

import numpy as np

MAGIC = "# engine-demo log v1"
COLUMNS = ("frame", "t_ns", "keys", "pressed", "car_x", "road_x", "on_road", "sent", "tap", "tap_ns", "poll_ns", "dx",
           "sent_dx")
LOG_DTYPE = np.dtype([
    ("frame", np.int64),
    ("t_ns", np.int64),
    ("keys", np.uint8),
    ("pressed", np.uint8),
    ("car_x", np.float32),
    ("road_x", np.float32),
    ("on_road", np.bool_),
    ("sent", np.uint8),
    ("tap", np.uint8),
    ("tap_ns", np.int64),
    ("poll_ns", np.int64),
    ("dx", np.int32),
    ("sent_dx", np.float32),
])
# How each column is parsed: the bool column is read as an integer, then cast.
def _parse_dtype(columns: list[str]) -> np.dtype:
    return np.dtype([(n, np.uint8 if n == "on_road" else LOG_DTYPE[n]) for n in columns])


class LogWriter:
    """Appends one line per frame to a new log file (truncating an old one)."""

    def __init__(self, path: str | Path, meta: dict[str, object], flush_every: int = 15) -> None:
        self.path = Path(path)
        self._f: TextIO = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed in close())
        self._flush_every = max(1, flush_every)
        self._pending = 0
        self.rows = 0
        fields = " ".join(f"{k}={v}" for k, v in meta.items())
        self._f.write(f"{MAGIC} {fields}\n{','.join(COLUMNS)}\n")
        self._f.flush()

    def write(
        self, frame: int, t_ns: int, keys: int, pressed: int, car_x: float, road_x: float, on_road: bool,
        sent: int = 0, tap: int = 0, tap_ns: int = 0, poll_ns: int = 0, dx: int = 0, sent_dx: float = 0.0,
    ) -> None:
        self._f.write(
            f"{frame},{t_ns},{keys},{pressed},{car_x:.2f},{road_x:.2f},{int(on_road)},{sent},{tap},{tap_ns},"
            f"{poll_ns},{dx},{sent_dx:.2f}\n"
        )
        self.rows += 1
        self._pending += 1
        if self._pending >= self._flush_every:
            self._f.flush()
            self._pending = 0

    def close(self) -> None:
        """Flush and close. Idempotent."""
        if not self._f.closed:
            self._f.flush()
            self._f.close()


def read_meta(path: str | Path) -> dict[str, str]:
    """The key=value pairs of a log's first line (seed, tick_hz, size, autodrive, gusts)."""
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    if not first.startswith(MAGIC):
        raise ValueError(f"{path} is not an engine-demo log (first line {first[:40]!r})")
    return dict(item.split("=", 1) for item in first[len(MAGIC):].split())


def load_log(path: str | Path) -> np.ndarray:
    """The log as a structured array of LOG_DTYPE, one row per frame (an incomplete last line is dropped)."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith(MAGIC):
        raise ValueError(f"{path} is not an engine-demo log")
    lines = text.split("\n")
    columns = [c for c in lines[1].split(",") if c in COLUMNS] if len(lines) > 1 else list(COLUMNS)
    # A final piece without "\n" is a line the writer had not finished (the game was killed mid-write).
    body = [ln for ln in lines[2:-1] if ln]
    out = np.zeros(len(body), LOG_DTYPE)
    if not body:
        return out
    parsed = np.loadtxt(io.StringIO("\n".join(body)), delimiter=",", dtype=_parse_dtype(columns), ndmin=1)
    for c in columns:
        out[c] = parsed[c]
    return out


__all__ = ["COLUMNS", "LOG_DTYPE", "LogWriter", "load_log", "read_meta"]
