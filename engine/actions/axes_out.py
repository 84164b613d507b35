"""The axis half of every output (engine.actions.outputs): relative motion spread over the frame period,
the pointer placed for absolute axes, pad buttons and pad axes on a virtual pad. The outputs differ only
in the ``move``, ``warp`` and pad they hand to :meth:`AxesOutput._open_axes`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.actions.motion import MOUSE_ABSOLUTE, PAD_AXES, MotionSpreader, PointerWarp, pad_parts
from engine.actions.names import PAD_BUTTONS, RELATIVE_AXES
from engine.errors import EngineError


class AxesOutput:
    """What every output does with axes and pad buttons (a base class: the outputs differ only in the
    ``move``, ``warp`` and pad they hand to :meth:`_open_axes`)."""

    name = ""
    axes: tuple[str, ...] = ()
    _spreader: MotionSpreader | None = None
    _warp: PointerWarp | None = None
    _pad: Any = None
    _pad_keys: np.ndarray = np.zeros(0, np.intp)  # indices of pad buttons among the actions
    _pad_axes: np.ndarray = np.zeros(0, np.intp)  # indices of pad axes among the axes
    _pad_values: np.ndarray = np.zeros(0, np.float32)
    _pad_held: np.ndarray = np.zeros(0, np.uint8)

    def _open_axes(self, actions: Sequence[str], axes: Sequence[str], *, fps: float | None,
                   region: Sequence[int] | None, move: Callable[[int, int, int], int] | None,
                   warp: Callable[[int, int], None] | None, pad: Callable[[list[str], list[str]], Any] | None) -> None:
        self.axes = tuple(axes)
        buttons, pad_axes = pad_parts(actions, axes)
        if (buttons or pad_axes) and pad is None:
            raise EngineError(f"the {self.name} output cannot send {', '.join(buttons + pad_axes)}: there is no "
                              "gamepad there; use --output uinput (Linux) or sendinput with ViGEm (Windows)")
        if any(a in RELATIVE_AXES for a in axes):
            if move is None:
                raise EngineError(f"the {self.name} output cannot move the mouse")
            if fps is None:
                raise EngineError("relative mouse axes need the frame rate to spread motion over (fps)")
            self._spreader = MotionSpreader(move, 1.0 / fps)
        if any(a in MOUSE_ABSOLUTE for a in axes):
            if warp is None:
                raise EngineError(f"the {self.name} output cannot place the pointer")
            self._warp = PointerWarp(warp, region or ())
        self._pad_keys = np.array([i for i, a in enumerate(actions) if a in PAD_BUTTONS], np.intp)
        self._pad_axes = np.array([i for i, a in enumerate(axes) if a in PAD_AXES], np.intp)
        self._pad_values = np.zeros(len(self._pad_axes), np.float32)
        self._pad_held = np.zeros(len(self._pad_keys), np.uint8)
        if buttons or pad_axes:
            assert pad is not None
            self._pad = pad(buttons, pad_axes)

    def _apply_pad_buttons(self, state: np.ndarray) -> int:
        if self._pad is None or not len(self._pad_keys):
            return 0
        self._pad_held = np.asarray(state, np.uint8)[self._pad_keys]
        return int(self._pad.set(self._pad_held, self._pad_values))

    def apply_axes(self, values: np.ndarray) -> int:
        values = np.asarray(values, np.float32).reshape(-1)
        if len(values) != len(self.axes):
            raise EngineError(f"expected {len(self.axes)} axis values ({', '.join(self.axes) or 'none'}), "
                              f"got {len(values)}")
        sent = 0
        if self._spreader is not None:
            v = dict(zip(self.axes, values.tolist(), strict=True))
            sent += self._spreader.add(v.get("mouse_dx", 0.0), v.get("mouse_dy", 0.0), v.get("wheel", 0.0))
        if self._warp is not None:
            for i, name in enumerate(self.axes):
                if name in MOUSE_ABSOLUTE:
                    self._warp.set(MOUSE_ABSOLUTE.index(name), float(values[i]))
            sent += self._warp.flush()
        if self._pad is not None:
            self._pad_values = values[self._pad_axes]
            sent += int(self._pad.set(self._pad_held, self._pad_values))
        return sent

    def _stop_axes(self) -> int:
        """Stop motion in flight; pad neutral. Never raises (exit paths)."""
        if self._spreader is not None:
            self._spreader.stop()
        self._pad_held = np.zeros_like(self._pad_held)
        self._pad_values = np.zeros_like(self._pad_values)
        if self._pad is not None:
            try:
                return int(self._pad.neutral())
            except Exception:
                return 0
        return 0

    def _close_axes(self) -> None:
        if self._spreader is not None:
            self._spreader.close()
        if self._pad is not None:
            pad, self._pad = self._pad, None
            pad.close()

    def wait_motion(self, timeout: float = 1.0) -> bool:
        """Wait until all the relative motion asked for so far was sent (tests, and a clean end of play)."""
        return self._spreader.wait_idle(timeout) if self._spreader is not None else True

    @property
    def motion_sent(self) -> tuple[int, int, int]:
        """Relative motion sent so far (dx, dy, wheel)."""
        s = self._spreader
        return (0, 0, 0) if s is None else (int(s.sent[0]), int(s.sent[1]), int(s.sent[2]))


__all__ = ["AxesOutput"]
