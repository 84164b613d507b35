"""The best plain-Python play loop: the decisions engine-play makes, made the way a Python script makes them.

One thread, ticking at the model's fps on ``time.sleep`` to absolute deadlines (a tick more than a period
late is dropped, never caught up): grab the window's area with mss (the pixels viewed in place), convert and
shrink with OpenCV (gray, INTER_AREA, as the model was trained), keep the last ``window`` frames, stack
them in the model's input layout as float32 scaled by the sidecar's ``scale``, ``set_tensor``, ``invoke``,
threshold the outputs (multi-hot, the sidecar's thresholds) and send the changed keys through XTest.

The interpreter is LiteRT's, loaded from the same .tflite file as the engine's. Because everything is in
one loop, an invoke slower than the frame period delays the next grab: frames in the model's window end
up further apart than the spacing it was trained on (``spacing_ms`` says by how much).
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from engine import _native


@dataclass
class PlayStats:
    """Per decision: capture instant, invoke start, invoke time, keys-sent instant, events (ns, ints)."""

    fps: float
    rows: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    spacing_ns: list[int] = field(default_factory=list)  # mean gap between the frames of each window fed
    captured: int = 0
    dropped: int = 0  # ticks more than a period late
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def arrays(self) -> dict[str, np.ndarray]:
        rows = np.array(self.rows, np.int64).reshape(-1, 5)
        names = ("t_capture_ns", "t_invoke_ns", "invoke_ns", "t_sent_ns", "events")
        out = {n: rows[:, i] for i, n in enumerate(names)}
        out["latency_ns"] = out["t_sent_ns"] - out["t_capture_ns"]
        return out


class PythonPlayer:
    """Plays ``model_path`` (with its sidecar ``.json``) on ``region`` (x, y, w, h), sending ``keys``."""

    def __init__(self, model_path: Path, region: tuple[int, int, int, int], keys: list[str], *,
                 display: str = "", fps: float | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        spec = json.loads(model_path.with_suffix(".json").read_text())
        self.fps = float(fps or spec["fps"])
        self.size = (int(spec["frame_size"][0]), int(spec["frame_size"][1]))
        self.window = int(spec["window"])
        self.layout = str(spec["layout"])
        self.multiply = np.float32(spec["scale"]["multiply"])
        self.add = np.float32(spec["scale"]["add"])
        self.thresholds = np.asarray(spec["thresholds"], np.float32)
        self.interpreter = Interpreter(model_path=str(model_path))
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._sct = mss.MSS()
        x, y, w, h = region
        self._area = {"left": x, "top": y, "width": w, "height": h}
        self.keyboard = _native.XTestActuator(display, keys)

    def grab(self) -> np.ndarray:
        shot = self._sct.grab(self._area)
        return np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)

    def preprocess(self, bgra: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY)
        return cv2.resize(gray, self.size, interpolation=cv2.INTER_AREA)

    def tensor(self, frames: Any) -> np.ndarray:
        """The input tensor for a window of gray frames, oldest first."""
        stacked = np.stack(frames).astype(np.float32) * self.multiply + self.add  # (window, H, W)
        if self.layout == "frames":
            return stacked[None, ..., None]  # (1, window, H, W, 1)
        return stacked.transpose(1, 2, 0)[None]  # (1, H, W, window)

    def decide(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input, x)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output).reshape(-1)
        return (out >= self.thresholds).astype(np.uint8)

    def run(self, duration_s: float) -> PlayStats:
        st = PlayStats(self.fps)
        period = round(1e9 / self.fps)
        n_ticks = round(duration_s * self.fps)
        clock = time.monotonic_ns
        frames: deque[np.ndarray] = deque(maxlen=self.window)
        stamps: deque[int] = deque(maxlen=self.window)
        c0 = time.process_time()
        start = clock()
        tick = 0
        while tick < n_ticks:
            due = start + tick * period
            now = clock()
            if now < due:
                time.sleep((due - now) / 1e9)
                now = clock()
            if now - due > period:  # more than a period late: drop the missed ticks, never catch up
                missed = (now - due) // period
                st.dropped += missed
                tick += missed
                if tick >= n_ticks:
                    break
            tick += 1
            t_cap = clock()
            frames.append(self.preprocess(self.grab()))
            stamps.append(t_cap)
            st.captured += 1
            if len(frames) < self.window:
                continue
            x = self.tensor(frames)
            self.interpreter.set_tensor(self._input, x)
            t_inv = clock()
            self.interpreter.invoke()
            t_done = clock()
            out = self.interpreter.get_tensor(self._output).reshape(-1)
            state = (out >= self.thresholds).astype(np.uint8)
            events = self.keyboard.apply(state)
            t_sent = clock()
            st.rows.append((t_cap, t_inv, t_done - t_inv, t_sent, int(events)))
            if self.window > 1:
                st.spacing_ns.append((stamps[-1] - stamps[0]) // (self.window - 1))
        st.wall_s = (clock() - start) / 1e9
        st.cpu_s = time.process_time() - c0
        self.keyboard.release_all()
        return st

    def close(self) -> None:
        self.keyboard.release_all()
        self._sct.close()
