"""A .tflite model driving the demo game's simulation, faster than real time and with no window.

``engine-play`` on the real game (:func:`engine.demo.models.drive.drive_model`) is the measurement: a real
window, real capture, real key events, in real time. This is its cheap stand-in for choosing between
models (engine.demo.dagger keeps the best of several trainings): the game's own simulation
(engine.demo.sim), drawn by the game's own renderer on an off-screen surface, converted and area-resized by
the engine's own kernel (``_native.convert_resize``, what capture runs), fed to the model by engine-play's
model code (:class:`engine.env.TFLitePolicy`), at the model's rate against the game's tick rate.

It differs from a real drive in timing only: here a decision made on the frame the game drew at tick t is
held from tick t + ``latency_ticks`` on, every time, where a real drive captures a frame 0-1 tick old and its
keys arrive with a jitter of a few ms. So a model scores about what it drives, not the same number: rank
models with it, measure them with engine-play. A 14 s drive takes about 0.15 s at 40x30 and 0.25 s at 80x60
(one core of a 2-vCPU Intel Xeon VM; pygame's drawing is about half of it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine import _native
from engine.demo.sim import LEFT, RIGHT, UP, Sim
from engine.errors import EngineError

_BITS = {"left": LEFT, "right": RIGHT, "up": UP}
_TICK_HZ = 60.0  # the game's default tick rate (engine-demo)
_SIZE = (320, 240)  # the game's default window


class OffscreenGame:
    """The demo game without a window: its simulation, and its renderer drawing on an off-screen surface.
    ``frame`` returns what the game's window shows after the same steps, as a BGRA array (what capture reads)."""

    def __init__(self, seed: int, size: tuple[int, int] = _SIZE, tick_hz: float = _TICK_HZ,
                 gusts: bool = False) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame  # drawing on a plain Surface needs no display and no video driver

        from engine.demo.game import Renderer

        self.size = size
        self.sim = Sim(seed, size, tick_hz, gusts=gusts)
        self._surface = pygame.Surface(size, 0, 32)
        self._renderer = Renderer(pygame, self._surface, self.sim)
        # A 32-bit surface with red in bits 16-23 holds B, G, R, X bytes on a little-endian machine: capture's
        # BGRA, read in place (the proxy keeps the surface locked, which drawing on a software surface allows).
        if self._surface.get_masks()[:3] != (0xFF0000, 0xFF00, 0xFF) or sys.byteorder != "little":
            raise EngineError(f"pygame made a {self._surface.get_masks()} surface, not XRGB8888; "
                              "the off-screen game cannot read it as BGRA")
        pitch = self._surface.get_pitch() // 4
        raw = np.asarray(self._surface.get_view("0")).view(np.uint8)  # its bytes, in place (no copy)
        self._bgra = raw.reshape(size[1], pitch, 4)[:, : size[0]]

    def frame(self, index: int, lit: int) -> np.ndarray:
        """Draw the current state as the game draws tick ``index`` (its frame stamp) with the key mask ``lit``
        lit on the indicators; returns (H, W, 4) BGRA uint8, a view of the surface that the next call redraws."""
        self._renderer.draw(index, lit)
        return self._bgra


def rollout(model: Path, seconds: float, seed: int, *, gusts: bool = True, latency_ticks: int = 1,
            size: tuple[int, int] = _SIZE, tick_hz: float = _TICK_HZ) -> float:
    """On-road fraction of the game's ticks while ``model`` drives road ``seed`` for ``seconds`` of game time
    (the first ticks, before the model's frame window is full, count too: the car starts in the middle).

    Raises EngineError when the model is not a demo model (its actions are not the game's keys, or its rate
    does not divide the game's tick rate)."""
    from engine.env.policy import TFLitePolicy

    policy = TFLitePolicy(model)
    spec = policy.spec
    bits = []
    for name in spec.actions:
        if name not in _BITS:
            raise EngineError(f"{model}: action {name!r} is not a key of the demo game ({', '.join(_BITS)})")
        bits.append(_BITS[name])
    per_frame = tick_hz / spec.fps
    if abs(per_frame - round(per_frame)) > 1e-9 or per_frame < 1:
        raise EngineError(f"{model}: its {spec.fps:g} fps does not divide the game's {tick_hz:g} ticks a second")
    every = round(per_frame)
    (w, h), window, skip = spec.frame_size, spec.window, spec.skip
    channels = 3 if spec.color == "rgb" else 1
    span = (window - 1) * skip + 1
    frames = np.zeros((span, h, w, channels), np.uint8)  # newest last
    obs = np.empty((window, h, w, channels), np.uint8)

    game = OffscreenGame(seed, size, tick_hz, gusts)
    sim = game.sim
    held = 0
    pending: list[tuple[int, int]] = []  # (tick from which it holds, key mask)
    seen = on = 0
    ticks = round(seconds * tick_hz)
    for tick in range(ticks):
        while pending and pending[0][0] <= tick:
            held = pending.pop(0)[1]
        sim.step(held)
        on += sim.on_road
        if tick % every:
            continue
        frame = _native.convert_resize(game.frame(tick, held), w, h, spec.color)
        frames[:-1] = frames[1:]
        frames[-1] = frame.reshape(h, w, channels)
        seen += 1
        if seen < span:
            continue
        obs[:] = frames[::skip]
        x = obs if spec.layout == "frames" else obs.transpose(1, 2, 0, 3).reshape(h, w, window * channels)
        state = policy(x)
        pending.append((tick + latency_ticks, sum(b for b, s in zip(bits, state, strict=True) if s)))
    return on / max(ticks, 1)


def rollouts(model: Path, seconds: float, seeds: Sequence[int]) -> list[float]:
    """:func:`rollout` on each road of ``seeds``, in a crosswind."""
    return [rollout(model, seconds, s) for s in seeds]


__all__ = ["OffscreenGame", "rollout", "rollouts"]
