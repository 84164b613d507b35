"""What one recording takes (RecordConfig) and the checks that turn a bad value into one clear line.

The TOML file and the flags stay in engine/cli/record.py: a config file's keys are the flags' names,
read by the flags' own parsers, so that schema belongs to the command line. What arrives here is
typed values, from the CLI or from Python (tests, the benchmarks, the demo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.actions.inputs import default_input
from engine.actions.names import parse_actions, split_actions
from engine.capture import Color
from engine.errors import EngineError

DEFAULT_ACTIONS = ("left", "right", "up", "down")
DEFAULT_HOTKEYS = {"start": "f9", "pause": "f10", "stop": "f12"}
MAX_FPS = 1000.0
# Larger than any screen: a bound that keeps a typo (99999x99999) a clear error, not a failed allocation.
MAX_SIDE = 8192


@dataclass
class RecordConfig:
    """Everything engine-record takes; see engine/cli/record.py for the flags and their defaults."""

    fps: float = 30.0
    window: str | int | None = None
    region: tuple[int, int, int, int] | None = None
    monitor: int | None = None
    size: tuple[int, int] | None = None  # None: auto_size() of the captured area
    color: Color = "gray"
    actions: list[str] = field(default_factory=lambda: list(DEFAULT_ACTIONS))
    game: str = "game"
    name: str | None = None
    data_dir: Path | None = None
    duration: float | None = None
    countdown: float = 3.0
    input: str = field(default_factory=default_input)  # x11 on Linux, rawinput on Windows
    hotkeys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOTKEYS))
    wait_for_start: bool = False
    backend: str = "default"
    display: str | None = None
    queue_seconds: float = 2.0
    compress: bool = False  # frames compressed chunk by chunk while recording (SessionWriter.create)
    pad: str | None = None  # the gamepad to read (evdev), by name or path; None: every pad found

    @property
    def keys(self) -> list[str]:
        """The keys and buttons of ``actions`` (actions.npy's columns), in the order given."""
        return split_actions(self.actions)[0]

    @property
    def axes(self) -> list[str]:
        """The axes of ``actions`` (axes.npy's columns), in the order given."""
        return split_actions(self.actions)[1]

    def validate(self) -> None:
        """Raise EngineError naming the flag for the first bad value; normalise the action names."""
        if not (0 < self.fps <= MAX_FPS) or not math.isfinite(self.fps):
            raise EngineError(f"--fps must be in (0, {MAX_FPS:g}], got {self.fps:g}")
        if self.duration is not None and not self.duration > 0:
            raise EngineError(f"--duration must be positive, got {self.duration:g}")
        if self.countdown < 0:
            raise EngineError(f"--countdown must be >= 0, got {self.countdown:g}")
        if self.color not in ("gray", "rgb"):
            raise EngineError(f"--color must be gray or rgb, not {self.color!r}")
        if self.size is not None and (self.size[0] <= 0 or self.size[1] <= 0):
            raise EngineError(f"--size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.size is not None and max(self.size) > MAX_SIDE:
            raise EngineError(f"--size {self.size[0]}x{self.size[1]} is too large: each side must be at most "
                              f"{MAX_SIDE} (and at most the captured area)")
        if self.window is not None and self.monitor is not None:
            raise EngineError("give --window or --monitor, not both (--region may narrow a window)")
        self.actions = parse_actions(self.actions, axes=True)
        if self.pad is not None and self.input != "evdev":
            raise EngineError(f"--pad needs --input evdev (the {self.input} input reads no gamepad by name)")
        unknown = set(self.hotkeys) - set(DEFAULT_HOTKEYS)
        if unknown:
            raise EngineError(f"unknown hotkey role(s) {', '.join(sorted(unknown))}; valid: start, pause, stop")
        keys = parse_actions(list(self.hotkeys.values()), what="hotkey")
        clash = sorted(set(keys) & set(self.actions))
        if clash:
            raise EngineError(f"hotkey {', '.join(clash)} is also a recorded action; pick another with --hotkeys")

    def hotkey_list(self) -> list[str]:
        """The hotkeys in role order (start, pause, stop): the listener reports hotkey i as this index."""
        return [self.hotkeys.get(r, DEFAULT_HOTKEYS[r]) for r in DEFAULT_HOTKEYS]


def auto_size(width: int, height: int, max_width: int = 320) -> tuple[int, int]:
    """Default output size: the area divided by the smallest integer factor that fits max_width."""
    f = max(1, math.ceil(width / max_width))
    return max(1, round(width / f)), max(1, round(height / f))


__all__ = ["DEFAULT_ACTIONS", "DEFAULT_HOTKEYS", "MAX_FPS", "MAX_SIDE", "RecordConfig", "auto_size"]
