"""A session writer in its own process, for the tests that need one (memory, kill -9, size limit).

    python session_writer.py rss  DATA_DIR        100k frames of 160x120 gray; prints one JSON line
    python session_writer.py kill DATA_DIR        writes until killed; prints "T E" after each commit
    python session_writer.py fill DATA_DIR        writes until a StorageError; prints COMMITTED and ERROR
    python session_writer.py live DATA_DIR        writes 500 frames per line read on stdin, flushing

Frame i, its timestamp and its actions follow ``pattern`` so the tests can check every byte.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

from engine.session import SessionWriter, StorageError

ACTIONS = ("up", "down", "left")


def pattern(i0: int, k: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames i0..i0+k-1 (k, *shape) uint8, their timestamps (k,) int64 and actions (k, 3) uint8."""
    idx = np.arange(i0, i0 + k, dtype=np.int64)
    n = int(np.prod(shape))
    frames = ((idx[:, None] * 7 + np.arange(n)) % 251).astype(np.uint8).reshape(k, *shape)
    t_ns = 1_000_000_000 + idx * 16_666_667
    actions = ((idx[:, None] + np.arange(len(ACTIONS))) % 3 == 0).astype(np.uint8)
    return frames, t_ns, actions


def event_pattern(i0: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events i0..i0+n-1: t_ns, action, value."""
    idx = np.arange(i0, i0 + n, dtype=np.int64)
    return 1_000_000_000 + idx * 1_000_003, idx % len(ACTIONS), idx % 2


def batches() -> Iterator[int]:
    """Batch sizes that vary like a recorder draining its ring: 1 to 9."""
    while True:
        yield from (1, 4, 2, 9, 3, 1, 7, 5)


def open_writer(data_dir: str, shape: tuple[int, ...], chunk_frames: int | None = None) -> SessionWriter:
    return SessionWriter.create(
        data_dir, name="s", game="test", fps=60.0, frame_shape=shape, color="gray", actions=ACTIONS,
        resize=None, source={"backend": "x11", "region": [0, 0, shape[1], shape[0]], "window": None},
        chunk_frames=chunk_frames,
    )


def write_batch(w: SessionWriter, n: int, shape: tuple[int, ...]) -> int:
    buf = w.frames_buffer(n)
    frames, t_ns, actions = pattern(w.frames_written, len(buf), shape)
    buf[:] = frames
    w.commit(len(buf), t_ns, actions)
    return len(buf)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_rss(data_dir: str) -> None:
    """RSS after 1k and 100k frames, and the cost of frames_buffer + commit around both points."""
    shape = (120, 160)
    src = np.zeros((9, *shape), np.uint8)  # filled like a ring would: a copy into the mapped buffer
    t = np.zeros(9, np.int64)
    acts = np.zeros((9, len(ACTIONS)), np.uint8)
    costs: dict[str, list[int]] = {"1k": [], "100k": []}
    fills: dict[str, list[int]] = {"1k": [], "100k": []}
    rss: dict[int, int] = {}
    with open_writer(data_dir, shape) as w:
        sizes = batches()
        while w.frames_written < 100_000:
            n = min(next(sizes), 100_000 - w.frames_written)
            at = w.frames_written
            src[:n] = at % 251
            t0 = time.perf_counter_ns()
            buf = w.frames_buffer(n)
            t1 = time.perf_counter_ns()
            k = len(buf)
            buf[:] = src[:k]
            t2 = time.perf_counter_ns()
            t[:k] = 1 + at + np.arange(k)
            w.commit(k, t[:k], acts[:k])
            t3 = time.perf_counter_ns()
            window = "1k" if 1_000 <= at < 3_000 else "100k" if at >= 98_000 else ""
            if window:
                costs[window].append((t1 - t0 + t3 - t2) // k)
                fills[window].append((t2 - t1) // k)
            if w.frames_written // 1000 > at // 1000:
                rss[w.frames_written // 1000 * 1000] = rss_bytes()
    print(json.dumps({
        "rss_1k": rss[1000],
        "rss_100k": rss[100_000],
        "rss_max": max(v for f, v in rss.items() if f >= 1000),
        "rss_min": min(v for f, v in rss.items() if f >= 1000),
        "commit_ns_per_frame": {w: int(np.median(v)) for w, v in costs.items()},
        "fill_ns_per_frame": {w: int(np.median(v)) for w, v in fills.items()},
    }), flush=True)


def run_kill(data_dir: str) -> None:
    """Write until killed. After each commit print "T E" (committed frames and events)."""
    shape = (48, 64)
    w = open_writer(data_dir, shape, chunk_frames=64)
    flushed = False
    for events, n in enumerate(batches(), start=1):
        write_batch(w, n, shape)
        t = w.frames_written
        w.append_events(*event_pattern(events - 1, 1))
        if not flushed and t >= 300:
            # From here on the headers say a nonzero count and recovery must count past it.
            w.flush(force=True)
            flushed = True
            print("FLUSHED", t, flush=True)
        print(t, events, flush=True)
        time.sleep(0.002)


def run_fill(data_dir: str) -> None:
    """Write until the file size limit (set by the test) stops the writer."""
    shape = (48, 64)
    w = open_writer(data_dir, shape, chunk_frames=32)
    try:
        for n in batches():
            write_batch(w, n, shape)
    except StorageError as e:
        print("COMMITTED", w.frames_written, flush=True)
        print("ERROR", e, flush=True)
        try:
            w.append_events(np.array([1]), np.array([0]), np.array([1]))
        except StorageError as again:
            print("AGAIN", str(again) == str(e), flush=True)
        print("STATUS", w.close()["status"], flush=True)


def run_live(data_dir: str) -> None:
    """500 frames, flush, print "FLUSHED T"; again for every line on stdin; close at EOF."""
    shape = (48, 64)
    with open_writer(data_dir, shape, chunk_frames=50) as w:
        while True:
            goal = w.frames_written + 500
            sizes = batches()
            while w.frames_written < goal:
                write_batch(w, min(next(sizes), goal - w.frames_written), shape)
            w.flush(force=True)
            print("FLUSHED", w.frames_written, flush=True)
            if not sys.stdin.readline():
                break
    print("CLOSED", flush=True)


if __name__ == "__main__":
    {"rss": run_rss, "kill": run_kill, "fill": run_fill, "live": run_live}[sys.argv[1]](sys.argv[2])
