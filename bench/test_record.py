"""Recording side by side: the naive loop users start from, the best plain-Python pipeline and the engine's
Recorder, on the same screen in the same run (issue #6; issue #3's CPU per frame and highest fps).

Each case records a region of the bench display (a game-like image) resized and converted:

- the naive loop (``baselines/naive_recorder.py``, 800x600 -> 160x120 gray only, its own case) runs under
  line_profiler, whose per-line table is printed and saved as the baseline, and once more without the
  profiler for its CPU per frame and free-running rate;
- the plain-Python pipeline (``baselines/python_pipeline.py``) and the engine (``engine.record.Recorder``
  with its real capture thread, XI2 input listener and session writer) record at 60 fps for the
  per-stage times and the CPU per frame, then ramp the target rate (doubling after a pass, halving
  after a failure; bisecting in full mode) to find the highest one sustained with zero drops.

Stage times: grab and convert are taken around the calls in each loop (the engine's by its capture thread
itself); store is the time to put a frame with its labels into the file (the engine's writer thread,
off the capture path); labels is the per-frame key poll of the Python loops (the engine labels from
input events inside store); pacing is how late each tick woke (p50 among the stages, p99 in a group of
its own; the wait itself is idle time, not a cost). CPU per frame is process CPU time (all
threads) over frames, taken between snapshots during the run so start-up is not counted; the X server's
CPU (it does the screen copies for mss and the engine alike) is noted beside it.

Checks (never timings): every stored frame is the screen's content converted (exactly for the engine,
within OpenCV's rounding for the Python loops), frame counts match what each recorder reports, and the
keys a helper taps through XTest during the 60 fps runs show up in the labels.

A last benchmark records the demo game itself (its window, driven by its scripted XTest driver) with the
Python pipeline and the engine: every stored frame must carry a readable frame stamp of the game, in
order, and the driver's keys must be in the labels; how many of the game's frames reached the file is
reported.
"""

from __future__ import annotations

import io
import linecache
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from baselines import naive_pickle, naive_recorder
from baselines.python_pipeline import PythonRecorder, RunStats
from baselines.python_pipeline import load as load_pipeline
from harness import KeyTapper, cpu_seconds, ratio, steady_cpu_ms
from line_profiler import LineProfiler

from engine import _native
from engine.capture import open_source
from engine.demo import WINDOW_TITLE
from engine.demo.pattern import decode
from engine.record import RecordConfig, Recorder
from engine.session import Session

KEYS = ["a", "w", "d"]
REGION_800 = (560, 240, 800, 600)
CASES: dict[str, tuple[tuple[int, int, int, int], tuple[int, int], str]] = {
    "800x600->160x120 gray": (REGION_800, (160, 120), "gray"),
    "1920x1080->256x256 rgb": ((0, 0, 1920, 1080), (256, 256), "rgb"),
}
FIXED_FPS = 60.0
RAMP_FLOOR = 15.0
RAMP_CAP = 960.0  # engine-record accepts up to 1000 fps
FIXED_S = {"smoke": 1.0, "quick": 2.0, "full": 10.0}  # the 60 fps run (smoke: --bench-smoke)
STEP_S = {"smoke": 0.5, "quick": 1.0, "full": 3.0}  # each ramp step


@dataclass
class Measured:
    """One implementation's numbers for one case (ms per frame unless named otherwise)."""

    name: str
    grab: float = float("nan")
    convert: float = float("nan")
    labels: float = float("nan")
    store: float = float("nan")
    lateness_p50: float = float("nan")
    lateness_p99: float = float("nan")
    cpu: float = float("nan")
    xserver_cpu: float = float("nan")
    best_fps: float = 0.0
    best_note: str = ""
    ramp: list[tuple[float, int, int]] = field(default_factory=list)  # (target fps, frames, dropped)


# ---------------------------------------------------------------------------------------------------
# The engine: engine.record.Recorder, its stages read from outside


