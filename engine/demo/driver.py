"""The scripted driver of the demo game: a policy that plays well, and the sender of its keys.

Architecture: the driver runs inside the game process (``engine-demo --autodrive``). After each frame
is presented, :class:`Driver` reads the exact game state (car, road) and decides which keys to hold
next; :class:`DriverKeys` sends the changes through an engine output (engine.actions.outputs; the game
uses XTest, with its crash watchdog, like engine-play). The keys therefore travel as real X events: the
game sees them only through X (pygame's key state, one tick later), and a recorder's XInput2 listener
sees exactly the same presses and releases. Reading the
state instead of the screen makes the driver exact, free of CPU cost and deterministic from the seed;
putting it in the game process needs no IPC and no second window to focus.

The label stream is meant to look like a person's:
- steering is bang-bang with hysteresis: a key is held until the car is back near the line, with
  press and release thresholds redrawn at random for every hold, so hold lengths vary;
- small errors are corrected with short taps (press, ~2 ms, release: shorter than any frame period,
  so a recorder polling key state would miss them unless it keeps taps);
- ``up`` (boost) is held for random stretches on straight parts of the road and released before bends.

Every random draw comes from a generator seeded by the game seed, so the decisions are a pure
function of (seed, state history): a run replays exactly as long as the game sees each key change on
the tick after it was sent (the game waits a few ms for late events in autodrive mode to keep it so).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

import numpy as np

from engine._pacer import monotonic_ns, sleep_until_ns
from engine.actions.outputs import NativeKeysOutput
from engine.demo.sim import ACTIONS, LEFT, MOUSE_GAIN, RIGHT, UP, Sim

TAP_NS = 2_000_000  # how long a tap holds its key: well under a 30 fps frame (33 ms) and a 60 Hz tick


@dataclass(frozen=True)
class Decision:
    """What to do after a frame: hold exactly ``held`` (a key mask) from now on, and tap ``tap``."""

    held: int
    tap: int = 0


class Driver:
    """The policy. ``decide`` is called once per tick with the state the game just presented; its
    decision reaches the game on the next tick (the one-tick delay is part of the design)."""

    LOOKAHEAD_S = 0.12  # aim at the road where the car will be this far ahead
    TAP_MIN_PX = 2.0  # errors below this (in 320-px units) are left alone
    TAP_P = 0.1  # chance per eligible tick of a corrective tap
    BOOST_MAX_SLOPE = 0.16  # boost only if the road ahead is at most this steep (widths per height)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed * 1_000_003 + 0xD21E)
        self._steer = 0  # -1 left, 0 none, +1 right
        self._press_px = 0.0
        self._release_px = 0.0
        self._new_thresholds()
        self._tap_cooldown = 0
        self._boost = False
        self._boost_left = self._ticks(0.5, 1.5, 60.0)  # ticks until the boost state may change
        self.taps = 0

    def _new_thresholds(self) -> None:
        # Press when the error exceeds press_px, release when it has come back below release_px
        # (may be slightly past the line: people overshoot).
        self._press_px = self._rng.uniform(4.0, 12.0)
        self._release_px = self._rng.uniform(-1.5, 2.5)

    def _ticks(self, lo_s: float, hi_s: float, tick_hz: float) -> int:
        return max(1, round(self._rng.uniform(lo_s, hi_s) * tick_hz))

    def decide(self, sim: Sim) -> Decision:
        tick_hz = 1.0 / sim.dt
        px = sim.width / 320.0  # thresholds are tuned at 320 px wide
        ahead = sim.speed * self.LOOKAHEAD_S
        target = sim.road.centre(sim.car_u + ahead) * sim.width
        error = (target - sim.car_x) / px  # > 0: the road is to the right

        tap = 0
        if (self._steer == 1 and error < self._release_px) or (self._steer == -1 and error > -self._release_px):
            self._steer = 0
        elif self._steer == 0:
            if abs(error) > self._press_px:
                self._steer = 1 if error > 0 else -1
                self._new_thresholds()
            elif abs(error) > self.TAP_MIN_PX and self._tap_cooldown == 0 and self._rng.random() < self.TAP_P:
                tap = RIGHT if error > 0 else LEFT
                self._tap_cooldown = self._ticks(0.1, 0.4, tick_hz)
                self.taps += 1
        self._tap_cooldown = max(0, self._tap_cooldown - 1)

        self._boost_left -= 1
        steep = max(abs(sim.road.slope(sim.car_u + k * 0.2)) for k in range(5))
        if self._boost and (steep > self.BOOST_MAX_SLOPE or self._boost_left <= 0):
            self._boost = False
            self._boost_left = self._ticks(0.4, 2.0, tick_hz)
        elif not self._boost and self._boost_left <= 0 and steep <= self.BOOST_MAX_SLOPE:
            self._boost = True
            self._boost_left = self._ticks(0.6, 2.5, tick_hz)

        held = (RIGHT if self._steer == 1 else LEFT if self._steer == -1 else 0) | (UP if self._boost else 0)
        return Decision(held=held, tap=tap)


class MouseDriver:
    """The policy of the mouse-steered game (``engine-demo --mouse --autodrive``): each tick, the horizontal
    mouse motion (counts) a hand would make to bring the car onto the road ahead. A proportional hand
    with a lag: the motion eases towards what the error asks for (a hand does not jump), capped at a
    hand's speed, with a little tremor. Its decisions go to the game as XTest relative motion through the
    engine's output, spread over the tick (the output's motion thread), so the game and a recorder's XI2
    raw-motion listener see them as a real mouse's stream."""

    LOOKAHEAD_S = 0.15
    GAIN = 4.0  # lateral speed asked for per pixel of error, 1/s
    EASE = 0.35  # share of the gap to the asked-for motion closed each tick
    MAX_PX_S = 110.0  # a hand's top lateral speed, px/s at 320 px
    TREMOR = 0.3  # counts, standard deviation per tick

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed * 1_000_003 + 0x30A5E)
        self._dx = 0.0

    def decide(self, sim: Sim) -> float:
        px = sim.width / 320.0
        target = sim.road.centre(sim.car_u + sim.speed * self.LOOKAHEAD_S) * sim.width
        error = (target - sim.car_x) / px  # > 0: the road is to the right
        speed = max(-self.MAX_PX_S, min(self.MAX_PX_S, self.GAIN * error))  # px/s at 320 px
        want = speed * sim.dt / (MOUSE_GAIN * 320.0)  # counts this tick
        self._dx += self.EASE * (want - self._dx)
        return self._dx + self._rng.gauss(0.0, self.TREMOR)


