"""The demo game's rules without any window: the road, the car and one fixed step of physics.

Pure and deterministic: the same seed, size, tick rate and key sequence give the same states on every
machine (plain float64 arithmetic, no clock, no randomness after construction). The pygame front end
(``engine.demo.game``) draws this state; the scripted driver (``engine.demo.driver``) reads it.

Units: distance along the road ``u`` is in screen heights (the screen shows u to u + 1, the top row
is the farthest); lateral positions are in window pixels. Physics is specified per second, so the
game plays at the same real speed at any tick rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The keys the game reacts to, in the column order used by the log, the actuator and the recorder.
ACTIONS: tuple[str, ...] = ("left", "right", "up")
LEFT, RIGHT, UP = 1, 2, 4  # bit of each action in a key mask (bit i = ACTIONS[i])

ROAD_HALF_WIDTH = 0.15  # of the window width
CAR_Y = 0.85  # car centre row, fraction of the window height from the top
CAR_W = 0.044  # of the window width (14 px at 320)
CAR_H = 0.1  # of the window height (24 px at 240)
SPEED = 0.625  # screen heights per second (150 px/s at 240 px)
BOOST = 1.6  # speed factor while `up` is held
OFFROAD = 0.5  # speed factor while off the road
STEER = 0.22  # window widths per second while `left` or `right` is held (70 px/s at 320 px)
TAP = STEER / 60  # lateral nudge of a tap (a press released before the game polled), window widths
# Mouse steering (engine-demo --mouse): each count of horizontal mouse motion the game reads moves the car
# this far sideways (window widths; 0.25 px at 320 px), so the car's lateral speed follows mouse dx per
# second, as a mouse-look camera's turn rate does. At 60 ticks a second, steering's 70 px/s is ~4.7
# counts a tick.
MOUSE_GAIN = 0.25 / 320
# Road shape limits: the centre stays within this distance of the middle (so the whole road is on
# screen), and its slope (window widths per screen height) stays below what steering can follow at
# normal speed, STEER / SPEED = 0.35. Boosting through the steepest bends (which needs a slope under
# STEER / (SPEED * BOOST) = 0.22) takes the car off the road: the boost has a cost.
_MAX_OFFSET = 0.5 - ROAD_HALF_WIDTH - 0.04
_MAX_SLOPE = 0.30
# Gusts (optional, ``Sim(gusts=True)``): a crosswind that shoves the car sideways now and then, whatever
# the keys. Recorded with gusts, a driver's demonstrations include recoveries from well off the line
# (up to and past the road's edge), the states a cloned policy reaches once it strays and never sees
# when the teacher drives perfectly (the covariate shift that noise injection in the teacher's loop,
# e.g. DART, addresses). The keys stay the driver's own, so the labels are right.
GUST_RATE = 0.4  # gusts per second, on average (a Poisson process, one gust at a time)
GUST_SPEED = (0.3, 0.7)  # window widths per second (96 to 224 px/s at 320 px; steering is 70 px/s)
GUST_S = (0.15, 0.4)  # duration in seconds: a shove of 14 to 90 px at 320 px before the driver reacts
# With these the scripted driver ends 45 to 86 px from the road centre at worst in a minute (the edge
# is at 48) and stays on the road 97-100% of the time (engine.demo.driver.simulate, road seeds 0-7).


@dataclass(frozen=True)
class Road:
    """A winding road: the centre is a sum of three sines whose amplitudes, wavelengths and phases come
    from the seed. Infinite, smooth, and cheap to evaluate anywhere (random access, no state)."""

    waves: tuple[tuple[float, float, float], ...]  # (amplitude in widths, wavelength in heights, phase)

    @classmethod
    def from_seed(cls, seed: int) -> Road:
        rng = np.random.default_rng([seed, 0x20AD])
        wavelengths = (rng.uniform(5, 9), rng.uniform(2.5, 4), rng.uniform(1.2, 2))
        amplitudes = np.array([rng.uniform(0.15, 0.25), rng.uniform(0.1, 0.18), rng.uniform(0.03, 0.06)])
        phases = rng.uniform(0, 2 * math.pi, 3)
        slope = float(sum(amplitudes[i] * 2 * math.pi / wavelengths[i] for i in range(3)))
        amplitudes *= min(1.0, _MAX_OFFSET / float(amplitudes.sum()), _MAX_SLOPE / slope)
        return cls(tuple((float(amplitudes[i]), float(wavelengths[i]), float(phases[i])) for i in range(3)))

    def centre(self, u: float) -> float:
        """Road centre at distance u, as a fraction of the window width."""
        return 0.5 + sum(a * math.sin(2 * math.pi * u / w + p) for a, w, p in self.waves)

    def centres(self, u: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`centre` (same values up to float rounding)."""
        out = np.full(u.shape, 0.5)
        for a, w, p in self.waves:
            out += a * np.sin(2 * math.pi * u / w + p)
        return out

    def slope(self, u: float) -> float:
        """d(centre)/du: window widths per screen height."""
        return sum(a * 2 * math.pi / w * math.cos(2 * math.pi * u / w + p) for a, w, p in self.waves)


