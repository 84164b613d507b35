"""The plain-Python real-time step loop a Gymnasium wrapper over a game is usually built from.

``step(action)``: send the changed keys through XTest (the engine's actuator, the same calls engine.env makes),
sleep to the next absolute deadline on ``time.monotonic_ns`` (``next += period``; a deadline more than a period
past is dropped, never caught up), grab the window's area with mss, convert BGRA -> RGB and shrink with OpenCV
(INTER_AREA, as engine-record's area resize), push it into a deque of the last ``window`` frames and stack
them on the channel axis: the observation engine.env returns for the demo model, made in the agent's thread.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import mss
import numpy as np

from engine import _native


class PythonStepLoop:
    """Observations of ``region`` (x, y, w, h) as ``size`` RGB frames, ``window`` stacked, at ``fps``."""

    def __init__(self, region: tuple[int, int, int, int], keys: list[str], *, size: tuple[int, int], window: int,
                 fps: float, display: str = "") -> None:
        x, y, w, h = region
        self._area = {"left": x, "top": y, "width": w, "height": h}
        self._sct = mss.MSS()
        self.keyboard = _native.XTestActuator(display, keys)
        self.size, self.window = size, window
        self.period_ns = round(1e9 / fps)
        self._frames: deque[np.ndarray] = deque(maxlen=window)
        self._next = 0
        self.dropped = 0  # deadlines more than a period past, skipped

    def _grab(self) -> np.ndarray:
        shot = self._sct.grab(self._area)
        bgra = np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)
        return cv2.resize(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB), self.size, interpolation=cv2.INTER_AREA)

    def _observe(self) -> np.ndarray:
        return np.concatenate(list(self._frames), axis=2)  # (H, W, window * 3), oldest first

    def reset(self) -> np.ndarray:
        self.keyboard.release_all()
        for _ in range(self.window):
            self._frames.append(self._grab())
        self._next = time.monotonic_ns() + self.period_ns
        return self._observe()

    def step(self, action: np.ndarray) -> np.ndarray:
        self.keyboard.apply(action)
        now = time.monotonic_ns()
        if now - self._next > self.period_ns:  # more than a period late: drop the missed deadlines
            missed = (now - self._next) // self.period_ns
            self.dropped += missed
            self._next += missed * self.period_ns
        if now < self._next:
            time.sleep((self._next - now) / 1e9)
        self._next += self.period_ns
        self._frames.append(self._grab())
        return self._observe()

    def close(self) -> None:
        self.keyboard.release_all()
        self._sct.close()