def mask_to_state(mask: int) -> np.ndarray:
    """Key mask -> one uint8 per action in ACTIONS order (what the actuator takes)."""
    return np.array([(mask >> i) & 1 for i in range(len(ACTIONS))], dtype=np.uint8)


class DriverKeys:
    """Sends a :class:`Decision` through ``output`` (an output of engine.actions.outputs for the actions
    ``ACTIONS``, in that order), which it owns: :meth:`close` closes it.

    Only changes are sent. A tap is press, sleep TAP_NS (GIL released, no spinning), release; it is sent
    after the held set was updated and only for a key that is not held.

    ``stop()`` releases every key and makes later sends no-ops. It may be called from a signal handler:
    Python runs handlers between bytecodes of the main thread, so one can run between two output
    calls of a ``send`` (never inside one); every ``send`` step re-checks after its call and releases
    again, so a key pressed just after ``stop()`` is released before ``send`` returns.
    """

    def __init__(self, output: NativeKeysOutput) -> None:
        self._out = output
        self._stopped = threading.Event()
        self.held = 0

    def _apply(self, mask: int) -> bool:
        if self._stopped.is_set():
            return False
        self._out.apply(mask_to_state(mask))
        if self._stopped.is_set():  # stopped while that call ran: undo what it pressed
            self._out.release_all()
            return False
        return True

    def send(self, decision: Decision) -> int:
        """Apply the decision; returns the tap's press-to-release time in ns (0 if no tap was sent)."""
        if not self._apply(decision.held):
            return 0
        self.held = decision.held
        tap = decision.tap & ~decision.held
        if not tap or not self._apply(decision.held | tap):
            return 0
        t0 = monotonic_ns()
        sleep_until_ns(t0 + TAP_NS, 0)
        if not self._apply(decision.held):
            return 0
        return monotonic_ns() - t0

    def move(self, dx: float) -> None:
        """Horizontal mouse motion (counts) through the output's axes (opened with ``mouse_dx``): spread
        over the next tick by the output's motion thread. A no-op once stopped."""
        if self._stopped.is_set():
            return
        self._out.apply_axes(np.array([dx], np.float32))
        if self._stopped.is_set():  # stopped meanwhile: drop what that call planned
            self._out.release_all()

    def system_held(self) -> int:
        """Key mask of ACTIONS the X server believes are down (from any client)."""
        return sum(1 << i for i, down in enumerate(self._out.system_held()) if down)

    def stop(self) -> None:
        """Release everything and refuse further sends. Idempotent; safe in a signal handler."""
        self._stopped.set()
        self._out.release_all()
        self.held = 0

    def close(self) -> None:
        """stop(), then close the output (which ends its watchdog, telling it whether the keys were released).
        Idempotent."""
        try:
            self.stop()
        finally:
            self._out.close()


