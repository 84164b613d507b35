"""engine.env's real-time steps beside the plain Python step loop, on the demo game, in the same run (issue #18).

An agent that answers at once (a random key vector per step, no model: what is measured is the env) steps
each loop for a few seconds at 30 and at 60 fps, observing the demo game's window as the demo model does
(80x60 RGB, 4 frames stacked on the channel axis), its keys really sent through XTest:

- engine: :class:`engine.env.GameEnv` (native capture thread on the engine pacer into a latest-N ring;
  ``step`` returns the first frame captured after the keys went out);
- python: ``baselines/python_env.py`` (XTest, ``time.sleep`` to absolute deadlines, mss, OpenCV, a deque).

Per loop: the step period error (the time between two consecutive observations minus the period; p50 and
p99 of its absolute value), process CPU per step (every thread, the engine's capture thread included; the X
server's copy is outside both), and for the engine its overruns and skipped frames. Checks: both loops made
observations of the right shape from the game's pixels, and every key is up on the X server afterwards.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from baselines.python_env import PythonStepLoop
from harness import ratio

from engine import _native
from engine.capture import open_source
from engine.demo import WINDOW_TITLE

gymnasium = pytest.importorskip("gymnasium", reason="gymnasium is not installed (pip install engine[env])")

from engine.env import GameEnv  # noqa: E402

KEYS = ["left", "right", "up"]
SIZE, WINDOW = (80, 60), 4
SECONDS = {"quick": 3.0, "full": 20.0}


def keys_up(display: str) -> bool:
    return not any(_native.XTestActuator(display, KEYS).system_held())


def run_engine(fps: float, seconds: float, display: str) -> tuple[np.ndarray, float, int, list[dict]]:
    """(observation instants ns, CPU s, steps, each step's info) of GameEnv stepping for ``seconds``."""
    env = GameEnv(KEYS, window=WINDOW_TITLE, display=display, frame_size=SIZE, color="rgb", frames=WINDOW,
                  layout="channels", fps=fps)
    rng = np.random.default_rng(0)
    try:
        obs, info = env.reset(seed=0)
        for _ in range(round(fps / 2)):  # warm-up: half a second
            obs, _, _, _, info = env.step(rng.integers(0, 2, 3))
        steps = round(seconds * fps)
        t = np.empty(steps + 1, np.int64)
        infos = []
        t[0] = time.monotonic_ns()
        c0 = time.process_time()
        for i in range(steps):
            obs, _, _, _, info = env.step(rng.integers(0, 2, 3))
            t[i + 1] = time.monotonic_ns()
            infos.append(info)
        cpu = time.process_time() - c0
        assert obs.shape == (SIZE[1], SIZE[0], 3 * WINDOW) and obs.any()
        assert all(i["t_capture_ns"] >= i["t_sent_ns"] for i in infos)
    finally:
        env.close()
    return t, cpu, steps, infos


def run_python(fps: float, seconds: float, display: str) -> tuple[np.ndarray, float, int, int]:
    """(observation instants ns, CPU s, steps, deadlines dropped) of the plain Python loop."""
    with open_source(window=WINDOW_TITLE, display=display) as src:
        region = src.rect
    loop = PythonStepLoop(region, KEYS, size=SIZE, window=WINDOW, fps=fps, display=display)
    rng = np.random.default_rng(0)
    try:
        obs = loop.reset()
        for _ in range(round(fps / 2)):
            obs = loop.step(rng.integers(0, 2, 3).astype(np.uint8))
        steps = round(seconds * fps)
        t = np.empty(steps + 1, np.int64)
        t[0] = time.monotonic_ns()
        c0 = time.process_time()
        for i in range(steps):
            obs = loop.step(rng.integers(0, 2, 3).astype(np.uint8))
            t[i + 1] = time.monotonic_ns()
        cpu = time.process_time() - c0
        assert obs.shape == (SIZE[1], SIZE[0], 3 * WINDOW) and obs.any()
    finally:
        loop.close()
    return t, cpu, steps, loop.dropped


def period_error_ms(t: np.ndarray, period_ns: int) -> tuple[float, float]:
    err = np.abs(np.diff(t) - period_ns) / 1e6
    return float(np.percentile(err, 50)), float(np.percentile(err, 99))


@pytest.mark.parametrize("fps", [30.0, 60.0])
def test_env_step_timing(benchmark, report, mode, smoke, xvfb, demo_game, fps: float) -> None:  # type: ignore[no-untyped-def]
    seconds = 1.0 if smoke else SECONDS[mode]
    demo_game("--seed", "3", "--pos", "200,150")
    benchmark.group = f"env steps @{fps:g} fps for {seconds:g} s (engine GameEnv, XTest)"
    benchmark.extra_info.update(fps=fps, frame=f"{WINDOW}x{SIZE[0]}x{SIZE[1]} rgb channels", output="xtest")
    eng_t, eng_cpu, eng_steps, infos = benchmark.pedantic(run_engine, args=(fps, seconds, xvfb.display), rounds=1,
                                                         iterations=1)
    assert keys_up(xvfb.display)
    py_t, py_cpu, py_steps, dropped = run_python(fps, seconds, xvfb.display)
    assert keys_up(xvfb.display)

    period = round(1e9 / fps)
    e50, e99 = period_error_ms(eng_t, period)
    p50, p99 = period_error_ms(py_t, period)
    group = f"env step @{fps:g}fps: period error p99"
    report.add(group, "python: xtest+sleep+mss+opencv", p99, "ms", ratio=1.0,
               note=f"p50 {p50:.3f} ms; {py_steps} steps; {dropped} deadlines dropped")
    # Where the engine's error comes from: the capture clock itself (the instants the frames were grabbed), and
    # the frame's age when step returned it (publish + wake-up of the agent's thread).
    c50, c99 = period_error_ms(np.array([i["t_capture_ns"] for i in infos]), period)
    age = np.array([i["frame_age_ns"] for i in infos]) / 1e6
    last = infos[-1]
    report.add(group, "engine: GameEnv.step", e99, "ms", ratio=ratio(e99, p99),
               note=f"p50 {e50:.3f} ms; {eng_steps} steps; {last['overruns']} overruns, "
                    f"{sum(i['skipped'] for i in infos)} frames skipped, {last['capture_late_ticks']} capture ticks "
                    f"dropped; capture clock error p50 {c50:.3f} p99 {c99:.3f} ms; frame age p50 "
                    f"{np.percentile(age, 50):.3f} p99 {np.percentile(age, 99):.3f} ms")
    group = f"env step @{fps:g}fps: CPU per step"
    py_ms, eng_ms = py_cpu / py_steps * 1e3, eng_cpu / eng_steps * 1e3
    report.add(group, "python: xtest+sleep+mss+opencv", py_ms, "ms", ratio=1.0)
    report.add(group, "engine: GameEnv.step", eng_ms, "ms", ratio=ratio(eng_ms, py_ms),
               note="incl. the capture thread")
