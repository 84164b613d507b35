"""GameEnv: a real-time Gymnasium environment over a game window, a screen region or a monitor.

Capture is engine-play's: the native capture thread grabs the source at ``fps`` on the engine pacer
(absolute deadlines; a tick more than a period late is dropped and counted, never caught up in a burst),
converts and resizes each frame in one native pass, and publishes it into a latest-N ring. Nothing queues.

Timing contract of :meth:`GameEnv.step` (the game is never paused: real time, as rtgym's "elastic" steps):

1. ``step(a)`` sends ``a`` at once (only the press/release changes) through the output (XTest by default).
2. It returns the observation whose newest frame is the first one *captured after the keys were sent*: the
   next tick of the capture clock. Its window is read straight from the ring, so it holds the frames that
   tick and the ``span - 1`` before it, at the trained spacing, whatever the agent's own timing.
3. A step is *on time* when its keys go out before the capture tick that follows the previous
   observation (its capture instant + one period). When they go out later the step *overran*: it is
   counted (``info["overruns"]``), ``info["lateness_ns"]`` says by how much, the ticks in between are
   ``info["skipped"]`` frames, and the observation is still the first frame captured after the send: the
   clock is never made to catch up.
4. Between steps the keys stay as last sent (the game goes on in real time).

``info`` of every reset and step: ``frame`` (sequence number of the newest frame in this capture),
``tick`` (its capture-clock tick), ``t_capture_ns`` and ``t_sent_ns`` (the engine's monotonic clock),
``frame_age_ns`` (capture to return), ``lateness_ns``, ``overran``, ``overruns``, ``skipped`` (frames captured
since the previous observation that no observation ended on), ``capture_late_ticks`` (ticks the capture
thread itself dropped so far), ``keys_held`` (action names held after this step) and ``episode_step``.

Reward and episode end are the user's: ``reward(frame, info) -> float`` and ``done(frame, info) -> bool`` on the
newest frame ((H, W) gray or (H, W, 3) RGB, the observation's frame size); ``max_steps`` truncates.
``reset()`` releases every key first, then plays ``reset_sequence`` (keys held for a time, e.g. to restart
a level), releases again and returns the first frame captured after that.

Releases: ``close()``, any exception inside ``reset``/``step``, garbage collection of the env and interpreter
exit (a ``weakref.finalize``) release every key; the XTest and SendInput outputs also start engine-play's
crash watchdog process, which releases them if this process dies without doing so (kill -9).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from engine import _native
from engine._pacer import monotonic_ns, sleep_until_ns
from engine.actions import parse_actions
from engine.actions.outputs import NullOutput, Output, default_output, open_output
from engine.capture import CaptureStream, open_source
from engine.env.spec import DEFAULT_FPS, FrameSpec
from engine.errors import EngineError
from engine.record.config import auto_size
from engine.sidecar import Color, Layout, ModelSidecar

Frame = np.ndarray
RewardFn = Callable[[Frame, dict[str, Any]], SupportsFloat]
DoneFn = Callable[[Frame, dict[str, Any]], bool]
ResetStep = tuple["str | Sequence[str]", float]

# Pixels straight through: the native feed writes the window in the model's layout through a 256-entry
# table; with the identity table that is the uint8 observation, the same code path engine-play feeds with.
_IDENTITY = np.arange(256, dtype=np.uint8)
_IDENTITY.flags.writeable = False


class _Resources:
    """What must be released, held apart from the env so a finalizer can run without it."""

    def __init__(self) -> None:
        self.output: Output | None = None
        self.stream: CaptureStream | None = None
        self.source: Any = None

    def release_keys(self) -> None:
        if self.output is not None:
            self.output.release_all()

    def close(self) -> None:
        """Release every key (first, whatever else fails), stop the watchdog cleanly, stop capture."""
        try:
            if self.output is not None:
                output, self.output = self.output, None
                output.close()  # releases every key, then tells the watchdog it was a clean exit
        finally:
            if self.stream is not None:
                stream, self.stream = self.stream, None
                stream.stop()
            if self.source is not None:
                source, self.source = self.source, None
                source.close()


class GameEnv(gym.Env[Any, np.ndarray]):
    """A real-time environment over any game window (see the module docs for the timing contract).

    Capture (as engine-record): ``window`` (title or X id), ``region`` (x, y, w, h; inside the window when
    both are given), ``monitor``, ``backend``, ``display``.

    Observation (as a model sidecar says): pass ``sidecar`` (an engine.sidecar.ModelSidecar, e.g. a
    model's ``m.json``), and/or explicit ``frame_size`` (w, h), ``color``, ``frames`` (window length),
    ``skip``, ``layout``, ``fps``; explicit arguments win. Without either, one RGB frame of the source's
    area shrunk like engine-record's default, at 30 fps. ``history`` = k > 0 makes the observation a
    Dict ``{"frames": ..., "actions": (k, A) uint8}`` holding the last k actions sent, oldest row first.

    Actions: ``actions`` (key and button names; default the sidecar's), a MultiBinary(A) space: 1 = held.
    ``output``: "xtest" (the default on Linux, with its crash watchdog), "uinput", "sendinput",
    "dry-run", "none", or an Output object made for ``actions`` followed by any other keys the reset
    sequence presses (the env takes it over and closes it).
    """

    # Gymnasium reads this class attribute before any env exists; each env overrides render_fps with its fps.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": DEFAULT_FPS}  # noqa: RUF012

    def __init__(
        self,
        actions: str | Sequence[str] | None = None,
        *,
        window: str | int | None = None,
        region: tuple[int, int, int, int] | None = None,
        monitor: int | None = None,
        backend: str = "default",
        display: str | None = None,
        sidecar: ModelSidecar | None = None,
        frame_size: tuple[int, int] | None = None,
        color: Color | None = None,
        frames: int | None = None,
        skip: int | None = None,
        layout: Layout | None = None,
        fps: float | None = None,
        history: int = 0,
        reward: RewardFn | None = None,
        done: DoneFn | None = None,
        max_steps: int | None = None,
        reset_sequence: Sequence[ResetStep] = (),
        output: str | Output | None = None,
        frame_timeout_s: float = 2.0,
        render_mode: str | None = None,
    ) -> None:
        self._res = _Resources()
        # Registered before anything can fail, so whatever was opened is released on every path.
        self._finalizer = weakref.finalize(self, self._res.close)
        if actions is None:
            if sidecar is None:
                raise EngineError("no actions given; pass actions=['left', 'right', ...] or a model sidecar")
            actions = list(sidecar.actions)
        self.actions: tuple[str, ...] = tuple(parse_actions(actions))
        self._reset_sequence = _check_sequence(reset_sequence)
        # The output also knows the keys only the reset sequence presses (a restart key, say).
        extra = sorted({k for keys, _ in self._reset_sequence for k in keys} - set(self.actions))
        self._keys_all: tuple[str, ...] = (*self.actions, *extra)
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise EngineError(f"history must be a whole number >= 0 (the last k actions observed), got {history!r}")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
            raise EngineError(f"max_steps must be a whole number >= 1 or None, got {max_steps!r}")
        if not frame_timeout_s > 0:
            raise EngineError(f"frame_timeout_s must be positive, got {frame_timeout_s!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise EngineError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.history = history
        self.max_steps = max_steps
        self.reward_fn = reward
        self.done_fn = done
        self._timeout_ns = round(frame_timeout_s * 1e9)

        source = open_source(region=region, window=window, monitor=monitor, backend=backend, display=display)
        self._res.source = source
        base = FrameSpec.from_sidecar(sidecar) if sidecar is not None else FrameSpec(
            frame_size=auto_size(source.width, source.height))
        given: dict[str, Any] = {"frame_size": frame_size, "color": color, "window": frames, "skip": skip,
                                 "layout": layout, "fps": fps}
        self.frame_spec = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
        fs = self.frame_spec
        if fs.width > source.width or fs.height > source.height:
            raise EngineError(f"frame_size {fs.width}x{fs.height} is larger than the captured area "
                              f"{source.width}x{source.height}; pass a frame_size at most that")
        self.period_ns = round(1e9 / fs.fps)
        self.metadata = {**self.metadata, "render_fps": fs.fps}

        frames_space = spaces.Box(0, 255, fs.shape, np.uint8)
        self.action_space = spaces.MultiBinary(len(self.actions))
        self.observation_space: spaces.Space[Any] = frames_space if not history else spaces.Dict(
            {"frames": frames_space, "actions": spaces.MultiBinary((history, len(self.actions)))})

        if output is None or isinstance(output, str):
            kind = output or default_output()
            self._res.output = (NullOutput(len(self._keys_all)) if kind == "none"
                                else open_output(kind, list(self._keys_all), display or ""))
        else:
            self._res.output = output
        self._held = np.zeros(len(self._keys_all), np.uint8)
        self._last_actions = np.zeros((history, len(self.actions)), np.uint8)

        self._stream = CaptureStream(source, fps=fs.fps, size=fs.frame_size, color=fs.color, mode="latest",
                                     window=fs.span, slack=4)
        self._res.stream = self._stream
        self._ring: Any = self._stream.sink
        self._stream.start()

        self._last_frame = -1  # sequence number of the newest frame of the last observation
        self._last_t_cap = 0
        self._newest: np.ndarray | None = None
        self.episode_step = 0
        self.overruns = 0  # steps whose keys went out after the next capture tick, since the env opened
        self.skipped = 0  # frames captured that no observation ended on, since the env opened
        self.steps = 0

    # ---- gymnasium API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._check_open()
        try:
            self._send(np.zeros(len(self._keys_all), np.uint8))
            self._res.release_keys()  # whatever the output holds, even keys set outside the env
            self._last_actions[:] = 0
            for keys, seconds in self._reset_sequence:
                state = np.zeros(len(self._keys_all), np.uint8)
                state[[self._keys_all.index(k) for k in keys]] = 1
                self._send(state)
                sleep_until_ns(monotonic_ns() + round(seconds * 1e9))
            t_sent = monotonic_ns()
            self._send(np.zeros(len(self._keys_all), np.uint8))
            self.episode_step = 0
            self._last_frame = -1
            obs, info = self._observe(t_sent, lateness=0)
        except BaseException:
            self._res.release_keys()
            raise
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self._check_open()
        state = self._action(action)
        try:
            t_sent = monotonic_ns()
            full = self._held.copy()
            full[: len(self.actions)] = state
            self._send(full)
            # On time: sent before the capture tick after the previous observation.
            lateness = max(0, t_sent - (self._last_t_cap + self.period_ns))
            if lateness:
                self.overruns += 1
            if self.history:
                self._last_actions[:-1] = self._last_actions[1:]
                self._last_actions[-1] = state
            self.episode_step += 1
            self.steps += 1
            obs, info = self._observe(t_sent, lateness)
            frame = self._newest
            assert frame is not None
            reward = float(self.reward_fn(frame, info)) if self.reward_fn is not None else 0.0
            terminated = bool(self.done_fn(frame, info)) if self.done_fn is not None else False
        except BaseException:
            self._res.release_keys()
            raise
        truncated = self.max_steps is not None and self.episode_step >= self.max_steps and not terminated
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """rgb_array: the newest observed frame as (H, W, 3) uint8 (gray repeated); None otherwise."""
        if self.render_mode != "rgb_array" or self._newest is None:
            return None
        f = self._newest
        return np.repeat(f[..., None], 3, axis=2) if f.ndim == 2 else f.copy()

    def close(self) -> None:
        """Release every key, stop the crash watchdog and the capture. Idempotent."""
        self._finalizer()

    # ---- more than gymnasium asks ----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    @property
    def keys_held(self) -> tuple[str, ...]:
        """Names of the keys the env holds now (as sent; the system's own view may lag by a round trip)."""
        return tuple(k for k, h in zip(self._keys_all, self._held, strict=True) if h)

    def release_all(self) -> None:
        """Release every key now (the env stays usable)."""
        self._check_open()
        self._send(np.zeros(len(self._keys_all), np.uint8))
        self._res.release_keys()

    def capture_stats(self) -> dict[str, int]:
        """The capture thread's counters (ticks, frames, late_ticks, grab and convert times...)."""
        return self._stream.stats()

    # ---- internals -------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise EngineError("this environment is closed; make a new one")

    def _action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != (len(self.actions),) or not ((a == 0) | (a == 1)).all():  # (np.isin costs 0.2 ms)
            raise EngineError(f"an action is {len(self.actions)} values of 0 or 1 (one per {', '.join(self.actions)}), "
                              f"got {np.array2string(a, threshold=8)}")
        return a.astype(np.uint8)

    def _send(self, state: np.ndarray) -> None:
        output = self._res.output
        assert output is not None
        output.apply(state)
        self._held = state.copy()

    def _observe(self, t_sent: int, lateness: int) -> tuple[Any, dict[str, Any]]:
        """Wait for the first frame captured at or after ``t_sent`` whose window is complete; read it."""
        fs = self.frame_spec
        ring = self._ring
        out = np.empty(fs.shape, np.uint8)
        seen = ring.published
        deadline = t_sent + self._timeout_ns
        while True:
            if err := self._stream.error:
                raise EngineError(f"capture stopped: {err}; every key was released")
            now = monotonic_ns()
            if now >= deadline:
                raise EngineError(f"no frame was captured for {self._timeout_ns / 1e9:g} s (is the window "
                                  "minimised or gone?); every key was released")
            published = ring.wait_newer(seen, min(0.1, (deadline - now) / 1e9))
            if published <= seen:
                continue
            seen = published
            end = published - 1
            if end + 1 < fs.span or ring.t_ns(end) < t_sent:
                continue  # the window is not complete yet, or the grab began before the keys were sent
            stamp = _native.feed_window(ring, end, fs.window, fs.skip, _IDENTITY, fs.layout, out)
            if stamp is None:
                continue  # overwritten while copying: a newer frame exists, take it
            t_cap, tick = int(stamp[0]), int(stamp[1])
            if t_cap >= t_sent:
                break
        skipped = 0 if self._last_frame < 0 else end - self._last_frame - 1
        self.skipped += skipped
        self._last_frame, self._last_t_cap = end, t_cap
        self._newest = self._newest_frame(out)
        info = {
            "frame": int(end), "tick": tick, "t_capture_ns": t_cap, "t_sent_ns": int(t_sent),
            "frame_age_ns": monotonic_ns() - t_cap, "lateness_ns": int(lateness), "overran": lateness > 0,
            "overruns": self.overruns, "skipped": int(skipped),
            "capture_late_ticks": int(self._stream.stats()["late_ticks"]),
            "keys_held": self.keys_held, "episode_step": self.episode_step,
        }
        if not self.history:
            return out, info
        return {"frames": out, "actions": self._last_actions.copy()}, info

    def _newest_frame(self, obs: np.ndarray) -> np.ndarray:
        """The newest frame of an observation: (H, W) gray or (H, W, 3) RGB, a copy."""
        fs = self.frame_spec
        f = obs[-1] if fs.layout == "frames" else obs[:, :, -fs.channels:]
        return (f[..., 0] if fs.color == "gray" else f).copy()

    def __repr__(self) -> str:
        fs = self.frame_spec
        return (f"<GameEnv {fs.window}x{fs.width}x{fs.height} {fs.color} {fs.layout} @{fs.fps:g} fps -> "
                f"{','.join(self.actions)}{' (closed)' if self.closed else ''}>")


def _check_sequence(sequence: Sequence[ResetStep]) -> list[tuple[tuple[str, ...], float]]:
    """[(keys, seconds), ...] with keys a name, a comma list or a list of names ("" or [] for none)."""
    steps: list[tuple[tuple[str, ...], float]] = []
    for item in sequence:
        try:
            keys, seconds = item
        except (TypeError, ValueError):
            raise EngineError(f"a reset step is (keys, seconds), e.g. ('enter', 0.1), got {item!r}") from None
        names = () if keys in ("", (), []) else tuple(parse_actions(keys, what="reset key"))
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
            raise EngineError(f"a reset step lasts 0 to 60 seconds, got {seconds!r} for {keys!r}")
        steps.append((names, float(seconds)))
    return steps


__all__ = ["DoneFn", "GameEnv", "RewardFn"]