class Sim:
    """The game state and its fixed step. ``step`` is called once per game tick with the keys seen.

    gusts: push the car sideways at random moments (see GUST_RATE); the gusts come from their own
    generator seeded by ``seed`` and drawn once per step, so they depend on the seed and the step count
    only, never on the keys: a run is still a pure function of (seed, size, tick rate, keys)."""

    def __init__(self, seed: int, size: tuple[int, int] = (320, 240), tick_hz: float = 60.0,
                 gusts: bool = False) -> None:
        self.seed = seed
        self.width, self.height = size
        self.dt = 1.0 / tick_hz
        self.road = Road.from_seed(seed)
        self.u = 0.0  # distance of the bottom row
        self.steps = 0
        self.car_x = self.road_x  # start in the middle of the road
        self.speed = SPEED
        self.gusts = gusts
        self._gust_rng = np.random.default_rng([seed, 0x6057]) if gusts else None
        self._gust_left = 0  # steps the current gust still blows
        self.gust = 0.0  # lateral speed of the current gust, window widths per second (0: calm)

    @property
    def car_u(self) -> float:
        """Distance along the road at the car's row."""
        return self.u + (1.0 - CAR_Y)

    @property
    def car_y(self) -> float:
        """Car centre row, window pixels."""
        return CAR_Y * self.height

    @property
    def road_x(self) -> float:
        """Road centre at the car's row, window pixels."""
        return self.road.centre(self.car_u) * self.width

    @property
    def half_width_px(self) -> float:
        return ROAD_HALF_WIDTH * self.width

    @property
    def on_road(self) -> bool:
        """The car's centre is between the road edges."""
        return abs(self.car_x - self.road_x) <= self.half_width_px

    def row_distance(self, y: np.ndarray) -> np.ndarray:
        """Distance along the road shown at window row(s) y."""
        return self.u + (self.height - y) / self.height

    def step(self, held: int, pressed: int = 0, dx: float = 0.0) -> None:
        """Advance one tick. held: key mask held when the game polled; pressed: keys that went down
        since the previous poll (a key in pressed but not in held was tapped: it nudges the car); dx:
        horizontal mouse motion since the previous poll, counts (moves the car MOUSE_GAIN per count)."""
        steer = ((held & RIGHT) != 0) - ((held & LEFT) != 0)
        taps = pressed & ~held
        nudge = ((taps & RIGHT) != 0) - ((taps & LEFT) != 0)
        self._blow()
        self.car_x += (steer * STEER * self.dt + nudge * TAP + self.gust * self.dt + dx * MOUSE_GAIN) * self.width
        half_car = CAR_W * self.width / 2
        self.car_x = min(max(self.car_x, half_car), self.width - half_car)
        speed = SPEED * (BOOST if held & UP else 1.0)
        self.speed = speed if self.on_road else speed * OFFROAD
        self.u += self.speed * self.dt
        self.steps += 1

    def _blow(self) -> None:
        """Advance the gust process by one step (three draws every step, used or not, so the sequence
        does not depend on what the car does)."""
        if self._gust_rng is None:
            return
        start, speed, length = self._gust_rng.random(3)
        if self._gust_left == 0:
            self.gust = 0.0
            if start < GUST_RATE * self.dt:
                lo, hi = GUST_SPEED
                v = float(lo + (hi - lo) * (2 * speed % 1))  # speed < 0.5 blows right, else left
                self.gust = v if speed < 0.5 else -v
                self._gust_left = max(1, round((GUST_S[0] + (GUST_S[1] - GUST_S[0]) * length) / self.dt))
        if self._gust_left > 0:
            self._gust_left -= 1


__all__ = ["ACTIONS", "LEFT", "MOUSE_GAIN", "RIGHT", "UP", "Road", "Sim"]
