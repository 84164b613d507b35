"""Let a policy drive the demo game and score it by the game's own log.

Each run starts a fresh ``engine-demo`` (no autodrive) with a per-frame log on the current X display,
lets one policy play it for a while, stops the game and reads how many of the frames shown while the
policy played had the car on the road (the log's ``on_road`` column, decided by the game's simulation,
not by anything the policy reports). Policies:

- :func:`drive_model`: the real ``engine-play`` command line (``python -m engine.cli.play``) with a
  .tflite model on the "engine demo" window, ``--duration``; its summary lines are kept. The frames
  scored are those between its first and last decision (from its ``--log`` telemetry, on the same
  monotonic clock as the game log), so start-up time does not count for or against it.
- :func:`drive_random`: every frame period, each key independently held with a given probability, sent
  through the same XTest output engine-play uses; the baseline a trained model must beat.
- :func:`drive_random_mouse`: the mouse-steered game's (``engine-demo --mouse``) random baseline: every
  frame period, horizontal motion drawn from a normal distribution, sent through the same XTest relative
  motion engine-play uses (spread over the period).
- :func:`drive_nothing`: no key at all, the floor.

The game needs the keyboard focus, which it takes when its window opens; one game runs at a time.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.demo.game import WINDOW_TITLE
from engine.demo.log import load_log
from engine.demo.sim import ACTIONS
from engine.errors import EngineError

START_TIMEOUT_S = 30.0


@dataclass
class DriveResult:
    """How one policy drove: ``on_road`` fraction of the ``frames`` the game showed while it played."""

    policy: str
    on_road: float
    frames: int
    seconds: float  # from the first to the last frame scored
    seed: int
    summary: list[str] = field(default_factory=list)  # engine-play's summary lines (model policies)
    log: Path | None = None
    rows: tuple[int, int] = (0, 0)  # the log rows scored, first and last (row i = the game's i-th frame)

    def line(self) -> str:
        return (f"{self.policy}: on the road {self.on_road:.1%} of {self.frames} game frames "
                f"({self.seconds:.1f} s, road seed {self.seed})")


class DemoGame:
    """engine-demo in a subprocess on $DISPLAY (or ``display``), logging every frame to ``log``.

    Started in the constructor (returns once the window is up and focused); :meth:`stop` ends it and
    returns its log. Use as a context manager to always stop it."""

    def __init__(self, log: Path, seed: int, *args: str, display: str | None = None) -> None:
        env = dict(os.environ, PYGAME_HIDE_SUPPORT_PROMPT="1")
        if display:
            env["DISPLAY"] = display
        self.log = log
        self.seed = seed
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.demo", "--seed", str(seed), "--log", str(log), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("engine-demo ready"):
            self.proc.kill()
            _, err = self.proc.communicate()
            raise EngineError(f"the demo game did not start: {(line + err).strip() or 'no output'}")

    def stop(self) -> np.ndarray:
        """Stop the game (SIGTERM: it flushes its log and releases keys) and return the log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        return load_log(self.log)

    def __enter__(self) -> DemoGame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def score(log: np.ndarray, t0_ns: int, t1_ns: int) -> tuple[float, int, float, tuple[int, int]]:
    """(on-road fraction, frames, seconds, (first row, last row)) over the game frames presented in
    [t0_ns, t1_ns]. Raises EngineError when there is none."""
    rows = np.flatnonzero((log["t_ns"] >= t0_ns) & (log["t_ns"] <= t1_ns))
    if not len(rows):
        raise EngineError("no game frame was shown while the policy played; is the game running?")
    t = log["t_ns"][rows]
    return (float(log["on_road"][rows].mean()), len(rows), float((t[-1] - t[0]) / 1e9),
            (int(rows[0]), int(rows[-1])))


def no_keys_on_road(seed: int, rows: tuple[int, int], size: tuple[int, int] = (320, 240), tick_hz: float = 60.0
                    ) -> float:
    """On-road fraction of frames rows[0]..rows[1] of a game on road ``seed`` where no key is ever pressed,
    from the game's own simulation (one step per presented frame, as the game runs it): the floor any
    policy is compared with, without playing it."""
    from engine.demo.sim import Sim

    sim = Sim(seed, size, tick_hz)
    on = np.empty(rows[1] + 1, bool)
    for i in range(rows[1] + 1):
        sim.step(0)
        on[i] = sim.on_road
    return float(on[rows[0] :].mean())