class MeasuredRecorder(Recorder):
    """engine.record.Recorder, unchanged, with its stages read from outside: the capture thread's own
    stats (grab, convert, lateness), the time of each writer drain (queue -> session with labels), and
    process CPU snapshots at every status update (twice a second)."""

    def __init__(self, config: RecordConfig) -> None:
        super().__init__(config, out=io.StringIO())
        self.stream: Any = None
        self.store_ns = 0
        self.cpu: list[tuple[float, int]] = []

    def _open(self) -> Any:
        parts = super()._open()
        self.stream = parts[1]
        return parts

    def _drain(self, *args: Any) -> int:
        t0 = time.perf_counter_ns()
        n = super()._drain(*args)
        self.store_ns += time.perf_counter_ns() - t0
        return n

    def _status_text(self, writer: Any, stream: Any, paused: bool, elapsed: float) -> str:
        self.cpu.append((time.process_time(), writer.frames_written))
        return super()._status_text(writer, stream, paused, elapsed)


@dataclass
class EngineRun:
    frames: int
    dropped: int
    stats: dict[str, int]
    lateness_ns: np.ndarray
    store_ns: int
    cpu: list[tuple[float, int]]
    xserver_cpu_s: float
    session: Path


def engine_record(xvfb: Any, tmp: Path, region: tuple[int, int, int, int], size: tuple[int, int], color: str,
                  fps: float, duration: float) -> EngineRun:
    cfg = RecordConfig(fps=fps, region=region, size=size, color=color, actions=list(KEYS), game="bench",  # type: ignore[arg-type]
                       data_dir=tmp, duration=duration, countdown=0, display=xvfb.display)
    rec = MeasuredRecorder(cfg)
    x0 = cpu_seconds(xvfb.proc.pid)
    summary = rec.run(install_signals=False, on_status=lambda _text: None)
    x1 = cpu_seconds(xvfb.proc.pid)
    return EngineRun(summary.frames, summary.dropped, rec.stream.stats(), rec.stream.lateness_log(), rec.store_ns,
                     rec.cpu, x1 - x0, summary.path)


def check_engine_session(run: EngineRun, expected: np.ndarray, *, labels: bool) -> None:
    """The session holds exactly the frames the recorder counted, each one the screen converted."""
    ses = Session.open(run.session)
    assert ses.meta["status"] == "complete" and ses.meta["frames"] == run.frames == len(ses.frames) > 0
    assert run.stats["frames"] == run.frames  # every captured frame reached the file
    frames = ses.frames[:]
    assert (frames == expected).all(axis=tuple(range(1, frames.ndim))).all()
    assert (np.diff(ses.timestamps[:]) > 0).all()
    if labels:
        assert ses.actions[:].any(), "keys tapped during the run are missing from the labels"


# ---------------------------------------------------------------------------------------------------
# The plain-Python pipeline


def python_record(xvfb: Any, tmp: Path, region: tuple[int, int, int, int], size: tuple[int, int], color: str,
                  fps: float, duration: float) -> tuple[RunStats, float, Path]:
    out = tmp / f"python-{fps:g}-{time.monotonic_ns()}"
    rec = PythonRecorder(region, size, color, out, keys=KEYS, display=xvfb.display)  # type: ignore[arg-type]
    try:
        scratch = np.empty(rec.frame_shape, np.uint8)
        for _ in range(5):  # warm-up: first grabs map the SHM segment, OpenCV sets up its tables
            rec.grab_convert(scratch)
        x0 = cpu_seconds(xvfb.proc.pid)
        st = rec.run(fps, duration)
        x1 = cpu_seconds(xvfb.proc.pid)
    finally:
        rec.close()
    return st, x1 - x0, out


def check_python_files(st: RunStats, out: Path, expected: np.ndarray, *, labels: bool) -> None:
    frames, t, keys = load_pipeline(out)
    assert len(frames) == len(t) == len(keys) == st.frames > 0
    assert (np.diff(t) > 0).all()
    diff = np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max()
    assert diff <= 1, f"the Python pipeline's frames differ from the screen by {diff}"
    if labels:
        assert keys.any(), "keys tapped during the run are missing from the polled labels"


# ---------------------------------------------------------------------------------------------------
# The naive loops, under line_profiler

_STAGES = {  # which line of the naive loops does which stage
    "grab": ("sct.grab",),
    "convert": ("cv2.",),
    "labels": ("system_held", "pressed[", "output = [", "int(p)"),
    "store": ("append(", "np.save", "% save_every", "pickle.dump", "open(file_name"),
}


