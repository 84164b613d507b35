"""Linux evdev events to the engine's actions and axes: a pure translation, apart from reading devices.

EvdevInput (engine.actions.inputs) reads (type, code, value) rows from /dev/input/event* and feeds each
device's rows to its own :class:`EvdevTranslator`; tests feed it recorded sequences, no device needed.

What maps to what (linux/input-event-codes.h):

- EV_KEY: the action table's KEY_*/BTN_* codes (keys, mouse buttons, pad buttons BTN_SOUTH ...
  BTN_DPAD_*); value 2 (auto-repeat) and repeats of a state are dropped.
- EV_ABS ABS_HAT0X/ABS_HAT0Y (an Xbox pad's d-pad): pad_left/pad_right and pad_up/pad_down presses.
- EV_REL REL_X, REL_Y -> mouse_dx, mouse_dy (counts, unaccelerated: evdev is below any acceleration);
  REL_WHEEL -> wheel (+1 per notch up, as evdev; REL_WHEEL_HI_RES is not read: one notch, one event).
- EV_ABS ABS_X, ABS_Y, ABS_RX, ABS_RY -> pad_lx, pad_ly, pad_rx, pad_ry in [-1, 1] (x right, y down,
  as evdev), ABS_Z, ABS_RZ -> pad_lt, pad_rt in [0, 1], each normalised with the device's own absinfo:
  the middle of [min, max] (as an integer) is 0 and values within ``flat`` of it are 0, the rest
  rescaled so the zone's edge is 0 and the range's ends are -1 and +1; a trigger is 0 up to min + flat.

Only configured actions and axes come out; an absolute axis only when its normalised value changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.actions.names import evdev_code

EV_SYN, EV_KEY, EV_REL, EV_ABS = 0, 1, 2, 3
REL_X, REL_Y, REL_WHEEL = 0x00, 0x01, 0x08
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
ABS_HAT0X, ABS_HAT0Y = 0x10, 0x11
BTN_SOUTH = 0x130  # the first gamepad button: a device with it is a pad

REL_AXES: dict[str, int] = {"mouse_dx": REL_X, "mouse_dy": REL_Y, "wheel": REL_WHEEL}
ABS_AXES: dict[str, int] = {"pad_lx": ABS_X, "pad_ly": ABS_Y, "pad_rx": ABS_RX, "pad_ry": ABS_RY,
                            "pad_lt": ABS_Z, "pad_rt": ABS_RZ}
TRIGGERS = frozenset({"pad_lt", "pad_rt"})
# Hat axis -> (button at -1, button at +1).
HATS: dict[int, tuple[str, str]] = {ABS_HAT0X: ("pad_left", "pad_right"), ABS_HAT0Y: ("pad_up", "pad_down")}
EVDEV_AXES = frozenset(REL_AXES) | frozenset(ABS_AXES)

# (t_ns, action or -(hotkey + 1), 1 press / 0 release, device, injected)
KeyRow = tuple[int, int, int, int, int]
# (t_ns, axis index, value, device, injected)
AxisRow = tuple[int, int, float, int, int]


@dataclass(frozen=True)
class AbsRange:
    """The part of a device's absinfo (EVIOCGABS) the normalisation needs."""

    minimum: int
    maximum: int
    flat: int = 0


def normalise(value: int, info: AbsRange, trigger: bool) -> float:
    """An absolute axis value in [-1, 1] (a stick) or [0, 1] (a trigger), with the device's flat zone."""
    span = info.maximum - info.minimum
    if span <= 0:
        return 0.0
    if trigger:
        off, size = value - info.minimum, span
        if off <= info.flat:
            return 0.0
        return min(1.0, (off - info.flat) / max(size - info.flat, 1))
    # The rest value: the middle of the range, truncated to an integer (0 for -32768..32767, 127 for
    # 0..255), each side then scaled on its own so both ends reach exactly -1 and +1.
    centre = int((info.minimum + info.maximum) / 2)
    off = value - centre
    if abs(off) <= info.flat:
        return 0.0
    side = (info.maximum - centre) if off > 0 else (centre - info.minimum)
    mag = min(1.0, (abs(off) - info.flat) / max(side - info.flat, 1))
    return mag if off > 0 else -mag


