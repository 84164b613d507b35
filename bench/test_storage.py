"""Storage against session length: the cost per frame and the memory of each recorder's storage lines, at
a short and a long session, each run in a fresh subprocess so its RSS starts clean (issues #3 and #6).

The naive loop's np.save of the whole list every 500 frames writes the whole session again at every save,
so its cost per frame grows with the session (the total is quadratic) and its memory holds every frame;
the pickle variant keeps every frame in memory until one dump at the end; the plain-Python pipeline and the
engine's SessionWriter write each frame once into a mapped chunk, so both should stay flat.

Only storage is measured: each subprocess is fed real game-like frames (the bench's scene generator,
800x600 -> 160x120 gray), each one a fresh array as a grab would make it, with the key states that the
loops poll (the engine gets the same key changes as input events, as its listener delivers them). The time
to make the frames is measured alone in the same process and subtracted. Run this file directly to probe
one implementation: ``python bench/test_storage.py engine /tmp/out 1000 20000``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from baselines import naive_pickle, naive_recorder, python_pipeline
from harness import game_scene, ratio

from engine.record.labeler import Labeler
from engine.session import Session, SessionWriter

HERE = Path(__file__).resolve().parent
IMPLS = {
    "naive": "naive: list + np.save/500",
    "pickle": "naive: dict pickled at the end",
    "python": "python: np.memmap chunks",
    "engine": "engine: SessionWriter",
    "engine_noprefault": "engine: SessionWriter, chunks not prefaulted",
}
KEYS = ["a", "w", "d"]
SHAPE = (120, 160)
POOL = 64  # distinct frames, cycled


def _pool() -> np.ndarray:
    scene = game_scene(1080, 1920, seed=5)
    out = np.empty((POOL, *SHAPE), np.uint8)
    for i in range(POOL):
        x, y = (i * 37) % 1100, (i * 23) % 460
        gray = cv2.cvtColor(scene[y : y + 600, x : x + 800], cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(gray, SHAPE[::-1], interpolation=cv2.INTER_AREA)
    return out


def _frames(pool: np.ndarray, n: int) -> Iterator[np.ndarray]:
    for i in range(n):
        yield pool[i % POOL].copy()  # a new array per frame, like each grab+convert


def _outputs(n: int) -> Iterator[list[int]]:
    for i in range(n):
        out = [0, 0, 0]
        k = (i // 25) % 4
        if k < 3:
            out[k] = 1
        yield out


def _engine_store(frames: Iterator[np.ndarray], outputs: Iterator[list[int]], out: Path, prefault: bool = True) -> int:
    """The engine's store stage as Recorder._drain does it at 60 fps: one frame per drain, labels from
    the key events that changed since the previous frame."""
    source = {"backend": "bench", "region": [0, 0, 800, 600], "window": None}
    writer = SessionWriter.create(out, name="probe", game="bench", fps=60.0, frame_shape=SHAPE, color="gray",
                                  actions=KEYS, resize=SHAPE[::-1], source=source, prefault=prefault)
    labeler = Labeler(len(KEYS))
    prev = np.zeros(len(KEYS), np.uint8)
    period = 16_666_667
    for i, (frame, output) in enumerate(zip(frames, outputs, strict=True)):
        t = np.array([(i + 1) * period], np.int64)
        state = np.asarray(output, np.uint8)
        changed = np.flatnonzero(state != prev)
        if len(changed):
            ev = (np.full(len(changed), t[0] - 1, np.int64), changed.astype(np.int16), state[changed].astype(np.int8))
            labeler.add_events(*ev)
            writer.append_events(*ev)
            prev = state
        buf = writer.frames_buffer(1)
        buf[0] = frame
        writer.commit(1, t, labeler.label(t))
    return int(writer.close()["frames"])


def _store(impl: str, frames: Iterator[np.ndarray], outputs: Iterator[list[int]], out: Path) -> Any:
    if impl == "naive":
        return naive_recorder.store_frames(frames, outputs, out / "training_data.npy")
    if impl == "pickle":
        return naive_pickle.store_frames(frames, outputs, out / "training_data.pickle")
    if impl == "python":
        return python_pipeline.store_frames(frames, outputs, out / "python", SHAPE, len(KEYS))
    return _engine_store(frames, outputs, out, prefault=impl != "engine_noprefault")


def _load(impl: str, out: Path) -> tuple[np.ndarray, np.ndarray]:
    if impl == "naive":
        return naive_recorder.load(out / "training_data.npy")
    if impl == "pickle":
        return naive_pickle.load(out / "training_data.pickle")
    if impl == "python":
        frames, _, keys = python_pipeline.load(out / "python")
        return frames, keys
    ses = Session.open(out / "sessions" / "probe")
    return ses.frames[:], ses.actions[:]


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak since reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak() -> None:
    """Restart the peak-RSS count (VmHWM) from the current RSS (proc(5), /proc/pid/clear_refs, value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def probe(impl: str, n: int, out: Path) -> dict[str, float]:
    """Store n frames with ``impl`` into ``out``; check what was stored; return the numbers."""
    out.mkdir(parents=True, exist_ok=True)
    pool = _pool()
    list(_frames(pool, 200))  # warm-up
    t0 = time.perf_counter()
    for _ in zip(_frames(pool, n), _outputs(n), strict=True):
        pass
    source_s = time.perf_counter() - t0
    _reset_peak()
    rss0 = _status_mb("VmRSS")
    t0 = time.perf_counter()
    kept = _store(impl, _frames(pool, n), _outputs(n), out)
    store_s = time.perf_counter() - t0 - source_s
    rss1 = _status_mb("VmRSS")  # while what the recorder returned (the naive loops' lists) is still alive
    peak = _status_mb("VmHWM")
    del kept
    disk = sum(f.stat().st_blocks * 512 for f in out.rglob("*") if f.is_file())
    frames, keys = _load(impl, out)
    assert len(frames) == len(keys) == n, f"{impl} stored {len(frames)} frames of {n}"
    sample = np.arange(0, n, 97)
    assert (frames[sample] == pool[sample % POOL]).all(), f"{impl} stored other frames than it was given"
    want = np.array(list(_outputs(n)), np.uint8)
    assert (np.asarray(keys, np.uint8)[sample] == want[sample]).all(), f"{impl} stored other key states"
    return {"frames": n, "store_ms_per_frame": store_s / n * 1e3, "source_ms_per_frame": source_s / n * 1e3,
            "rss_growth_mb": rss1 - rss0, "peak_growth_mb": peak - rss0, "disk_mb": disk / 2**20}


def run_probes(impl: str, lengths: tuple[int, ...], out: Path) -> list[dict[str, float]]:
    """:func:`probe` for each session length, shortest first, in one fresh interpreter per implementation
    (RSS starts clean; each length is measured from the RSS it starts at, in its own directory)."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, str(Path(__file__)), impl, str(out), *map(str, lengths)],
                          capture_output=True, text=True, timeout=1800, cwd=HERE.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


SIZES = {  # session lengths per implementation (the naive np.save is quadratic: it gets no 100k)
    "quick": {"naive": (1000, 5000), "pickle": (1000, 5000), "python": (1000, 5000), "engine": (1000, 5000),
              "engine_noprefault": (1000, 5000)},
    "full": {"naive": (1000, 20_000), "pickle": (1000, 20_000), "python": (1000, 20_000, 100_000),
             "engine": (1000, 20_000, 100_000), "engine_noprefault": (1000, 20_000, 100_000)},
}


# A flat writer's RSS growth is 0 give or take the allocator's noise, so a plain ratio against it is undefined
# or meaningless; growth below this is taken as this much, for the ratio only (the value column is as measured).
RSS_FLOOR_MB = 1.0


def _rss_ratio(engine_mb: float | None, reference_mb: float | None) -> float | None:
    if engine_mb is None or reference_mb is None:  # one of them was not run at this length
        return None
    return ratio(max(engine_mb, RSS_FLOOR_MB), max(reference_mb, RSS_FLOOR_MB))


def test_storage_cost_against_session_length(benchmark, report, mode, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sizes = SIZES[mode]
    results: dict[tuple[str, int], dict[str, float]] = {}
    for impl, lengths in sizes.items():
        out = tmp_path / impl
        if impl == "engine":
            benchmark.group = f"store 160x120 gray: engine SessionWriter, {lengths} frames in a subprocess"
            benchmark.extra_info.update(frames=list(lengths), frame_shape=list(SHAPE))
            got = benchmark.pedantic(run_probes, args=(impl, lengths, out), rounds=1, iterations=1)
        else:
            got = run_probes(impl, lengths, out)
        results.update({(impl, n): r for n, r in zip(lengths, got, strict=True)})
        shutil.rmtree(out)

    all_n = sorted({n for lengths in sizes.values() for n in lengths})
    for n in all_n:
        group = f"store 160x120 gray: ms/frame, {n // 1000}k-frame session"
        eng = results.get(("engine", n), {}).get("store_ms_per_frame", 0.0)
        py = results.get(("python", n), {}).get("store_ms_per_frame", 0.0)
        for impl, name in IMPLS.items():
            if (impl, n) not in results:
                continue
            r = results[impl, n]
            first = results[impl, sizes[impl][0]]["store_ms_per_frame"]
            growth = f"{r['store_ms_per_frame'] / first:.1f}x its 1k cost; " if n != sizes[impl][0] else ""
            # The prefault row's ratio is the engine's against its own store without prefault.
            ref = py if impl == "engine" else r["store_ms_per_frame"]
            rat = 1.0 if impl == "python" else ratio(eng, ref)
            report.add(group, name, r["store_ms_per_frame"], "ms/frame", ratio=rat,
                       note=f"{growth}{r['disk_mb']:.0f} MB on disk", frames=n)
    for n in all_n[1:]:
        group = f"store 160x120 gray: RSS growth over {n // 1000}k frames"
        rss = {impl: results[impl, n]["rss_growth_mb"] for impl in IMPLS if (impl, n) in results}
        for impl, name in IMPLS.items():
            if impl not in rss:
                continue
            r = results[impl, n]
            against = "python" if impl == "engine" else impl
            rat = 1.0 if impl == "python" else _rss_ratio(rss.get("engine"), rss.get(against))
            report.add(group, name, r["rss_growth_mb"], "MB", ratio=rat,
                       note=f"peak +{r['peak_growth_mb']:.0f} MB; ratio: growth under {RSS_FLOOR_MB:g} MB "
                            f"counted as {RSS_FLOOR_MB:g} MB", frames=n)


if __name__ == "__main__":  # the subprocess side of run_probes (its directory, bench/, is on sys.path)
    impl, where = sys.argv[1], Path(sys.argv[2])
    found = []
    for n in map(int, sys.argv[3:]):
        found.append(probe(impl, n, where / str(n)))
        shutil.rmtree(where / str(n))
    print(json.dumps(found))
