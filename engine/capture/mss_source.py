"""The portable fallback backend through python-mss (and the reference the native grabbers are tested
against), plus the monitor list, which mss numbers the way the engine does: 0 is the whole virtual
screen, 1 the first monitor.

The native capture loop drives this backend too (``CaptureSource.loop_source``): only the grab itself
runs in Python. Named ``mss_source``, not ``mss``, so that it never stands in for python-mss itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from engine.capture.base import CaptureSource, Rect
from engine.errors import CaptureError, EngineError


def display_name(display: str) -> str:
    """The X display a connection to ``display`` opens ("" means $DISPLAY), for messages."""
    return display or os.environ.get("DISPLAY", "")


def _open_mss(display: str) -> Any:
    """An mss.MSS for the display; its refusal (e.g. an X pixel format it cannot read) as CaptureError."""
    import mss
    from mss.exception import ScreenShotError

    kwargs: dict[str, Any] = {"display": display} if display and sys.platform.startswith("linux") else {}
    try:
        return mss.MSS(**kwargs)
    except ScreenShotError as e:
        where = f" X display {display_name(display)!r}" if sys.platform.startswith("linux") else " the screen"
        raise CaptureError(f"mss cannot capture{where}: {e}") from e


class MssSource(CaptureSource):
    """Portable fallback through python-mss (and the reference the native grabber is tested against)."""

    backend = "mss"

    def __init__(
        self,
        *,
        display: str = "",
        region: Rect | None = None,
        monitor: int | None = None,
        window: str | int | None = None,
    ) -> None:
        if window is not None:
            raise EngineError("the mss backend cannot follow a window; use the x11 backend or pass --region")
        self._mss: Any = _open_mss(display)  # None once closed
        self.path = "mss"
        if region is None:
            mon = self._mss.monitors[monitor if monitor is not None else 1]
            region = (mon["left"], mon["top"], mon["width"], mon["height"])
        self._rect = _check_region(region, self._mss.monitors[0])
        x, y, w, h = self._rect
        self._area = {"left": x, "top": y, "width": w, "height": h}

    @property
    def rect(self) -> Rect:
        return self._rect

    def grab(self) -> np.ndarray:
        shot = self._mss.grab(self._area)
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)

    def close(self) -> None:
        if self._mss is not None:
            self._mss.close()
            self._mss = None


def _check_region(region: Rect, screen: dict[str, int]) -> Rect:
    x, y, w, h = (int(v) for v in region)
    sx, sy, sw, sh = screen["left"], screen["top"], screen["width"], screen["height"]
    if w <= 0 or h <= 0:
        raise EngineError(f"region {x},{y},{w},{h} has no area; give X,Y,W,H with W and H > 0")
    if x < sx or y < sy or x + w > sx + sw or y + h > sy + sh:
        raise EngineError(f"region {x},{y},{w},{h} is outside the screen ({sw}x{sh}); pick X,Y,W,H inside it")
    return x, y, w, h


def monitor_rect(monitor: int, display: str = "") -> Rect:
    """Rectangle of monitor N as mss numbers them: 0 is the whole virtual screen, 1 the first monitor."""
    with _open_mss(display) as sct:
        monitors = sct.monitors
    if not 0 <= monitor < len(monitors):
        last = len(monitors) - 1
        raise EngineError(f"monitor {monitor} does not exist; this display has monitors 0..{last}")
    m = monitors[monitor]
    return m["left"], m["top"], m["width"], m["height"]


__all__ = ["MssSource", "display_name", "monitor_rect"]