class EvdevTranslator:
    """One device's events to key rows and axis rows; keeps that device's held state between calls.

    codes: evdev key code -> action index (>= 0) or -(hotkey + 1); axes: the configured axis names (the
    index is the position); absinfo: the device's ranges by ABS_* code (only those it has).
    """

    def __init__(self, codes: dict[int, int], axes: Sequence[str], absinfo: dict[int, AbsRange],
                 device: int = 0, injected: bool = False) -> None:
        self.device, self.injected = device, int(injected)
        self._codes = dict(codes)
        self._rel = {REL_AXES[n]: i for i, n in enumerate(axes) if n in REL_AXES}
        self._abs = {ABS_AXES[n]: (i, n in TRIGGERS) for i, n in enumerate(axes)
                     if n in ABS_AXES and ABS_AXES[n] in absinfo}
        self._absinfo = dict(absinfo)
        # Hat -> (code at -1, code at +1): the configured action/hotkey code of its buttons, or None.
        self._hats = {hat: (self._codes.get(evdev_code(lo)), self._codes.get(evdev_code(hi)))
                      for hat, (lo, hi) in HATS.items()}
        self._held: dict[int, bool] = {}
        self._last: dict[int, float] = {}  # ABS code -> the last normalised value sent

    @property
    def wanted(self) -> tuple[set[int], set[int], set[int]]:
        """(EV_KEY, EV_REL, EV_ABS) codes this translator reads: what a device must report to be opened."""
        hats = {h for h, pair in self._hats.items() if any(c is not None for c in pair)}
        return set(self._codes), set(self._rel), set(self._abs) | hats

    def _key(self, t: int, code: int | None, down: bool, keys: list[KeyRow]) -> None:
        if code is None or self._held.get(code, False) == down:
            return
        self._held[code] = down
        keys.append((t, code, int(down), self.device, self.injected))

    def initial(self, t_ns: int, values: dict[int, int]) -> list[AxisRow]:
        """Axis rows for the device's current absolute values (EVIOCGABS value) when reading starts, so a
        stick already held is known before it moves."""
        axes: list[AxisRow] = []
        for code, value in values.items():
            self._abs_event(t_ns, code, value, axes)
        return axes

    def _abs_event(self, t: int, code: int, value: int, axes: list[AxisRow]) -> None:
        slot = self._abs.get(code)
        if slot is None:
            return
        v = normalise(value, self._absinfo[code], slot[1])
        if self._last.get(code) != v:
            self._last[code] = v
            axes.append((t, slot[0], v, self.device, self.injected))

    def feed(self, rows: Iterable[tuple[int, int, int, int]]) -> tuple[list[KeyRow], list[AxisRow]]:
        """(t_ns, type, code, value) rows in order -> (key rows, axis rows) of the configured ones."""
        keys: list[KeyRow] = []
        axes: list[AxisRow] = []
        for t, typ, code, value in rows:
            if typ == EV_KEY:
                if value != 2:  # 2: auto-repeat
                    self._key(t, self._codes.get(code), value == 1, keys)
            elif typ == EV_REL:
                axis = self._rel.get(code)
                if axis is not None and value != 0:
                    axes.append((t, axis, float(value), self.device, self.injected))
            elif typ == EV_ABS:
                hat = self._hats.get(code)
                if hat is not None:
                    self._key(t, hat[0], value < 0, keys)
                    self._key(t, hat[1], value > 0, keys)
                else:
                    self._abs_event(t, code, value, axes)
        return keys, axes


def translate(rows: Iterable[tuple[int, int, int, int]], actions: Sequence[str], axes: Sequence[str],
              absinfo: dict[int, AbsRange], hotkeys: Sequence[str] = ()) -> tuple[list[KeyRow], list[AxisRow]]:
    """A whole recorded sequence of one device at once (the tests' entry point)."""
    return EvdevTranslator(key_codes(actions, hotkeys), axes, absinfo).feed(rows)


def key_codes(actions: Sequence[str], hotkeys: Sequence[str]) -> dict[int, int]:
    """evdev code -> action index, or -(hotkey + 1)."""
    codes = {evdev_code(n): i for i, n in enumerate(actions)}
    codes.update({evdev_code(n): -(i + 1) for i, n in enumerate(hotkeys)})
    return codes


__all__ = [
    "ABS_AXES",
    "EVDEV_AXES",
    "REL_AXES",
    "AbsRange",
    "EvdevTranslator",
    "key_codes",
    "normalise",
    "translate",
]