def line_profile(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, dict[str, float], Any]:
    """Run func under line_profiler: (the per-line table, seconds per stage, func's result). The stages are
    those of _STAGES, plus "saves" (the np.save/pickle.dump line alone) and "save_hits"."""
    lp = LineProfiler()
    lp.add_function(func)
    result = lp.runcall(func, *args, **kwargs)
    buf = io.StringIO()
    lp.print_stats(stream=buf, output_unit=1e-6)
    stats = lp.get_stats()
    stages = dict.fromkeys((*_STAGES, "saves", "save_hits"), 0.0)
    for (filename, _, _), lines in stats.timings.items():
        for lineno, hits, total in lines:
            source = linecache.getline(filename, lineno)
            if "np.save(" in source or "pickle.dump(" in source:
                stages["saves"] += total * stats.unit
                stages["save_hits"] += hits
            for stage, marks in _STAGES.items():
                if any(m in source for m in marks):
                    stages[stage] += total * stats.unit
                    break
    return buf.getvalue(), stages, result


def screen_reference(screen: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """What the naive loop should store for this screen: its own OpenCV calls on the true pixels."""
    x, y, w, h = region
    bgra = np.zeros((h, w, 4), np.uint8)
    bgra[..., :3] = screen[y : y + h, x : x + w, ::-1]
    return cv2.resize(cv2.cvtColor(bgra, cv2.COLOR_BGR2GRAY), (160, 120))


def measure_naive(report: Any, xvfb: Any, screen: np.ndarray, tmp: Path, n: int) -> Measured:
    expected = screen_reference(screen, REGION_800)
    m = Measured("naive: list + np.save/500")
    stall_ms = 0.0
    with KeyTapper(xvfb.display, KEYS):
        for module, what, suffix in ((naive_recorder, "np.save of the whole list every 500 frames", ".npy"),
                                     (naive_pickle, "dict of lists pickled at the end", ".pickle")):
            path = tmp / f"{module.__name__.rsplit('.', 1)[-1]}{suffix}"
            text, stages, _ = line_profile(module.record, n, REGION_800, path, keys=KEYS, display=xvfb.display)
            report.add_text(f"line_profiler: {module.__name__}.record, {n} frames 800x600 -> 160x120 gray ({what})",
                            text)
            frames, keys = module.load(path)
            assert frames.shape == (n, 120, 160) and len(keys) == n
            assert (frames == expected).all(axis=(1, 2)).all(), "the naive loop stored something else"
            assert np.asarray(keys).any(), "keys tapped during the run are missing from the naive labels"
            if module is naive_recorder:
                m.grab, m.convert, m.labels, m.store = (stages[s] / n * 1e3 for s in ("grab", "convert", "labels",
                                                                                     "store"))
                stall_ms = stages["saves"] / max(1, stages["save_hits"]) * 1e3
        # Without the profiler: what the loop costs and how fast it runs on its own.
        path = tmp / "naive_plain.npy"
        c0, t0 = time.process_time(), time.perf_counter()
        data = naive_recorder.record(n, REGION_800, path, keys=KEYS, display=xvfb.display)
        c1, t1 = time.process_time(), time.perf_counter()
    assert len(data) == n
    m.cpu = (c1 - c0) / n * 1e3
    frame_ms = (t1 - t0) / n * 1e3
    # Unpaced, so no tick is ever "dropped"; but nothing is captured while np.save runs, so the rate it
    # holds without a gap is bounded by one frame plus one save.
    m.best_fps = 1e3 / (frame_ms + stall_ms)
    m.best_note = (f"free-running {1e3 / frame_ms:.0f} fps on average, but each np.save (every 500 frames, "
                   f"growing with the list) stalls {stall_ms:.0f} ms")
    return m


# ---------------------------------------------------------------------------------------------------
# The ramp


def passes(frames: int, dropped: int, fps: float, duration: float) -> bool:
    """Sustained: no tick dropped and (nearly) every tick's frame stored."""
    return dropped == 0 and frames >= 0.99 * round(fps * duration) - 1


def ramp(mode: str, steps: dict[str, Callable[[float], tuple[int, int]]], first: dict[str, tuple[int, int]],
         ) -> dict[str, tuple[float, list[tuple[float, int, int]]]]:
    """Highest target fps each implementation sustains, starting from its FIXED_FPS run (``first``: its
    frames and drops): doubling up to RAMP_CAP after a pass, halving down to RAMP_FLOOR after a failure, then in full
    mode two bisection steps between the highest rate passed and the lowest failed. The implementations
    take turns, so they see the machine in the same state."""
    passed = {k: passes(*first[k], FIXED_FPS, FIXED_S[mode]) for k in steps}
    best = {k: (FIXED_FPS if ok else 0.0) for k, ok in passed.items()}
    failed = {k: (None if ok else FIXED_FPS) for k, ok in passed.items()}
    log: dict[str, list[tuple[float, int, int]]] = {k: [(FIXED_FPS, *first[k])] for k in steps}
    rate = {k: (FIXED_FPS * 2 if ok else FIXED_FPS / 2) for k, ok in passed.items()}
    going_up = dict(passed)
    active = set(steps)
    while active:
        for name, step in steps.items():
            if name not in active:
                continue
            fps = rate[name]
            if not RAMP_FLOOR <= fps <= RAMP_CAP:
                active.discard(name)
                continue
            frames, dropped = step(fps)
            log[name].append((fps, frames, dropped))
            ok = passes(frames, dropped, fps, STEP_S[mode])
            if ok:
                best[name] = max(best[name], fps)
            else:
                failed[name] = fps if failed[name] is None else min(failed[name], fps)
            if ok != going_up[name]:  # the first pass going down, or the first failure going up
                active.discard(name)
            rate[name] = fps * 2 if going_up[name] else fps / 2
    if mode == "full":
        for name, step in steps.items():
            lo, hi = best[name], failed[name]
            for _ in range(2):
                if hi is None or lo <= 0:
                    break
                mid = round((lo + hi) / 2)
                frames, dropped = step(mid)
                log[name].append((mid, frames, dropped))
                if passes(frames, dropped, mid, STEP_S[mode]):
                    lo = mid
                else:
                    hi = mid
            best[name] = lo
    return {k: (best[k], log[k]) for k in steps}


# ---------------------------------------------------------------------------------------------------
# The benchmark


@pytest.mark.parametrize("case", list(CASES))
def test_record_side_by_side(benchmark, report, mode, smoke, xvfb, screen_content, tmp_path, case: str) -> None:  # type: ignore[no-untyped-def]
    region, size, color = CASES[case]
    timing = "smoke" if smoke else mode
    grabber = _native.X11Grabber(region=region)
    expected = _native.convert_resize(grabber.grab(), size[0], size[1], color)
    del grabber
    results: list[Measured] = []
    if case.startswith("800x600"):
        results.append(measure_naive(report, xvfb, screen_content, tmp_path,
                                     500 if smoke else 1000 if mode == "quick" else 5000))  # whole saves of 500

    # 60 fps: stages and CPU, with keys tapped so the labels are real.
    fixed = FIXED_S[timing]
    with KeyTapper(xvfb.display, KEYS):
        st, py_x, out = python_record(xvfb, tmp_path, region, size, color, FIXED_FPS, fixed)
        check_python_files(st, out, expected, labels=True)
        shutil.rmtree(out)

        benchmark.group = f"record {case} @{FIXED_FPS:g} fps for {fixed:g} s (engine Recorder)"
        benchmark.extra_info.update(region=list(region), size=list(size), color=color, fps=FIXED_FPS,
                                    backend="x11/xshm")
        eng = benchmark.pedantic(engine_record, args=(xvfb, tmp_path, region, size, color, FIXED_FPS, fixed),
                                 rounds=1, iterations=1)
        check_engine_session(eng, expected, labels=True)
        shutil.rmtree(eng.session)

    py = Measured("python: mss+opencv+np.memmap")
    py.grab, py.convert = st.per_frame_ms(st.grab_ns), st.per_frame_ms(st.convert_ns)
    py.labels, py.store = st.per_frame_ms(st.labels_ns), st.per_frame_ms(st.store_ns)
    py.lateness_p50, py.lateness_p99 = (float(np.percentile(st.lateness_ns, q)) / 1e6 for q in (50, 99))
    py.cpu = steady_cpu_ms(st.cpu)
    py.xserver_cpu = py_x / max(1, st.frames) * 1e3
    en = Measured("engine: Recorder")
    s = eng.stats
    en.grab, en.convert = s["grab_ns_total"] / s["frames"] / 1e6, s["convert_ns_total"] / s["frames"] / 1e6
    en.labels, en.store = 0.0, eng.store_ns / eng.frames / 1e6
    en.lateness_p50, en.lateness_p99 = (float(np.percentile(eng.lateness_ns, q)) / 1e6 for q in (50, 99))
    en.cpu = steady_cpu_ms(eng.cpu)
    en.xserver_cpu = eng.xserver_cpu_s / max(1, eng.frames) * 1e3

    # The ramp: highest rate with zero drops.
    step_s = STEP_S[timing]

    def py_step(fps: float) -> tuple[int, int]:
        st, _, out = python_record(xvfb, tmp_path, region, size, color, fps, step_s)
        check_python_files(st, out, expected, labels=False)
        shutil.rmtree(out)
        py_lateness[fps] = float(np.percentile(st.lateness_ns, 99)) / 1e6
        return st.frames, st.dropped

    def engine_step(fps: float) -> tuple[int, int]:
        run = engine_record(xvfb, tmp_path, region, size, color, fps, step_s)
        check_engine_session(run, expected, labels=False)
        shutil.rmtree(run.session)
        en_lateness[fps] = float(np.percentile(run.lateness_ns, 99)) / 1e6
        return run.frames, run.dropped

    py_lateness: dict[float, float] = {FIXED_FPS: py.lateness_p99}
    en_lateness: dict[float, float] = {FIXED_FPS: en.lateness_p99}
    found = ramp(timing, {"python": py_step, "engine": engine_step},
                 {"python": (st.frames, st.dropped), "engine": (eng.frames, eng.dropped)})
    for m, key, lat in ((py, "python", py_lateness), (en, "engine", en_lateness)):
        m.best_fps, m.ramp = found[key]
        capped = " (the cap of the search)" if m.best_fps >= RAMP_CAP else ""
        tried = ", ".join(f"{f:g}:{d}" for f, _, d in m.ramp)
        there = f"lateness p99 {lat[m.best_fps]:.2f} ms there{capped}; " if m.best_fps in lat else ""
        m.best_note = f"{there}drops by target fps: {tried}"
    results += [py, en]
    add_rows(report, case, results)


def add_rows(report: Any, case: str, results: list[Measured]) -> None:
    """One group per stage and per figure; the engine row carries engine vs the Python pipeline (1.0), the
    naive loop's row the engine vs the naive loop (harness.Row.ratio)."""
    py, en = results[-2], results[-1]
    naive = results[0] if len(results) == 3 else None
    stage_notes = {
        "grab": {"naive": "np.array(sct.grab(...))", "python": "mss, buffer viewed in place",
                 "engine": "MIT-SHM, native capture thread"},
        "convert": {"naive": "cvtColor + resize (linear)", "python": "cvtColor + INTER_AREA into the memmap",
                    "engine": "fused convert+area resize into the ring slot"},
        "labels": {"naive": "XQueryKeymap poll per frame", "python": "XQueryKeymap poll per frame",
                   "engine": "XI2 event thread; labelled inside store"},
        "store": {"naive": "list append + np.save every 500",
                  "python": "timestamp + labels rows (the frame went in at convert)",
                  "engine": "writer wall time: frame copy ring -> memmap (first touch of its pages), labels"},
    }
    for stage in ("grab", "convert", "labels", "store"):
        group = f"rec {case}: {stage}"
        for m in results:
            key = m.name.split(":")[0]
            value = getattr(m, stage)
            r = 1.0 if m is py else ratio(getattr(en, stage), getattr(py if m is en else m, stage))
            # The naive loop's stages come from its line_profiler run: the profiler's own cost is in them.
            note = stage_notes[stage][key] + ("; timed under line_profiler" if m is naive else "")
            report.add(group, m.name, value, "ms/frame", ratio=r, note=note)
    # The pacing stage: the time spent waiting for a tick is idle (it is the frame period minus the work), so
    # what the stage list shows is what the measurements have: how late each tick woke (the capture thread's
    # own log for the engine, wake-up minus deadline for the Python loop), p50 here and p99 in the next group.
    # The naive loop is unpaced (it runs as fast as it goes), so it has no row.
    group = f"rec {case}: pacing, tick lateness p50"
    report.add(group, py.name, py.lateness_p50, "ms late", ratio=1.0,
               note=f"time.sleep to deadlines @{FIXED_FPS:g} fps; wake-up minus deadline")
    report.add(group, en.name, en.lateness_p50, "ms late", ratio=ratio(en.lateness_p50, py.lateness_p50),
               note=f"native pacer (sleep, no spin) @{FIXED_FPS:g} fps; the capture thread's lateness log")
    group = f"rec {case}: tick lateness p99 @{FIXED_FPS:g}fps"
    report.add(group, py.name, py.lateness_p99, "ms", ratio=1.0, note=f"time.sleep; p50 {py.lateness_p50:.3f} ms")
    report.add(group, en.name, en.lateness_p99, "ms", ratio=ratio(en.lateness_p99, py.lateness_p99),
               note=f"engine pacer; p50 {en.lateness_p50:.3f} ms")
    group = f"rec {case}: CPU per frame"
    if naive is not None:
        report.add(group, naive.name, naive.cpu, "ms/frame", ratio=ratio(en.cpu, naive.cpu),
                   note="unpaced, without the profiler")
    report.add(group, py.name, py.cpu, "ms/frame", ratio=1.0,
               note=f"@{FIXED_FPS:g} fps; X server {py.xserver_cpu:.3f} ms/frame more")
    report.add(group, en.name, en.cpu, "ms/frame", ratio=ratio(en.cpu, py.cpu),
               note=f"@{FIXED_FPS:g} fps; X server {en.xserver_cpu:.3f} ms/frame more; target 3x")
    group = f"rec {case}: max fps, 0 drops"
    if naive is not None:
        report.add(group, naive.name, naive.best_fps, "fps",
                   ratio=ratio(en.best_fps, naive.best_fps, higher_is_better=True), note=naive.best_note)
    report.add(group, py.name, py.best_fps, "fps", ratio=1.0, note=py.best_note)
    target = "; target 240" if case.startswith("800x600") else ""  # issue #3
    report.add(group, en.name, en.best_fps, "fps", ratio=ratio(en.best_fps, py.best_fps, higher_is_better=True),
               note=en.best_note + target)


DEMO_ACTIONS = ["left", "right", "up"]
DEMO_SECONDS = {"quick": 2.0, "full": 10.0}


def stamps(frames: np.ndarray) -> np.ndarray:
    """The game frame number stamped in each recorded frame (160x120 from the 320x240 window: scale 2)."""
    found = [decode(np.asarray(f), 2.0) for f in frames]
    assert all(n is not None for n in found), "a recorded frame without a readable game stamp"
    numbers = np.array(found, np.int64)
    assert (np.diff(numbers) >= 0).all(), "recorded game frames out of order"
    return numbers


def test_record_demo_game(benchmark, report, mode, xvfb, demo_game, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seconds = DEMO_SECONDS[mode]
    demo_game("--autodrive", "--seed", "7", "--pos", "40,40", "--tick-hz", "60")
    with open_source(window=WINDOW_TITLE, display=xvfb.display) as src:
        region = src.rect
    rec = PythonRecorder(region, (160, 120), "gray", tmp_path / "python", keys=DEMO_ACTIONS, display=xvfb.display)
    try:
        st = rec.run(FIXED_FPS, seconds)
    finally:
        rec.close()
    frames, _, keys = load_pipeline(tmp_path / "python")
    assert len(frames) == st.frames > 0 and keys.any()
    py_stamps = stamps(frames)

    cfg = RecordConfig(fps=FIXED_FPS, window=WINDOW_TITLE, size=(160, 120), color="gray", actions=DEMO_ACTIONS,
                       game="demo", data_dir=tmp_path, duration=seconds, countdown=0, display=xvfb.display)
    benchmark.group = f"record the demo game @{FIXED_FPS:g} fps for {seconds:g} s (engine Recorder)"
    benchmark.extra_info.update(window=WINDOW_TITLE, size="320x240->160x120", fps=FIXED_FPS)
    summary = benchmark.pedantic(Recorder(cfg, out=io.StringIO()).run, kwargs={"install_signals": False},
                                 rounds=1, iterations=1)
    ses = Session.open(summary.path)
    assert ses.meta["frames"] == len(ses.frames) == summary.frames > 0
    assert ses.actions[:].any(), "the game driver's keys are missing from the labels"
    en_stamps = stamps(ses.frames[:])

    group = f"rec demo game (60 Hz) @{FIXED_FPS:g}fps: its frames on disk"
    measured = {name: (100.0 * len(np.unique(numbers)) / int(numbers[-1] - numbers[0] + 1), numbers, dropped)
                for name, numbers, dropped in (("python: mss+opencv+np.memmap", py_stamps, st.dropped),
                                               ("engine: Recorder", en_stamps, summary.dropped))}
    py_share, en_share = (v[0] for v in measured.values())
    for (name, (share, numbers, dropped)), r in zip(measured.items(),
                                                    (1.0, ratio(en_share, py_share, higher_is_better=True)),
                                                    strict=True):
        unique, span = len(np.unique(numbers)), int(numbers[-1] - numbers[0] + 1)
        report.add(group, name, share, "%", ratio=r,
                   note=f"{unique} of the {span} game frames shown meanwhile; {len(numbers) - unique} repeats; "
                        f"{dropped} ticks dropped")


# ---------------------------------------------------------------------------------------------------
# Recording CPU with a 1000 Hz mouse (issue 14): the same 60 fps recording with keys only, and with
# mouse_dx/mouse_dy recorded while another process moves the mouse 1000 times a second through XTest
# relative motion (the raw motion events read off the socket, the axis queue, the framer and the axis log).
# Where the rest goes (EPYC Zen 4, 2 vCPUs, idle; perf of the writer thread): the kernel's receive of the
# X events, ~1.9 us per move (~1.9 ms/s: the X server writes each event on its own, one socket buffer each,
# whoever reads), which is 8-10% of a keys-only recording here: the floor of reading raw motion through
# X11. The engine's own share is ~0.5 ms/s (framer and axis log calls at 10 writer wake-ups a second).
# Before the listener read its socket itself, XCB's malloc per event cost ~0.5 ms/s more.

MOUSE_HZ = 1000.0
# A separate process, so its own CPU is not the recorder's: paced on absolute deadlines, +-1 count
# alternately so the pointer stays put; prints how many moves it sent when its stdin closes.
MOUSE_INJECTOR = r"""
import ctypes, os, select, sys, time
x, t = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XFlush.argtypes = [ctypes.c_void_p]
t.XTestFakeRelativeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
d = x.XOpenDisplay(sys.argv[1].encode())
period, n = 1.0 / float(sys.argv[2]), 0
print("ready", flush=True)
due = time.perf_counter()
while not select.select([sys.stdin], [], [], 0)[0]:
    due += period
    pause = due - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    s = 1 if n % 2 == 0 else -1
    t.XTestFakeRelativeMotionEvent(d, s, -s, 0)
    x.XFlush(d)
    n += 1
print(n, flush=True)
"""


def engine_record_axes(xvfb: Any, tmp: Path, actions: list[str], seconds: float, mouse: bool) -> EngineRun:
    """engine_record's 800x600 -> 160x120 gray case at 60 fps with these actions, the mouse injector
    running throughout when ``mouse``."""
    import subprocess
    import sys

    injector = None
    if mouse:
        injector = subprocess.Popen([sys.executable, "-c", MOUSE_INJECTOR, xvfb.display, str(MOUSE_HZ)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert injector.stdout is not None and injector.stdout.readline().strip() == "ready"
    try:
        cfg = RecordConfig(fps=FIXED_FPS, region=REGION_800, size=(160, 120), color="gray", actions=actions,
                           game="bench", data_dir=tmp, duration=seconds, countdown=0, display=xvfb.display)
        rec = MeasuredRecorder(cfg)
        summary = rec.run(install_signals=False, on_status=lambda _text: None)
    finally:
        if injector is not None:
            out, _ = injector.communicate("stop\n", timeout=30)
            injector.sent = int(out.split()[-1])  # type: ignore[attr-defined]
    return EngineRun(summary.frames, summary.dropped, rec.stream.stats(), rec.stream.lateness_log(), rec.store_ns,
                     rec.cpu, 0.0, summary.path)


def test_record_cpu_with_a_1000hz_mouse(benchmark, report, mode, smoke, xvfb, screen_content, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seconds = 1.5 if smoke else max(FIXED_S[mode], 4.0)  # enough status snapshots for a steady CPU figure
    rounds = 1 if smoke else 5 if mode == "quick" else 7
    axes = [*KEYS, "mouse_dx", "mouse_dy"]
    configs = {"keys only, mouse idle": (list(KEYS), False),
               "keys only, mouse at 1000 Hz (not read)": (list(KEYS), True),
               "keys + mouse_dx/dy at 1000 Hz": (axes, True)}
    # Interleaved rounds, the least CPU of each kept: other load on the machine only ever adds CPU.
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    runs: dict[str, EngineRun] = {}
    for r in range(rounds):
        for i, (name, (actions, mouse)) in enumerate(configs.items()):
            out = tmp_path / f"r{r}c{i}"
            if name.startswith("keys +") and r == 0:
                benchmark.group = f"record 800x600->160x120 gray @{FIXED_FPS:g} fps + mouse_dx/dy at {MOUSE_HZ:g} Hz"
                run = benchmark.pedantic(engine_record_axes, args=(xvfb, out, actions, seconds, mouse), rounds=1,
                                         iterations=1)
            else:
                run = engine_record_axes(xvfb, out, actions, seconds, mouse)
            cpu[name].append(steady_cpu_ms(run.cpu))
            runs[name] = run
    with_axes = runs["keys + mouse_dx/dy at 1000 Hz"]
    ses = Session.open(with_axes.session)
    assert ses.axis_names == ["mouse_dx", "mouse_dy"] and len(ses.axes) == len(ses) == with_axes.frames > 0
    n_events = len(ses.axis_events)
    assert n_events > 0 and set(np.unique(ses.axis_events["value"]).tolist()) <= {-1.0, 1.0}
    # Each frame holds exactly its interval's logged motion (the per-frame sums add up to the log's).
    log_sum = ses.axis_events["value"][ses.axis_events["t_ns"] <= ses.timestamps[-1]].astype(np.float64)
    assert abs(float(ses.axes[:].astype(np.float64).sum()) - float(log_sum.sum())) <= 2  # before frame 0: <= 1 each
    rate = n_events / 2 / max(ses.meta.get("duration_s", seconds), 1e-9)  # two axes per move
    group = f"rec 800x600->160x120 gray @{FIXED_FPS:g}fps: CPU per frame with a {MOUSE_HZ:g} Hz mouse"
    # The done-when compares with keys only while the same mouse moves unread: the injector and the X
    # server keep the other vCPU busy, which on a VM makes every wake-up cheaper (no halted vCPU to wake),
    # so against the idle mouse the axes would look cheaper than they are.
    # Its ratio is the median of each round's pair (the runs next to each other in time), which the host's
    # slow swings in speed on a shared VM affect least.
    idle = min(cpu["keys only, mouse idle"])
    pairs = sorted(m / a for m, a in zip(cpu["keys only, mouse at 1000 Hz (not read)"],
                                          cpu["keys + mouse_dx/dy at 1000 Hz"], strict=True))
    for name, values in cpu.items():
        best = min(values)
        note = f"least of {rounds} interleaved runs: " + ", ".join(f"{v:.3f}" for v in values)
        r: float | None = ratio(best, idle)
        if name.startswith("keys +"):
            r = float(np.median(pairs))
            note += (f"; ratio {r:.3f}: the median of each round's keys only with the mouse moving unread over this ("
                     + ", ".join(f"{p:.2f}" for p in pairs) + f"; {ratio(best, idle):.2f}x against the idle mouse's "
                     f"least); {n_events} axis events logged, {rate:.0f} moves/s reached the listener; done-when: "
                     "within 10% of keys only (ratio >= 0.91)")
        report.add(group, f"engine: {name}", best, "ms/frame", ratio=r, note=note)
