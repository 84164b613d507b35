"""Segmentation: the batch gather against memcpy and a Python loop, window index generation, Numba start-up.

Budget (DESIGN.md): the gather delivers frames at least at half of memcpy bandwidth and 100x a Python
loop. The session is a realistic one on disk (160x120 gray at 30 fps with pauses, read through its memory
maps); all three contenders copy the same windows into a preallocated batch in the same run, and the
reference for memcpy is np.copyto of one contiguous block of the batch's size.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from harness import per_call_ms

from engine.dataset import Windows, kernels
from engine.dataset import _reference as ref
from engine.session import SessionWriter

FPS = 30.0
SHAPE = (120, 160)  # (H, W): 160x120 gray, 19.2 kB a frame
WINDOW, BATCH = 20, 64  # 64 windows of 20 frames: 24.6 MB a batch


@pytest.fixture(scope="module")
def session_dir(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One session on disk: 24k frames (quick, 460 MB) or 60k (full, 1.15 GB), with a pause every
    ~5000 frames and a dropped frame every ~1000. Frame i holds a varied pattern and its number."""
    n = 24_000 if mode == "quick" else 60_000
    root = tmp_path_factory.mktemp("dataset_bench")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (97, *SHAPE), dtype=np.uint8)
    period = int(1e9 / FPS)
    steps = np.full(n, period, np.int64)
    steps[rng.integers(1, n, n // 1000)] = 2 * period
    steps[rng.integers(1, n, n // 5000)] = 300 * period
    ts = 1_000_000_000 + np.cumsum(steps)
    actions = (rng.random((n, 4)) < 0.3).astype(np.uint8)
    w = SessionWriter.create(root, name="bench", game="bench", fps=FPS, frame_shape=SHAPE, color="gray",
                             actions=("w", "a", "s", "d"), resize=None,
                             source={"backend": "synthetic", "region": [0, 0, 160, 120], "window": None})
    at = 0
    while at < n:
        buf = w.frames_buffer(n - at)
        k = len(buf)
        buf[:] = base[np.arange(at, at + k) % len(base)]
        buf[:, 0, :8] = np.arange(at, at + k, dtype=np.int64)[:, None].view(np.uint8)
        w.commit(k, ts[at : at + k], actions[at : at + k])
        at += k
    w.close()
    return root / "sessions" / "bench"


def _rotating(items: list[np.ndarray]) -> Callable[[], np.ndarray]:
    """Each call the next item, round and round: successive calls gather different windows."""
    cycle = itertools.cycle(items)
    return lambda: next(cycle)


def test_gather_throughput(benchmark, report, mode, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    rounds = 60 if mode == "quick" else 300
    w = Windows(session_dir, window=WINDOW)
    frames = np.asarray(w.sessions[0].frames)
    frames.sum(dtype=np.uint64)  # fault the mapping in once: every contender then reads from the page cache
    rng = np.random.default_rng(1)
    batches = [rng.choice(len(w), BATCH, replace=False) for _ in range(16)]
    sess, ends = w.index
    source = kernels.FrameSource([frames])
    out = np.empty((BATCH, WINDOW, *SHAPE), np.uint8)
    nbytes = out.nbytes
    next_batch = _rotating(batches)

    def engine(parallel: bool | None) -> Callable[[], object]:
        def run() -> object:
            idx = next_batch()
            return kernels.gather(source, sess[idx], ends[idx], WINDOW, 1, out, parallel=parallel)
        return run

    def python_loop() -> None:  # the loop people write: one NumPy slice copy per window
        idx = next_batch()
        for i, t in enumerate(ends[idx].tolist()):
            out[i] = frames[t - WINDOW + 1 : t + 1]

    def python_frame_loop() -> None:  # and its per-frame variant
        idx = next_batch()
        for i, t in enumerate(ends[idx].tolist()):
            for j in range(WINDOW):
                out[i, j] = frames[t - WINDOW + 1 + j]

    src = np.empty(nbytes, np.uint8)
    src[:] = 7
    dst = np.empty_like(src)

    # Right before fast: every contender delivers the same windows.
    idx0 = batches[0]
    want = ref.gather([frames], sess[idx0], ends[idx0], WINDOW, 1)
    for parallel in (False, True):
        assert np.array_equal(kernels.gather(source, sess[idx0], ends[idx0], WINDOW, 1, out, parallel=parallel), want)

    benchmark.group = f"gather {BATCH}x{WINDOW} frames 160x120 gray"
    benchmark.extra_info.update(batch_bytes=nbytes, path="auto")
    benchmark.pedantic(engine(None), rounds=rounds, warmup_rounds=5, iterations=1)

    def gbps(ms: np.ndarray) -> float:
        return nbytes / (float(np.median(ms)) * 1e-3) / 1e9

    def epochs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for epoch in itertools.count():
            yield from w.batches(BATCH, shuffle=True, seed=epoch, drop_last=True)

    batches_api = epochs()
    memcpy = gbps(per_call_ms(lambda: np.copyto(dst, src), rounds))
    api = gbps(per_call_ms(lambda: next(batches_api), rounds))
    par = gbps(per_call_ms(engine(True), rounds))
    ser = gbps(per_call_ms(engine(False), rounds))
    loop = gbps(per_call_ms(python_loop, rounds))
    frame_loop = gbps(per_call_ms(python_frame_loop, max(10, rounds // 3)))
    group = f"gather {BATCH}x{WINDOW} frames 160x120 gray ({nbytes / 1e6:.1f} MB)"
    report.add(group, "engine gather (parallel)", par, "GB/s", ratio=par / loop,
               note=f"{par / memcpy:.0%} of memcpy, {par / frame_loop:.0f}x the per-frame loop")
    report.add(group, "engine gather (serial)", ser, "GB/s", ratio=ser / loop,
               note=f"{ser / memcpy:.0%} of memcpy, {ser / frame_loop:.0f}x the per-frame loop")
    report.add(group, "Windows.batches (new array each)", api, "GB/s", ratio=api / loop,
               note=f"{api / memcpy:.0%} of memcpy; shuffled, labels too")
    report.add(group, "memcpy: np.copyto, one block", memcpy, "GB/s", note="the budget: engine >= 50% of this")
    report.add(group, "python loop of numpy slices", loop, "GB/s", ratio=1.0,
               note="one slice per window: the budget asks 100x this")
    report.add(group, "python loop, one frame per slice", frame_loop, "GB/s", ratio=frame_loop / loop)


def test_gather_float32_throughput(report, mode, session_dir: Path) -> None:  # type: ignore[no-untyped-def]
    rounds = 30 if mode == "quick" else 150
    w = Windows(session_dir, window=WINDOW)
    frames = np.asarray(w.sessions[0].frames)
    rng = np.random.default_rng(2)
    batches = [rng.choice(len(w), BATCH, replace=False) for _ in range(16)]
    out = np.empty((BATCH, WINDOW, *SHAPE), np.float32)
    _, ends = w.index
    next_batch = _rotating(batches)
    scale = np.float32(1 / 255)

    def engine(parallel: bool) -> Callable[[], object]:
        return lambda: w.gather(next_batch(), out=out, parallel=parallel)

    def python_loop() -> None:  # the usual "x = frames[...] / 255." per window, into the batch
        for i, t in enumerate(ends[next_batch()].tolist()):
            np.multiply(frames[t - WINDOW + 1 : t + 1], scale, out=out[i], dtype=np.float32)

    x, _ = w.gather(batches[0], float32=True)
    assert np.array_equal(x, kernels.scale_lut()[ref.gather([frames], np.zeros(BATCH, np.int64),
                                                           ends[batches[0]], WINDOW, 1)])
    pix = out.size  # pixels delivered per batch

    def gpix(ms: np.ndarray) -> float:
        return pix / (float(np.median(ms)) * 1e-3) / 1e9

    par, ser = gpix(per_call_ms(engine(True), rounds)), gpix(per_call_ms(engine(False), rounds))
    loop = gpix(per_call_ms(python_loop, rounds))
    group = f"gather to float32 /255 {BATCH}x{WINDOW} frames ({out.nbytes / 1e6:.0f} MB out)"
    report.add(group, "engine gather+scale (parallel)", par, "Gpixel/s", ratio=par / loop,
               note=f"{par * 4:.1f} GB/s of float32 written")
    report.add(group, "engine gather+scale (serial)", ser, "Gpixel/s", ratio=ser / loop)
    report.add(group, "python loop: slice * (1/255)", loop, "Gpixel/s", ratio=1.0)


def test_window_index_1m_frames(report, mode) -> None:  # type: ignore[no-untyped-def]
    rounds = 20 if mode == "quick" else 100
    n = 1_000_000
    rng = np.random.default_rng(3)
    period = int(1e9 / FPS)
    steps = period + rng.integers(-period // 10, period // 10, n)
    steps[rng.integers(1, n, 500)] = 2 * period  # dropped frames
    steps[rng.integers(1, n, 50)] = 900 * period  # pauses
    ts = np.cumsum(steps)
    gap = kernels.max_gap_ns(FPS)

    def engine(parallel: bool) -> Callable[[], np.ndarray]:
        return lambda: kernels.window_ends(kernels.segment_bounds(ts, gap, parallel=parallel), 20, 1, 0,
                                           parallel=parallel)

    def twin() -> np.ndarray:
        return ref.window_ends(ref.segment_bounds(ts, gap), 20, 1, 0)

    want = twin()
    assert np.array_equal(engine(False)(), want) and np.array_equal(engine(True)(), want)
    ser = float(np.median(per_call_ms(engine(False), rounds)))
    par = float(np.median(per_call_ms(engine(True), rounds)))
    ref_ms = float(np.median(per_call_ms(twin, max(5, rounds // 4))))
    group = f"window index, 1M frames (gaps + ends, {len(want)} windows)"
    report.add(group, "engine kernels (parallel)", par, "ms", ratio=ref_ms / par)
    report.add(group, "engine kernels (serial)", ser, "ms", ratio=ref_ms / ser)
    report.add(group, "numpy twin (vectorised per run)", ref_ms, "ms", ratio=1.0)


def test_numba_compile_and_cache_load(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Start-up of a fresh process that calls every kernel once: cold (compiling into an empty cache) and
    warm (loading the machine code compiled by the first run)."""
    script = textwrap.dedent("""
        import time
        t0 = time.perf_counter()
        import numpy as np
        from engine.dataset import kernels
        t1 = time.perf_counter()
        ts = np.cumsum(np.full(100, 33_333_333, np.int64))
        for parallel in (False, True):
            b = kernels.segment_bounds(ts, 50_000_000, parallel=parallel)
            e = kernels.window_ends(b, 5, 1, 0, parallel=parallel)
            src = kernels.FrameSource([np.zeros((100, 4, 4), np.uint8)])
            for dtype in (np.uint8, np.float32):
                kernels.gather(src, np.zeros(3, np.int64), e[:3], 5, 1, np.empty((3, 5, 4, 4), dtype),
                               parallel=parallel)
        kernels.balance_select(np.zeros(4, np.int64), np.array([2]), np.random.rand(4), np.zeros(0))
        print(t1 - t0, time.perf_counter() - t1)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    times = []
    for _ in range(2):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        imp, first = (float(v) for v in done.stdout.split())
        times.append((wall, imp, first))
    assert any((tmp_path / "numba_cache").rglob("*.nbi"))  # the first run did write a cache
    (cold, cold_imp, cold_first), (warm, warm_imp, warm_first) = times
    group = "numba start-up: fresh process, every kernel once"
    report.add(group, "cold: compile into empty cache", cold_first, "s",
               note=f"process {cold:.1f} s, import {cold_imp:.2f} s")
    report.add(group, "warm: load from cache", warm_first, "s", ratio=cold_first / warm_first,
               note=f"process {warm:.1f} s, import {warm_imp:.2f} s")
