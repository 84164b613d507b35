"""Action names: the one table (native/input/action_table.cpp) seen from Python.

Only these names can be recorded or actuated: letters, digits, arrows, space, enter, escape, tab,
backspace, shift/ctrl/alt (and r-variants), f1..f12, mouse_left/right/middle.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine import _native
from engine.errors import EngineError

ACTION_NAMES: tuple[str, ...] = tuple(_native.action_names())


def parse_actions(spec: str | Iterable[str], *, what: str = "action") -> list[str]:
    """'left,right,up' (or a list) -> validated names in order; one clear error otherwise."""
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    if not names:
        raise EngineError(f"no {what}s given; valid names: {', '.join(ACTION_NAMES)}")
    for n in names:
        if n not in ACTION_NAMES:
            raise EngineError(f"unknown {what} '{n}'; valid names: {', '.join(ACTION_NAMES)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EngineError(f"{what} {', '.join(dupes)} given twice")
    return names


# The name of the engine's own uinput keyboard (engine.actions.outputs.UinputOutput): engine.actions.inputs
# tells its events from the person's by it.
UINPUT_NAME = "engine virtual keyboard"


def evdev_code(name: str) -> int:
    """Linux input event code (KEY_* / BTN_*) of an action."""
    return int(_native.action_info(name)["evdev_code"])


__all__ = ["ACTION_NAMES", "UINPUT_NAME", "evdev_code", "parse_actions"]
