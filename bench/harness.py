"""Shared benchmark helpers: result rows, the side-by-side table, the machine description, timing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import _native
from engine.demo.process import DemoProcess

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    group: str  # the operation, e.g. "grab+convert 1920x1080 -> 160x120 gray"
    name: str  # who did it: "engine", "mss+numpy+opencv", ...
    value: float  # the measured quantity, in `unit`
    unit: str  # "ms/frame", "fps", "MB", "GB/s", ...
    # > 1: the engine is better, same run. On the engine row: the engine against the reference row of its
    # group (the one marked 1.0); on any other row (naive loops...): the engine against that row.
    ratio: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    module: str = ""  # the bench module that measured it (filled in by Report.add)


class Report:
    """Rows collected during the run; printed and saved at the end."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rows: list[Row] = []
        self.texts: list[tuple[str, str]] = []  # (title, text): tables printed beside the rows, e.g. profiles

    def add(self, group: str, name: str, value: float, unit: str, *, ratio: float | None = None,
            note: str = "", **extra: Any) -> None:
        module = str(sys._getframe(1).f_globals.get("__name__", ""))
        self.rows.append(Row(group, name, float(value), unit, ratio, note, extra, module))

    def add_text(self, title: str, text: str) -> None:
        """A preformatted table (a line_profiler listing...): printed with the rows, saved to bench/results/."""
        self.texts.append((title, text))

    def table(self) -> str:
        lines = [f"{'operation':<52} {'who':<30} {'value':>12} {'unit':<10} {'ratio':>7}  note"]
        last = None
        for r in self.rows:
            group = r.group if r.group != last else ""
            last = r.group
            ratio = f"{r.ratio:6.1f}x" if r.ratio is not None else ""
            lines.append(f"{group:<52} {r.name:<30} {r.value:12.4g} {r.unit:<10} {ratio:>7}  {r.note}")
        lines.append("ratio: > 1 means the engine is better; on an engine row, the engine against its group's row "
                     "marked 1.0x; on any other row, the engine against that row")
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
        "loadavg": list(os.getloadavg()),  # 1, 5, 15 min at the end of the run: how busy the machine was
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


def ratio(engine: float, reference: float, *, higher_is_better: bool = False) -> float | None:
    """The table's ratio (> 1: the engine is better): reference / engine for costs, engine / reference for
    rates. None when either side measured nothing."""
    if engine <= 0 or reference <= 0:
        return None
    return engine / reference if higher_is_better else reference / engine


def steady_cpu_ms(snapshots: list[tuple[float, int]]) -> float:
    """Process CPU per frame (ms) from (process_time s, frames done) snapshots taken during a run.

    The first snapshot after the start is the baseline when there are enough, so start-up (first grabs,
    the first chunk of the file) does not count; process_time covers every thread, native ones included.
    """
    snaps = snapshots[1:] if len(snapshots) >= 3 else snapshots
    (c0, f0), (c1, f1) = snaps[0], snaps[-1]
    return (c1 - c0) / (f1 - f0) * 1e3 if f1 > f0 else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (e.g. the X server, which does the screen copies)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


_TAPPER = """
import select, sys
import numpy as np
from engine import _native
display, keys, hold, gap = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), float(sys.argv[4])
act = _native.XTestActuator(display, keys)
state = np.zeros(len(keys), np.uint8)
presses, i = 0, 0
print("READY", flush=True)
def stopped(s):  # stdin closed: the benchmark is done
    return bool(select.select([sys.stdin], [], [], s)[0])
try:
    while True:
        state[:] = 0
        state[i % len(keys)] = 1
        act.apply(state)
        presses += 1
        if stopped(hold):
            break
        act.release_all()
        if stopped(gap):
            break
        i += 1
finally:
    act.release_all()
try:
    print(presses, flush=True)
except BrokenPipeError:  # the benchmark ended without reading it
    pass
"""


class KeyTapper:
    """Presses and releases keys through XTest while a benchmark records, so labels are real.

    Each key in turn is held for ``hold_s`` then released for ``gap_s``; every key is up again on exit.
    It runs in a process of its own, as a person's keyboard is outside the recorder: a thread in the
    benchmark's process put its own CPU (about 0.05 ms per 60 fps frame under load, AMD EPYC Zen 4) and
    its GIL hand-offs into the process CPU the recorders are measured by, the same absolute amount in
    both, which shrank the ratio between them.
    """

    def __init__(self, display: str, keys: list[str], hold_s: float = 0.06, gap_s: float = 0.04) -> None:
        self._args = [sys.executable, "-c", _TAPPER, display, ",".join(keys), str(hold_s), str(gap_s)]
        self._proc: subprocess.Popen[str] | None = None
        self.presses = 0

    def __enter__(self) -> KeyTapper:
        self._proc = subprocess.Popen(self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if line.strip() != "READY":
            self._proc.kill()
            self._proc.communicate()
            raise RuntimeError(f"the key tapper did not start: {line.strip() or 'no output'}")
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        out = proc.stdout.read().strip()
        proc.stdout.close()
        proc.wait(10)
        self.presses = int(out) if out.isdigit() else 0
        self._proc = None


class DemoGame(DemoProcess):
    """engine-demo, the bundled game, in a subprocess on the benchmark's display (a real X11 window)."""

    def __init__(self, display: str, *args: str, timeout: float = 30.0) -> None:
        super().__init__(*args, display=display, timeout=timeout)

    @property
    def output(self) -> str:
        """What the game printed, once stopped."""
        return self.stdout + self.stderr
