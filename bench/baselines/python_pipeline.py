"""The best plain-Python recorder: what a careful Python programmer writes with mss, NumPy and OpenCV.

- grab: mss (XShmGetImage on X11 since mss 10); the BGRA pixels are viewed in place (np.frombuffer of
  the screenshot's buffer), never copied into a new array;
- convert: OpenCV in the cheaper order for each colour: gray is cvtColor then an INTER_AREA resize (one
  channel left to shrink), RGB is an INTER_AREA resize of the BGRA image then cvtColor of the small
  image; the last OpenCV call writes straight into the mapped frames file (its ``dst``);
- labels: the configured keys' state polled from the X server once per frame (XQueryKeymap, one round
  trip); a plain-Python program has no event listener on the capture clock, so a tap between two polls
  is lost (the engine's is not);
- store: frames, timestamps and key states in .npy files written through np.memmap, one chunk of about
  ``CHUNK_BYTES`` mapped at a time so memory stays flat, headers rewritten with the final count at close;
- pacing: ``time.sleep`` to absolute deadlines (start + i * period, time.monotonic_ns); a tick more than
  a period late is dropped and counted, never caught up in a burst (the engine pacer's rule).

One thread: a second Python thread would serialise on the GIL for everything but the grab and OpenCV
calls, and the loop already spends most of its time in them. Stage times are taken with
time.monotonic_ns (tens of nanoseconds a call) so they can be compared stage by stage with the engine's.
"""

from __future__ import annotations

import math
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import mss
import numpy as np

from engine import _native

CHUNK_BYTES = 4 << 20
HEADER_BYTES = 128  # every .npy written here: data starts at this offset
_MAGIC = b"\x93NUMPY\x01\x00"


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header padded to exactly HEADER_BYTES, so the count can be rewritten in place."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    body = text.ljust(HEADER_BYTES - len(_MAGIC) - 2 - 1) + "\n"
    return _MAGIC + struct.pack("<H", len(body)) + body.encode("latin1")


