"""The naive recorder's other common shape: a dict of lists in memory, pickled once at the end.

The seed (shared/seeds/000, "Pickle instead of np.load/save") moved to pickle because it "does consume
slightly less memory and probably execution time": there is no save inside the loop, so the per-frame
cost stays flat, but every frame stays in memory until the end (memory grows with the session) and a
crash before the end loses everything. Grab, convert and key polling are the same lines as
``naive_recorder``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from engine import _native


def record(n_frames: int, region: tuple[int, int, int, int], file_name: str | Path, *,
           keys: Sequence[str] = ("a", "w", "d"), display: str = "") -> dict[str, list[Any]]:
    """Record ``n_frames`` of ``region`` (x, y, w, h); pickle {"screen_frames", "key_frames"} at the end."""
    sct = mss.MSS()
    keyboard = _native.XTestActuator(display, list(keys))
    left, top, width, height = region
    data: dict[str, list[Any]] = {"screen_frames": [], "key_frames": []}
    for _ in range(n_frames):
        screen = np.array(sct.grab((left, top, left + width, top + height)))
        screen = cv2.cvtColor(screen, cv2.COLOR_BGR2GRAY)
        screen = cv2.resize(screen, (160, 120))
        pressed = keyboard.system_held()
        data["screen_frames"].append(screen)
        data["key_frames"].append([int(p) for p in pressed])
    with open(file_name, "wb") as f:
        pickle.dump(data, f)
    sct.close()
    return data


def store_frames(frames: Iterable[np.ndarray], outputs: Iterable[list[int]],
                 file_name: str | Path) -> dict[str, list[Any]]:
    """The storage lines of :func:`record` alone: append to the dict's lists, pickle it at the end."""
    data: dict[str, list[Any]] = {"screen_frames": [], "key_frames": []}
    for screen, output in zip(frames, outputs, strict=True):
        data["screen_frames"].append(screen)
        data["key_frames"].append(output)
    with open(file_name, "wb") as f:
        pickle.dump(data, f)
    return data


def load(file_name: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, 120, 160) uint8, keys (T, A)) from the pickle."""
    with open(file_name, "rb") as f:
        data = pickle.load(f)
    return np.stack(data["screen_frames"]), np.array(data["key_frames"])