def simulate_mouse(seed: int, seconds: float, size: tuple[int, int] = (320, 240), tick_hz: float = 60.0,
                   gusts: bool = False) -> float:
    """The mouse driver without X (its motion reaches the game on the next tick, in whole counts with the
    remainder carried, as the output sends it); returns the fraction of ticks on the road."""
    sim = Sim(seed, size, tick_hz, gusts=gusts)
    driver = MouseDriver(seed)
    ticks = math.ceil(seconds * tick_hz)
    on = 0
    carry = dx = 0.0
    for _ in range(ticks):
        sim.step(0, 0, dx)
        on += sim.on_road
        want = driver.decide(sim) + carry
        dx = float(round(want))
        carry = want - dx
    return on / ticks


def simulate(seed: int, seconds: float, size: tuple[int, int] = (320, 240), tick_hz: float = 60.0,
             gusts: bool = False) -> dict[str, float]:
    """Play the game without X: the driver's decision after tick t is what the game sees at tick t + 1
    (held keys, and a tap as a press without a hold). For tuning and tests; returns summary numbers
    (``max_error``: the largest distance of the car from the road centre, window pixels)."""
    sim = Sim(seed, size, tick_hz, gusts=gusts)
    driver = Driver(seed)
    decision = Decision(0)
    prev_held = 0
    on = 0
    ticks = math.ceil(seconds * tick_hz)
    held_ticks = [0, 0, 0]
    max_error = 0.0
    for _ in range(ticks):
        sim.step(decision.held, (decision.held & ~prev_held) | decision.tap)
        prev_held = decision.held
        on += sim.on_road
        max_error = max(max_error, abs(sim.car_x - sim.road_x))
        for i in range(3):
            held_ticks[i] += (decision.held >> i) & 1
        decision = driver.decide(sim)
    return {
        "on_road": on / ticks,
        "taps": driver.taps,
        "left": held_ticks[0] / ticks,
        "right": held_ticks[1] / ticks,
        "up": held_ticks[2] / ticks,
        "distance": sim.u,
        "max_error": max_error,
    }


__all__ = ["TAP_NS", "Decision", "Driver", "DriverKeys", "MouseDriver", "mask_to_state", "simulate", "simulate_mouse"]
