"""Worked reward and episode-end examples for the demo game (``engine-demo``), from its pixels alone.

The game (engine.demo.game, engine.demo.sim) counts the car on the road when its centre is between the
road's edges at the car's row. The same can be read off any RGB frame of its window, at any size the
env shrinks it to (the demo model sees 80x60):

- the car is the only red thing on screen (210, 40, 40); it spans rows 0.80 to 0.90 of the height, so
  its centre column is the centroid of the red pixels in that band;
- the road is gray (82, 82, 88) between two white edges (235): in the row just above the car, the road
  spans the unsaturated pixels (grass is green, the centre line yellow, the car red);
- on the road: the car's centre column is inside that span.

Gray frames cannot tell the car (gray 91) from the road (83) or the grass (85): the env must capture RGB.
The game's own log (``engine-demo --log``) holds the truth the tests compare this with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import EngineError

CAR_BAND = (0.80, 0.90)  # rows the car covers, fractions of the height (engine.demo.sim CAR_Y +- CAR_H / 2)
_RED_MARGIN = 60  # red minus the larger of green and blue above which a pixel counts as car
_GRAY_SPREAD = 30  # max - min over R, G, B below which a pixel counts as road or road edge


def on_road(frame: np.ndarray) -> bool:
    """Whether the demo game's car is on the road in this RGB frame (H, W, 3) of its window, any size."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
        raise EngineError(f"the demo's on-road check reads colours: it needs RGB uint8 (H, W, 3) frames, got "
                          f"{f.dtype} {f.shape}; make the env with color='rgb'")
    h = f.shape[0]
    top, bottom = round(CAR_BAND[0] * h), round(CAR_BAND[1] * h)
    band = f[top:bottom].astype(np.int16)
    red = band[..., 0] - np.maximum(band[..., 1], band[..., 2]) - _RED_MARGIN
    weight = np.clip(red, 0, None).sum(axis=0).astype(np.float64)
    if weight.sum() == 0:
        return False  # no car on screen: not a frame of the demo game
    car_x = float((weight * np.arange(f.shape[1])).sum() / weight.sum()) + 0.5  # pixel centres
    row = f[max(0, top - 1)].astype(np.int16)
    road = np.flatnonzero(row.max(axis=1) - row.min(axis=1) < _GRAY_SPREAD)
    if not len(road):
        return False
    return bool(road[0] <= car_x <= road[-1] + 1)


def demo_reward(frame: np.ndarray, info: dict[str, Any]) -> float:
    """1 for a step whose frame shows the car on the road, else 0: an episode's mean reward is its
    on-road fraction, the score engine-play's demo model is measured by."""
    return 1.0 if on_road(frame) else 0.0


def demo_done(frame: np.ndarray, info: dict[str, Any]) -> bool:
    """The episode ends when the car leaves the road (pair it with ``reset_sequence=DEMO_RESET``)."""
    return not on_road(frame)


# The demo's restart: tap R (the road starts again, the car in the middle of it), then give the game a few
# frames to show it. GameEnv(..., reset_sequence=DEMO_RESET).
DEMO_RESET: tuple[tuple[str, float], ...] = (("r", 0.05), ("", 0.1))


__all__ = ["CAR_BAND", "DEMO_RESET", "demo_done", "demo_reward", "on_road"]
