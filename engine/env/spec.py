"""What an environment observes: the frame window a model sidecar describes, without the model.

A :class:`FrameSpec` holds the capture side of an ``m.json`` (engine.sidecar): the capture rate, the frame
size and colour, how many frames one observation holds (``window``), how far apart (``skip``), and how they
are laid out. The observation is uint8 pixels in the model's input layout without the batch axis:

    layout "frames":   (window, height, width, C), frame 0 the oldest
    layout "channels": (height, width, window * C), channel f*C + c holding channel c of frame f

with C = 1 for gray and 3 for RGB: exactly the model's input tensor before the sidecar's pixel scaling, so
a policy that applies that scaling feeds its model what engine-play feeds it. Nothing here needs gymnasium.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from engine.errors import EngineError
from engine.sidecar import CHANNELS, Color, FrameGeometry, Layout, ModelSidecar

DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class FrameSpec(FrameGeometry):
    """The frames of one observation. Construct with keyword arguments or :meth:`from_sidecar`; both validate."""

    frame_size: tuple[int, int]  # (width, height) of one frame
    color: Color = "rgb"
    window: int = 1
    skip: int = 1
    layout: Layout = "frames"
    fps: float = DEFAULT_FPS

    def __post_init__(self) -> None:
        fs = self.frame_size
        if not (isinstance(fs, (tuple, list)) and len(fs) == 2
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 < v <= 8192 for v in fs)):
            raise EngineError(f"frame_size must be (width, height) in pixels, 1 to 8192 each, got {fs!r}")
        object.__setattr__(self, "frame_size", (int(fs[0]), int(fs[1])))
        if self.color not in CHANNELS:
            raise EngineError(f"color must be 'gray' or 'rgb', not {self.color!r}")
        for name in ("window", "skip"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                what = "window (frames per observation)" if name == "window" else "skip (frames between two observed)"
                raise EngineError(f"{what} must be a whole number >= 1, got {v!r}")
        if self.layout not in ("frames", "channels"):
            raise EngineError(f"layout must be 'frames' or 'channels', not {self.layout!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not (
                math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise EngineError(f"fps must be a number in (0, 1000], got {self.fps!r}")
        object.__setattr__(self, "fps", float(self.fps))

    @classmethod
    def from_sidecar(cls, sidecar: ModelSidecar, *, fps: float | None = None) -> FrameSpec:
        """The frames a model with this sidecar is fed (``fps`` overrides the sidecar's rate)."""
        return cls(frame_size=tuple(sidecar.frame_size), color=sidecar.color,  # type: ignore[arg-type]
                   window=sidecar.window, skip=sidecar.skip, layout=sidecar.layout,
                   fps=sidecar.fps if fps is None else fps)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One captured frame: (height, width) gray or (height, width, 3) RGB."""
        return (self.height, self.width) if self.color == "gray" else (self.height, self.width, 3)

    @property
    def shape(self) -> tuple[int, ...]:
        """The observation's frames array (the model input shape without its batch axis)."""
        if self.layout == "frames":
            return (self.window, self.height, self.width, self.channels)
        return (self.height, self.width, self.window * self.channels)


__all__ = ["DEFAULT_FPS", "FrameSpec"]