def drive_model(model: Path, seconds: float, seed: int, workdir: Path, *, display: str | None = None,
                extra: Sequence[str] = (), name: str | None = None, game_args: Sequence[str] = ()) -> DriveResult:
    """engine-play with ``model`` on a fresh demo game (road ``seed``, engine-demo flags ``game_args``) for
    ``seconds``; see the module docs.

    Raises EngineError when the game does not start or engine-play fails (with its last stderr line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    telemetry = workdir / f"play-{seed}.npz"
    env = dict(os.environ)
    if display:
        env["DISPLAY"] = display
    with DemoGame(workdir / f"game-play-{seed}.csv", seed, *game_args, display=display) as game:
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli.play", "--model", str(model), "--window", WINDOW_TITLE,
             "--duration", f"{seconds:g}", "--countdown", "0", "--log", str(telemetry), *extra],
            capture_output=True, text=True, env=env, timeout=seconds + 120)
        log = game.stop()
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EngineError(f"engine-play exited with {done.returncode}: {last}")
    with np.load(telemetry) as t:
        sent = t["t_sent_ns"]
    if not len(sent):
        raise EngineError("engine-play made no decision; see its output")
    on_road, frames, secs, rows = score(log, int(sent[0]), int(sent[-1]))
    summary = [ln for ln in done.stdout.splitlines() if ln.startswith(("played ", "invoke "))]
    return DriveResult(name or f"model {model.name}", on_road, frames, secs, seed, summary, game.log, rows)


def _paced(out: Any, seconds: float, fps: float, step: Callable[[], object]) -> tuple[int, int]:
    """Call ``step`` every 1/fps s for ``seconds`` (the engine's Pacer), then close ``out``; returns the
    first and last instants (monotonic ns) the game is scored between."""
    from engine._pacer import Pacer, monotonic_ns

    try:
        pacer = Pacer(period_ns=round(1e9 / fps), spin_ns=0)
        t0 = monotonic_ns()
        end = t0 + round(seconds * 1e9)
        while monotonic_ns() < end:
            pacer.wait()
            step()
        return t0, monotonic_ns()
    finally:
        out.close()


def drive_random(seconds: float, seed: int, workdir: Path, rates: Sequence[float], *, fps: float = 30.0,
                 rng_seed: int = 0, display: str | None = None) -> DriveResult:
    """Every 1/fps s, hold each of ACTIONS (left, right, up) with probability ``rates[i]``, independently,
    for ``seconds`` on a fresh demo game (road ``seed``). Keys go through engine-play's XTest output."""
    from engine.actions.outputs import XTestOutput

    if len(rates) != len(ACTIONS) or not all(0 <= r <= 1 for r in rates):
        raise ValueError(f"rates must be {len(ACTIONS)} probabilities (one per action in {ACTIONS}), got {rates}")
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng_seed)
    p = np.asarray(rates, np.float64)
    with DemoGame(workdir / f"game-random-{seed}.csv", seed, display=display) as game:
        out = XTestOutput(list(ACTIONS), display or "")
        t0, t1 = _paced(out, seconds, fps, lambda: out.apply((rng.random(len(p)) < p).astype(np.uint8)))
        log = game.stop()
    on_road, frames, secs, rows = score(log, t0, t1)
    rate_text = ", ".join(f"{a} {r:.0%}" for a, r in zip(ACTIONS, rates, strict=True))
    return DriveResult(f"random keys ({rate_text} of frames)", on_road, frames, secs, seed, log=game.log, rows=rows)


def drive_random_mouse(seconds: float, seed: int, workdir: Path, spread: float, *, fps: float = 30.0,
                       rng_seed: int = 0, display: str | None = None) -> DriveResult:
    """Every 1/fps s, mouse_dx counts drawn from N(0, ``spread``), for ``seconds`` on a fresh mouse-steered
    demo game (``engine-demo --mouse``, road ``seed``), through XTest relative motion as engine-play sends it."""
    from engine.actions.outputs import XTestOutput

    if not spread >= 0:
        raise ValueError(f"spread must be a standard deviation >= 0 (counts per frame), got {spread}")
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng_seed)
    with DemoGame(workdir / f"game-random-mouse-{seed}.csv", seed, "--mouse", display=display) as game:
        out = XTestOutput([], display or "", axes=["mouse_dx"], fps=fps)
        t0, t1 = _paced(out, seconds, fps, lambda: out.apply_axes(np.array([rng.normal(0.0, spread)], np.float32)))
        log = game.stop()
    on_road, frames, secs, rows = score(log, t0, t1)
    return DriveResult(f"random mouse motion (mouse_dx ~ N(0, {spread:.1f}) counts a frame)", on_road, frames, secs,
                       seed, log=game.log, rows=rows)


def drive_nothing(seconds: float, seed: int, workdir: Path, *, display: str | None = None) -> DriveResult:
    """No key for ``seconds`` on a fresh demo game (road ``seed``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with DemoGame(workdir / f"game-nothing-{seed}.csv", seed, display=display) as game:
        t0 = time.monotonic_ns()
        time.sleep(seconds)
        t1 = time.monotonic_ns()
        log = game.stop()
    on_road, frames, secs, rows = score(log, t0, t1)
    return DriveResult("no keys", on_road, frames, secs, seed, log=game.log, rows=rows)


__all__ = ["DemoGame", "DriveResult", "drive_model", "drive_nothing", "drive_random", "drive_random_mouse",
           "no_keys_on_road", "score"]
