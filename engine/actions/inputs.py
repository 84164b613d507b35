"""Where recorded actions come from: X11 (XInput2 raw events, native thread) or Linux evdev; on
Windows, raw input (WM_INPUT, native thread).

All deliver (t_ns, action, value) on the engine's monotonic clock for the configured actions only,
and hotkey presses separately. ``poll_sources`` adds each event's source device and whether that device
injects (X11: an XTest slave; Windows: injected input; evdev: the engine's own uinput keyboard), so a
person's input is told from the engine's own by where it came from, never by timing (:func:`human_mask`).
Nothing else is read or kept: the recorder is not a keylogger.
Backends are chosen per OS from ``INPUTS``; :func:`default_input` is the first of them.

Axes (mouse_dx, mouse_dy, wheel, mouse_x, mouse_y, pad_*) are read only when configured (``axes=``),
each backend from its own source: X11 from XInput2 raw motion, raw wheel buttons and the pointer
position (native/input/x11_listener.hpp; no pads), evdev from REL_*/ABS_* events (engine.actions.evdev_map;
pads chosen with ``pad=NAME|PATH``), Windows from raw input and XInput (native/input/win_rawinput.hpp).
``poll_axes()`` returns every axis event since the last call: (t_ns int64, axis int16 into the configured
axes, value float32, device int32, injected uint8); a relative axis' value is a delta, an absolute axis'
its new value. Every event comes out, none coalesced. Takeover uses the same call: an event from a
device that :func:`human_mask` calls the person's, on a configured axis, moving past a dead zone, is
the person taking over.
"""

from __future__ import annotations

import contextlib
import glob
import os
import select
import stat
import struct
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

from engine import _native
from engine.actions.evdev_map import (
    ABS_AXES,
    BTN_SOUTH,
    EV_ABS,
    EV_KEY,
    EV_REL,
    EVDEV_AXES,
    HATS,
    AbsRange,
    EvdevTranslator,
    key_codes,
)
from engine.actions.names import ENGINE_DEVICE_NAMES, UINPUT_NAME
from engine.errors import EngineError

InputName = Literal["x11", "evdev", "rawinput"]


def inputs_for(platform: str) -> tuple[str, ...]:
    """The input backends of an OS (a ``sys.platform`` value), the default first."""
    if platform.startswith("linux"):
        return ("x11", "evdev")
    if platform == "win32":
        return ("rawinput",)
    return ()


INPUTS: tuple[str, ...] = inputs_for(sys.platform)


def default_input(platform: str = sys.platform) -> str:
    """The input backend used when none is named: x11 on Linux, rawinput on Windows ("" elsewhere)."""
    names = inputs_for(platform)
    return names[0] if names else ""


