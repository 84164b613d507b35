"""Actions: the one table that names what the engine may read or send (keys, mouse buttons; axes next),
and the layers that read them from a person (inputs) and send them to a game (outputs)."""

from __future__ import annotations

from engine.actions.inputs import INPUTS, InputSource, default_input, hotkey_listener, open_input
from engine.actions.names import ACTION_NAMES, evdev_code, parse_actions

__all__ = ["ACTION_NAMES", "INPUTS", "InputSource", "default_input", "evdev_code", "hotkey_listener", "open_input",
           "parse_actions"]
