"""Action names: the one table (native/input/action_table.cpp) seen from Python, and the axes.

Only these names can be recorded or actuated:

- keys and buttons (state 0/1, a uint8 column of actions.npy): letters, digits, arrows, space, enter,
  escape, tab, backspace, shift/ctrl/alt (and r-variants), f1..f12, mouse_left/right/middle, and the
  gamepad buttons pad_a ... pad_right (PAD_BUTTONS);
- axes (continuous, a float32 column of axes.npy, format_version 2): AXIS_NAMES.
  Relative axes (RELATIVE_AXES: mouse_dx, mouse_dy in device units, unaccelerated; wheel in signed
  notches) hold per frame the motion summed over the interval since the previous frame's capture
  instant, so nothing is lost between frames. Absolute axes (ABSOLUTE_AXES) hold their value at the
  capture instant: mouse_x, mouse_y in [0, 1] within the captured area (opt-in); pad sticks pad_lx,
  pad_ly, pad_rx, pad_ry in [-1, 1] (x right, y down, as evdev ABS_X/ABS_Y); triggers pad_lt, pad_rt
  in [0, 1].

One list names both on the command line (``--actions w,a,s,d,mouse_dx,mouse_dy,mouse_left``);
:func:`split_actions` splits it into keys and axes, each in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine import _native
from engine.errors import EngineError

PAD_BUTTONS: tuple[str, ...] = (
    "pad_a", "pad_b", "pad_x", "pad_y", "pad_lb", "pad_rb", "pad_back", "pad_start", "pad_ls", "pad_rs",
    "pad_up", "pad_down", "pad_left", "pad_right",
)
# Keys and buttons: the native table's names, pad buttons included (evdev BTN_* codes and XInput masks;
# X11 and XTest refuse them, saying what they need).
ACTION_NAMES: tuple[str, ...] = tuple(_native.action_names())

RELATIVE_AXES: tuple[str, ...] = ("mouse_dx", "mouse_dy", "wheel")
ABSOLUTE_AXES: tuple[str, ...] = ("mouse_x", "mouse_y", "pad_lx", "pad_ly", "pad_rx", "pad_ry", "pad_lt", "pad_rt")
AXIS_NAMES: tuple[str, ...] = RELATIVE_AXES + ABSOLUTE_AXES
# The range an axis' values lie in; None: unbounded (relative motion in device units or notches).
AXIS_RANGE: dict[str, tuple[float, float] | None] = {
    "mouse_dx": None, "mouse_dy": None, "wheel": None, "mouse_x": (0.0, 1.0), "mouse_y": (0.0, 1.0),
    "pad_lx": (-1.0, 1.0), "pad_ly": (-1.0, 1.0), "pad_rx": (-1.0, 1.0), "pad_ry": (-1.0, 1.0),
    "pad_lt": (0.0, 1.0), "pad_rt": (0.0, 1.0),
}
# The value an axis rests at: what every exit path leaves a virtual pad at (sticks centred, triggers 0).
AXIS_NEUTRAL: dict[str, float] = {name: 0.0 for name in AXIS_NAMES}


def is_axis(name: str) -> bool:
    return name in AXIS_RANGE


def is_relative(name: str) -> bool:
    return name in RELATIVE_AXES


def split_actions(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(keys and buttons, axes) of a validated list, each in the order given."""
    names = list(names)
    return [n for n in names if not is_axis(n)], [n for n in names if is_axis(n)]


def parse_actions(spec: str | Iterable[str], *, what: str = "action", axes: bool = False) -> list[str]:
    """'left,right,up' (or a list) -> validated names in order; one clear error otherwise. axes=True also
    admits AXIS_NAMES (where the caller records or plays them; hotkeys and kill keys never are axes)."""
    valid = ACTION_NAMES + AXIS_NAMES if axes else ACTION_NAMES
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    if not names:
        raise EngineError(f"no {what}s given; valid names: {', '.join(valid)}")
    for n in names:
        if n not in valid:
            hint = " (an axis: not allowed here)" if is_axis(n) else ""
            raise EngineError(f"unknown {what} '{n}'{hint}; valid names: {', '.join(valid)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EngineError(f"{what} {', '.join(dupes)} given twice")
    return names


# The name of the engine's own uinput keyboard (engine.actions.outputs.UinputOutput): engine.actions.inputs
# tells its events from the person's by it.
UINPUT_NAME = "engine virtual keyboard"
# ... and of its virtual gamepad (engine.actions.motion): its stick and buttons are the engine's too.
PAD_NAME = "engine virtual pad"
ENGINE_DEVICE_NAMES = (UINPUT_NAME, PAD_NAME)


def evdev_code(name: str) -> int:
    """Linux input event code (KEY_* / BTN_*) of an action."""
    return int(_native.action_info(name)["evdev_code"])


__all__ = [
    "ABSOLUTE_AXES", "ACTION_NAMES", "AXIS_NAMES", "AXIS_NEUTRAL", "AXIS_RANGE", "ENGINE_DEVICE_NAMES", "PAD_BUTTONS",
    "PAD_NAME", "RELATIVE_AXES", "UINPUT_NAME", "evdev_code", "is_axis", "is_relative", "parse_actions",
    "split_actions",
]