Events = tuple[np.ndarray, np.ndarray, np.ndarray]  # t_ns int64, action int16, value int8
# t_ns int64, axis int16, value float32, device int32, injected uint8 (human_mask takes these too)
AxisEvents = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# t_ns int64, action int16, value int8, device int32 (source device), injected uint8 (1: injection device)
SourcedEvents = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class InputSource(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def poll(self) -> tuple[Events, list[int]]:
        """(action events so far, hotkey indices pressed so far), both in arrival order."""
        ...
    def poll_sources(self) -> tuple[SourcedEvents, list[int]]:
        """As poll(), each event with its source device and injected flag."""
        ...
    def poll_axes(self) -> AxisEvents:
        """Axis events of the configured axes so far, in arrival order (empty without axes)."""
        ...
    def poll_axes_into(self, framer: _native.AxisFramer) -> np.ndarray:
        """As poll_axes(), the events queued into ``framer`` (an AxisFramer over the configured axes) instead,
        returned as the session's axis log records: uint8, 14 bytes each (t_ns <i8, axis <i2, value <f4;
        engine.session.layout.AXIS_EVENT_DTYPE). The recorder's path: one native call for a native listener."""
        ...
    @property
    def error(self) -> str: ...
    @property
    def hotkey_presses(self) -> int:
        """Hotkey presses seen so far, before poll() returns them: a cheap check that tells a consumer
        taking events on a slower period to take them now."""
        ...


def _split_sources(t: np.ndarray, a: np.ndarray, v: np.ndarray, dev: np.ndarray,
                   inj: np.ndarray) -> tuple[SourcedEvents, list[int]]:
    hot = a < 0
    hotkeys = [int(-x - 1) for x, val in zip(a[hot], v[hot], strict=True) if val == 1]
    keep = ~hot
    return (t[keep], a[keep], v[keep], dev[keep], inj[keep]), hotkeys


def _split(t: np.ndarray, a: np.ndarray, v: np.ndarray, *sources: np.ndarray) -> tuple[Events, list[int]]:
    if not len(t):  # the usual wake-up: nothing pressed since the last
        return (t, a, v), []
    hot = a < 0
    hotkeys = [int(-x - 1) for x, val in zip(a[hot], v[hot], strict=True) if val == 1]
    keep = ~hot
    return (t[keep], a[keep], v[keep]), hotkeys


def human_mask(events: SourcedEvents | AxisEvents,
               engine_devices: frozenset[int] | set[int] | list[int] | None) -> np.ndarray:
    """Which events the person made: every event unless it came from the engine's own output device.

    engine_devices: the source ids of the engine's output (XTestOutput.devices: its XTest slaves). None
    means the output's device is unknown (SendInput, whose events are flagged injected; or no output):
    then an injected event is the engine's. Decided by source device only, never by timing.
    """
    _, _, _, dev, inj = events
    if engine_devices is None:
        return np.asarray(inj == 0)
    return ~np.isin(dev, np.fromiter(engine_devices, np.int32))


class _NativeInput:
    """An input backend over a native listener thread (X11InputListener, RawInputListener)."""

    _listener: _native.Listener

    def start(self) -> None:
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()

    def poll(self) -> tuple[Events, list[int]]:
        return _split(*self._listener.pop(65536))

    def poll_sources(self) -> tuple[SourcedEvents, list[int]]:
        return _split_sources(*self._listener.pop(65536))

    def poll_axes(self) -> AxisEvents:
        return self._listener.pop_axes(1 << 20)

    def poll_axes_into(self, framer: _native.AxisFramer) -> np.ndarray:
        return self._listener.pop_axes_into(framer, 1 << 20)

    @property
    def error(self) -> str:
        return str(self._listener.error)

    @property
    def hotkey_presses(self) -> int:
        return int(self._listener.hotkey_presses)


class X11Input(_NativeInput):
    """XInput2 raw events in a native thread (engine._native.X11InputListener)."""

    def __init__(self, actions: list[str], hotkeys: list[str], display: str = "", axes: Sequence[str] = (),
                 region: Sequence[int] | None = None) -> None:
        """region: the captured (x, y, w, h) that mouse_x/mouse_y span (default the screen)."""
        self._listener = _native.X11InputListener(display, actions, hotkeys, axes=list(axes),
                                                  region=list(region or ()))


class RawInput(_NativeInput):
    """Windows raw input (WM_INPUT) in a native thread (engine._native.RawInputListener), whatever window
    has the focus. Raw input is registered per process: one listener at a time."""

    def __init__(self, actions: list[str], hotkeys: list[str], axes: Sequence[str] = ()) -> None:
        self._listener = _native.RawInputListener(actions, hotkeys, axes=list(axes))


def hotkeys_available(display: str, platform: str = sys.platform) -> bool:
    """Whether :func:`hotkey_listener` can run: X11 needs a display, Windows raw input nothing."""
    return platform == "win32" or bool(display)


def hotkey_listener(hotkeys: list[str], display: str = "") -> _native.Listener:
    """A native listener (not started) of these hotkeys only, for this OS: the play loop's kill switch.
    Its pop() returns (t_ns, action, value) arrays where every action is a hotkey, -(index + 1)."""
    if sys.platform == "win32":
        return _native.RawInputListener([], hotkeys)
    return _native.X11InputListener(display, [], hotkeys)


# linux/input.h: _IOW('E', 0xa0, int) sets the clock of event timestamps.
_EVIOCSCLOCKID = 0x400445A0
_CLOCK_MONOTONIC = 1


_INPUT_GROUP_FIX = ("add yourself to the 'input' group (sudo usermod -aG input $USER, then log in again) or add a "
                    "udev rule giving you read access")


def event_devices(input_dir: str | os.PathLike[str] = "/dev/input") -> list[str]:
    """The event character devices of ``input_dir``, readable or not, sorted.

    evdev.list_devices() leaves out the devices this user cannot open (even with writable=False it checks
    R_OK), which would turn "permission denied" into "no devices": here opening them tells the two apart.
    """
    out = []
    for entry in sorted(glob.glob(os.path.join(os.fspath(input_dir), "event*"))):
        with contextlib.suppress(OSError):  # gone since the glob: as if never listed
            if stat.S_ISCHR(os.stat(entry).st_mode):
                out.append(entry)
    return out


def _pad_label(dev: Any) -> str:
    return f"'{dev.name}' ({dev.path})"


class EvdevInput:
    """Keyboards, mice and gamepads from /dev/input through python-evdev, kernel timestamps on
    CLOCK_MONOTONIC; events translated by engine.actions.evdev_map (one translator per device).

    devices: the event device paths to read (default: every event device of ``input_dir`` that reports
    one of the configured keys or axes). pad: the gamepad to read pad buttons and axes from, by path or
    by name (exact, else a unique substring, case-insensitive); default every device that reports them.
    A device that cannot be opened or is not an input device is an EngineError naming it and the fix,
    when no device is left to read; a --pad that matches no gamepad names the pads found.
    """

    def __init__(self, actions: list[str], hotkeys: list[str], devices: list[str] | None = None,
                 input_dir: str | os.PathLike[str] = "/dev/input", axes: Sequence[str] = (),
                 pad: str | None = None) -> None:
        try:
            import evdev
        except ImportError as e:  # pragma: no cover - evdev is a Linux dependency
            raise EngineError("python-evdev is not installed; pip install evdev, or use --input x11") from e
        import fcntl  # POSIX only: this module is imported on Windows too

        other = [n for n in axes if n not in EVDEV_AXES]
        if other:
            raise EngineError(f"axis {', '.join(other)} is not read through evdev (mouse_x/mouse_y: use --input x11)")
        self.axes = list(axes)
        self._key_codes = key_codes(actions, hotkeys)
        paths = devices if devices is not None else event_devices(input_dir)
        if not paths:
            raise EngineError(f"no input devices under {os.fspath(input_dir)} (in a container or VM, pass the "
                              "keyboard through); or use --input x11")
        opened: list[Any] = []
        denied: list[str] = []
        failed: list[str] = []
        for p in paths:
            try:
                opened.append(evdev.InputDevice(p))
            except PermissionError:
                denied.append(p)
            except OSError as e:  # ENOENT, ENODEV, ENXIO, ENOTTY (not an input device), ...
                failed.append(f"{p} ({e.strerror or e})")
        try:
            chosen_pad = self._choose_pad(opened, pad) if pad is not None else None
        except EngineError:
            for dev in opened:  # nothing is kept open after a bad --pad
                dev.close()
            raise
        pad_codes = {c for c, i in self._key_codes.items() if c >= BTN_SOUTH}
        self._devices: list[Any] = []
        self._translators: dict[int, EvdevTranslator] = {}
        self._initial: list[tuple[int, Any]] = []  # (fd, device): absolute values to send at start
        for dev in opened:
            try:
                caps = dev.capabilities()
                codes = self._key_codes
                dev_axes = self.axes
                if chosen_pad is not None and dev is not chosen_pad:  # pad input from the chosen pad only
                    codes = {c: i for c, i in codes.items() if c not in pad_codes}
                    dev_axes = [n if n not in ABS_AXES else "" for n in self.axes]
                absinfo = {code: AbsRange(info.min, info.max, info.flat)
                            for code, info in caps.get(EV_ABS, []) if isinstance(info, evdev.AbsInfo)}
                tr = EvdevTranslator(codes, dev_axes, absinfo, device=dev.fd, injected=dev.name in ENGINE_DEVICE_NAMES)
                want_key, want_rel, want_abs = tr.wanted
                has_abs = {code for code, _ in caps.get(EV_ABS, [])}
                if not (want_key & set(caps.get(EV_KEY, [])) or want_rel & set(caps.get(EV_REL, []))
                        or want_abs & has_abs):
                    dev.close()
                    continue
                fcntl.ioctl(dev.fd, _EVIOCSCLOCKID, struct.pack("i", _CLOCK_MONOTONIC))
            except OSError as e:  # unplugged between open and setup
                dev.close()
                failed.append(f"{dev.path} ({e.strerror or e})")
                continue
            self._devices.append(dev)
            self._translators[dev.fd] = tr
            if want_abs & has_abs:
                self._initial.append((dev.fd, dev))
        if not self._devices:
            if denied:
                why = f"permission denied on {', '.join(denied)}: {_INPUT_GROUP_FIX}"
            elif failed:
                why = f"cannot open {', '.join(failed)}; check these are input event devices that are plugged in"
            else:
                why = "no device reports the configured keys or axes"
            raise EngineError(f"cannot read the keyboard/mouse/pad through evdev: {why}; or use --input x11")
        self._queue: deque[tuple[int, int, int, int, int]] = deque()
        self._axis_queue: deque[tuple[int, int, float, int, int]] = deque()
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._error = ""
        self._hotkey_presses = 0

    @staticmethod
    def _choose_pad(opened: list[Any], pad: str) -> Any:
        """The opened device --pad names: by path, else by name (exact, then unique substring)."""
        pads = [d for d in opened if BTN_SOUTH in d.capabilities().get(EV_KEY, [])
                or any(code == ABS_AXES["pad_lx"] for code, _ in d.capabilities().get(EV_ABS, []))]
        by_path = [d for d in opened if d.path == pad or os.path.realpath(pad) == d.path]
        if by_path:
            return by_path[0]
        exact = [d for d in pads if d.name.lower() == pad.lower()]
        near = exact or [d for d in pads if pad.lower() in d.name.lower()]
        if len(near) == 1:
            return near[0]
        found = ", ".join(_pad_label(d) for d in pads) or "none (is it plugged in, and readable by you?)"
        what = "matches more than one" if near else "matches no"
        raise EngineError(f"--pad {pad!r} {what} gamepad; pads found: {found}")

    def start(self) -> None:
        for fd, dev in self._initial:  # sticks and triggers as they are now, before any event moves them
            values = {code: int(dev.absinfo(code).value) for code in self._translators[fd].wanted[2]
                      if code not in HATS}  # the d-pad's state comes with its first event
            self._axis_queue.extend(self._translators[fd].initial(_native.monotonic_ns(), values))
        self._thread = threading.Thread(target=self._run, name="engine-evdev", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join()
        for d in self._devices:
            d.close()
        os.close(self._stop_r)
        os.close(self._stop_w)

    @property
    def error(self) -> str:
        return self._error

    @property
    def hotkey_presses(self) -> int:
        return self._hotkey_presses

    def _run(self) -> None:
        fds = {d.fd: d for d in self._devices}
        try:
            while True:
                ready, _, _ = select.select([*fds, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                for fd in ready:
                    rows = [(ev.sec * 1_000_000_000 + ev.usec * 1000, ev.type, ev.code, ev.value)
                            for ev in fds[fd].read()]
                    keys, axes = self._translators[fd].feed(rows)  # drops what is not configured
                    self._queue.extend(keys)
                    self._hotkey_presses += sum(1 for k in keys if k[1] < 0 and k[2] == 1)  # once queued
                    self._axis_queue.extend(axes)
        except OSError as e:
            self._error = f"evdev device failed: {e}"

    def poll(self) -> tuple[Events, list[int]]:
        (t, a, v, _, _), hot = self.poll_sources()
        return (t, a, v), hot

    def poll_sources(self) -> tuple[SourcedEvents, list[int]]:
        """Device ids are the event device's file descriptor; injected marks the engine's own uinput
        keyboard (by its name), the only device whose events are never the person's."""
        items = []
        while self._queue:
            items.append(self._queue.popleft())
        arr = np.array(items, dtype=np.int64).reshape(-1, 5)
        return _split_sources(arr[:, 0], arr[:, 1].astype(np.int16), arr[:, 2].astype(np.int8),
                              arr[:, 3].astype(np.int32), arr[:, 4].astype(np.uint8))

    def poll_axes(self) -> AxisEvents:
        items = []
        while self._axis_queue:
            items.append(self._axis_queue.popleft())
        t = np.array([r[0] for r in items], np.int64)
        a = np.array([r[1] for r in items], np.int16)
        v = np.array([r[2] for r in items], np.float32)
        dev = np.array([r[3] for r in items], np.int32)
        inj = np.array([r[4] for r in items], np.uint8)
        return t, a, v, dev, inj

    def poll_axes_into(self, framer: _native.AxisFramer) -> np.ndarray:
        t, a, v, _, _ = self.poll_axes()
        return framer.add_events(t, a, v)


def open_input(kind: str, actions: list[str], hotkeys: list[str], display: str = "", *, axes: Sequence[str] = (),
               region: Sequence[int] | None = None, pad: str | None = None) -> InputSource:
    """The input backend by name, reading the configured axes too; one clear error for an unknown one.
    region: the captured (x, y, w, h) mouse_x/mouse_y span (X11); pad: the gamepad by name or path (evdev)."""
    if pad is not None and kind != "evdev":
        raise EngineError(f"--pad needs --input evdev (the {kind} input reads no gamepad by name)")
    if kind == "x11":
        return X11Input(actions, hotkeys, display, axes=axes, region=region)
    if kind == "evdev":
        return EvdevInput(actions, hotkeys, axes=axes, pad=pad)
    if kind == "rawinput" and kind in INPUTS:
        return RawInput(actions, hotkeys, axes=axes)
    raise EngineError(f"unknown input backend {kind!r}; valid: {', '.join(INPUTS) or 'none on this OS'}")


__all__ = [
    "INPUTS", "UINPUT_NAME", "AxisEvents", "EvdevInput", "InputSource", "RawInput", "SourcedEvents", "X11Input",
    "default_input", "event_devices", "hotkey_listener", "hotkeys_available", "human_mask", "inputs_for", "open_input",
]
