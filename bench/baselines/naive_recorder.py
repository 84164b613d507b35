"""The naive recorder hobby projects start from, written the way they write it.

This is the loop of the "Python plays <game>" get_training_data scripts (shared/seeds/000, the
``capture_memory_test``/``exp_record`` functions profiled there), brought up to today's libraries and
nothing else:

- ``np.array(sct.grab(...))`` of the game region, ``cv2.cvtColor(..., COLOR_BGR2GRAY)``,
  ``cv2.resize(..., (160, 120))`` with OpenCV's default interpolation, exactly as in the seed;
- key polling once per frame: the seed calls ``keyboard.is_pressed`` per key, which asks the OS for the
  key state; here the configured keys' state comes from the X server in one XQueryKeymap round trip
  (``XTestActuator.system_held()``), the closest honest equivalent on X11;
- ``[frame, output]`` appended to a list, and ``np.save`` of the whole list every 500 frames. NumPy 1.24+
  refuses to build an array from that ragged list, so such scripts now pass ``dtype=object`` (the frames
  are pickled inside the .npy), which is the one change made to the seed's line;
- no pacing: the loop runs as fast as it can, so the frame rate is whatever the machine gives.

``store_frames`` is the same storage lines alone, fed frames that were grabbed beforehand, so the cost
of storage can be measured against session length without the grab in the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from engine import _native

SAVE_EVERY = 500


def record(n_frames: int, region: tuple[int, int, int, int], file_name: str | Path, *,
           keys: Sequence[str] = ("a", "w", "d"), display: str = "", save_every: int = SAVE_EVERY) -> list[list[Any]]:
    """Record ``n_frames`` of ``region`` (x, y, w, h) into ``file_name``; returns the training data list."""
    sct = mss.MSS()
    keyboard = _native.XTestActuator(display, list(keys))
    left, top, width, height = region
    training_data: list[list[Any]] = []
    for _ in range(n_frames):
        screen = np.array(sct.grab((left, top, left + width, top + height)))
        screen = cv2.cvtColor(screen, cv2.COLOR_BGR2GRAY)
        screen = cv2.resize(screen, (160, 120))
        pressed = keyboard.system_held()
        if pressed[0]:
            output = [1, 0, 0]
        elif pressed[1]:
            output = [0, 1, 0]
        elif pressed[2]:
            output = [0, 0, 1]
        else:
            output = [0, 0, 0]
        training_data.append([screen, output])
        if len(training_data) % save_every == 0:
            np.save(file_name, np.array(training_data, dtype=object))
    sct.close()
    return training_data


def store_frames(frames: Iterable[np.ndarray], outputs: Iterable[list[int]], file_name: str | Path, *,
                 save_every: int = SAVE_EVERY) -> list[list[Any]]:
    """The storage lines of :func:`record` alone: append each [frame, output], save the list every 500."""
    training_data: list[list[Any]] = []
    for screen, output in zip(frames, outputs, strict=True):
        training_data.append([screen, output])
        if len(training_data) % save_every == 0:
            np.save(file_name, np.array(training_data, dtype=object))
    return training_data


def load(file_name: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """What a training script reads back: (frames (T, 120, 160) uint8, outputs (T, 3))."""
    data = np.load(file_name, allow_pickle=True)
    return np.stack(data[:, 0]), np.array(data[:, 1].tolist())
