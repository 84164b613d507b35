"""Shared benchmark helpers: result rows, the side-by-side table, the machine description, timing."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import _native

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    group: str  # the operation, e.g. "grab+convert 1920x1080 -> 160x120 gray"
    name: str  # who did it: "engine", "mss+numpy+opencv", ...
    value: float  # the measured quantity, in `unit`
    unit: str  # "ms/frame", "fps", "MB", "GB/s", ...
    ratio: float | None = None  # reference / engine (> 1: the engine is better), same run
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Report:
    """Rows collected during the run; printed and saved at the end."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rows: list[Row] = []

    def add(self, group: str, name: str, value: float, unit: str, *, ratio: float | None = None,
            note: str = "", **extra: Any) -> None:
        self.rows.append(Row(group, name, float(value), unit, ratio, note, extra))

    def table(self) -> str:
        lines = [f"{'operation':<52} {'who':<30} {'value':>12} {'unit':<10} {'ratio':>7}  note"]
        last = None
        for r in self.rows:
            group = r.group if r.group != last else ""
            last = r.group
            ratio = f"{r.ratio:6.1f}x" if r.ratio is not None else ""
            lines.append(f"{group:<52} {r.name:<30} {r.value:12.4g} {r.unit:<10} {ratio:>7}  {r.note}")
        return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cv2
    import mss

    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "mss": mss.__version__,
        "engine": _native.__version__,
        "kernel_path": _native.best_kernel_path(),
        "display": "Xvfb 1920x1080x24",
    }


def game_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Game-like RGB content: gradients, hard edges and noise (what real frames look like to a cache)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from scenes import scene  # the tests' generator: one definition of "game-like"

    return scene(h, w, seed)


def per_call_ms(fn: Callable[[], object], rounds: int, warmup: int = 5) -> np.ndarray:
    """Wall time of each call in ms (after warm-up): the same clock for engine and reference."""
    for _ in range(warmup):
        fn()
    out = np.empty(rounds)
    for i in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out