class NpySeries:
    """One growing .npy file of rows written through np.memmap, one chunk of rows mapped at a time."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], dtype: Any) -> None:
        self.path = path
        self.row_shape = row_shape
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * math.prod(row_shape)
        self.chunk_rows = max(1, CHUNK_BYTES // self.row_bytes)
        self.n = 0
        self._chunk: np.memmap | None = None
        self._start = 0
        path.write_bytes(_npy_header(self.dtype, (0, *row_shape)))

    def _map_next_chunk(self) -> np.memmap:
        if self._chunk is not None:
            self._chunk.flush()
        self._start = self.n
        # np.memmap extends the file to cover the chunk (mode r+); only this chunk is mapped.
        self._chunk = np.memmap(self.path, self.dtype, "r+", offset=HEADER_BYTES + self.n * self.row_bytes,
                                shape=(self.chunk_rows, *self.row_shape))
        return self._chunk

    def row(self) -> np.ndarray:
        """A writable view of the next row (call :meth:`commit` once it is filled)."""
        chunk = self._chunk
        i = self.n - self._start
        if chunk is None or i == self.chunk_rows:
            chunk, i = self._map_next_chunk(), 0
        return chunk[i]

    def commit(self) -> None:
        self.n += 1

    def put(self, value: Any) -> None:
        """Append one row given as a value (for rows too small to be worth a view)."""
        chunk = self._chunk
        i = self.n - self._start
        if chunk is None or i == self.chunk_rows:
            chunk, i = self._map_next_chunk(), 0
        chunk[i] = value
        self.n += 1

    def close(self) -> None:
        """Unmap, cut the file to exactly n rows and write the final count into the header."""
        if self._chunk is not None:
            self._chunk.flush()
            self._chunk = None
        with open(self.path, "r+b") as f:
            f.truncate(HEADER_BYTES + self.n * self.row_bytes)
            f.write(_npy_header(self.dtype, (self.n, *self.row_shape)))
            os.fsync(f.fileno())


class MemmapStore:
    """A recording on disk: frames.npy, timestamps.npy (int64 ns) and keys.npy (uint8 per key)."""

    def __init__(self, directory: Path, frame_shape: tuple[int, ...], n_keys: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.frames = NpySeries(directory / "frames.npy", frame_shape, np.uint8)
        self.timestamps = NpySeries(directory / "timestamps.npy", (), np.int64)
        self.keys = NpySeries(directory / "keys.npy", (n_keys,), np.uint8)

    def frame_slot(self) -> np.ndarray:
        """Where the next frame goes: fill it, then :meth:`commit` it."""
        return self.frames.row()

    def commit(self, t_ns: int, keys: Sequence[bool] | np.ndarray) -> None:
        self.frames.commit()
        self.timestamps.put(t_ns)
        self.keys.put(keys)

    def close(self) -> int:
        for series in (self.frames, self.timestamps, self.keys):
            series.close()
        return self.frames.n


@dataclass
class RunStats:
    """What one recording run did, stage by stage (ns totals over all frames)."""

    fps: float
    ticks: int = 0  # deadlines that came due
    frames: int = 0
    dropped: int = 0  # ticks more than a period late, skipped
    grab_ns: int = 0
    convert_ns: int = 0
    labels_ns: int = 0
    store_ns: int = 0
    lateness_ns: list[int] = field(default_factory=list)  # wake-up time minus deadline, per frame
    cpu: list[tuple[float, int]] = field(default_factory=list)  # (process CPU s, frames), about twice a second
    wall_s: float = 0.0

    def per_frame_ms(self, total_ns: int) -> float:
        return total_ns / max(1, self.frames) / 1e6


class PythonRecorder:
    """Records ``region`` (x, y, w, h) resized to ``size`` (w, h) in ``color`` into ``directory``."""

    def __init__(self, region: tuple[int, int, int, int], size: tuple[int, int], color: Literal["gray", "rgb"],
                 directory: Path, *, keys: Sequence[str] = ("a", "w", "d"), display: str = "") -> None:
        self.region = region
        self.size = size
        self.color = color
        self.directory = directory
        self.keys = list(keys)
        self._sct = mss.MSS()
        self._keyboard = _native.XTestActuator(display, self.keys)
        x, y, w, h = region
        self._area = {"left": x, "top": y, "width": w, "height": h}
        self.frame_shape: tuple[int, ...] = (size[1], size[0]) if color == "gray" else (size[1], size[0], 3)

    def grab_convert(self, out: np.ndarray) -> np.ndarray:
        """One frame into ``out`` (the loop's grab and convert lines, for checks)."""
        shot = self._sct.grab(self._area)
        bgra = np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)
        return self._convert(bgra, out)

    def _convert(self, bgra: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self.color == "gray":
            gray = cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY)
            return cv2.resize(gray, self.size, dst=out, interpolation=cv2.INTER_AREA)
        small = cv2.resize(bgra, self.size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGRA2RGB, dst=out)

    def run(self, fps: float, duration_s: float) -> RunStats:
        """Record for ``duration_s`` at ``fps``; the files are complete when this returns."""
        store = MemmapStore(self.directory, self.frame_shape, len(self.keys))
        st = RunStats(fps=fps)
        period = round(1e9 / fps)
        n_ticks = round(duration_s * fps)
        snap_every = max(1, round(fps / 2))
        clock = time.monotonic_ns
        sct, area, keyboard, convert = self._sct, self._area, self._keyboard, self._convert
        lateness = st.lateness_ns
        st.cpu.append((time.process_time(), 0))
        start = clock()
        tick = 0
        while tick < n_ticks:
            due = start + tick * period
            now = clock()
            if now < due:
                time.sleep((due - now) / 1e9)
                now = clock()
            late = now - due
            if late > period:  # more than a period late: drop the missed ticks, never catch up
                missed = late // period
                st.dropped += missed
                tick += missed
                late -= missed * period
                if tick >= n_ticks:
                    break
            lateness.append(late)
            t0 = clock()
            shot = sct.grab(area)
            bgra = np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)
            t1 = clock()
            slot = store.frame_slot()
            convert(bgra, slot)
            t2 = clock()
            pressed = keyboard.system_held()
            t3 = clock()
            store.commit(t0, pressed)
            t4 = clock()
            st.grab_ns += t1 - t0
            st.convert_ns += t2 - t1
            st.labels_ns += t3 - t2
            st.store_ns += t4 - t3
            st.frames += 1
            tick += 1
            if st.frames % snap_every == 0:
                st.cpu.append((time.process_time(), st.frames))
        st.wall_s = (clock() - start) / 1e9
        st.ticks = tick
        t0 = clock()
        store.close()
        st.store_ns += clock() - t0
        return st

    def close(self) -> None:
        self._sct.close()


def store_frames(frames: Any, outputs: Any, directory: Path, frame_shape: tuple[int, ...], n_keys: int) -> int:
    """The storage lines of :meth:`PythonRecorder.run` alone, fed frames grabbed beforehand."""
    store = MemmapStore(directory, frame_shape, n_keys)
    for t, (frame, output) in enumerate(zip(frames, outputs, strict=True), 1):
        store.frame_slot()[...] = frame
        store.commit(t, output)
    return store.close()


def load(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, timestamps, keys) as read-only memmaps."""
    return tuple(np.load(directory / n, mmap_mode="r") for n in ("frames.npy", "timestamps.npy", "keys.npy"))  # type: ignore[return-value]
