"""Where recorded actions come from: X11 (XInput2 raw events, native thread) or Linux evdev; on
Windows, raw input (WM_INPUT, native thread).

All deliver (t_ns, action, value) on the engine's monotonic clock for the configured actions only,
and hotkey presses separately. ``poll_sources`` adds each event's source device and whether that device
injects (X11: an XTest slave; Windows: injected input; evdev: the engine's own uinput keyboard), so a
person's input is told from the engine's own by where it came from, never by timing (:func:`human_mask`).
Nothing else is read or kept: the recorder is not a keylogger.
Backends are chosen per OS from ``INPUTS``; :func:`default_input` is the first of them.
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
from typing import Any, Literal, Protocol

import numpy as np

from engine import _native
from engine.actions.names import UINPUT_NAME, evdev_code
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
    @property
    def error(self) -> str: ...


def _split_sources(t: np.ndarray, a: np.ndarray, v: np.ndarray, dev: np.ndarray,
                   inj: np.ndarray) -> tuple[SourcedEvents, list[int]]:
    hot = a < 0
    hotkeys = [int(-x - 1) for x, val in zip(a[hot], v[hot], strict=True) if val == 1]
    keep = ~hot
    return (t[keep], a[keep], v[keep], dev[keep], inj[keep]), hotkeys


def _split(t: np.ndarray, a: np.ndarray, v: np.ndarray, *sources: np.ndarray) -> tuple[Events, list[int]]:
    hot = a < 0
    hotkeys = [int(-x - 1) for x, val in zip(a[hot], v[hot], strict=True) if val == 1]
    keep = ~hot
    return (t[keep], a[keep], v[keep]), hotkeys


def human_mask(events: SourcedEvents, engine_devices: frozenset[int] | set[int] | list[int] | None) -> np.ndarray:
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

    @property
    def error(self) -> str:
        return str(self._listener.error)


class X11Input(_NativeInput):
    """XInput2 raw events in a native thread (engine._native.X11InputListener)."""

    def __init__(self, actions: list[str], hotkeys: list[str], display: str = "") -> None:
        self._listener = _native.X11InputListener(display, actions, hotkeys)


class RawInput(_NativeInput):
    """Windows raw input (WM_INPUT) in a native thread (engine._native.RawInputListener), whatever window
    has the focus. Raw input is registered per process: one listener at a time."""

    def __init__(self, actions: list[str], hotkeys: list[str]) -> None:
        self._listener = _native.RawInputListener(actions, hotkeys)


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
_EV_KEY = 1


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


class EvdevInput:
    """Keyboards and mice from /dev/input through python-evdev, kernel timestamps on CLOCK_MONOTONIC.

    devices: the event device paths to read (default: every event device of ``input_dir`` that reports
    one of the configured keys). A device that cannot be opened or is not an input device is an
    EngineError naming it and the fix, when no device is left to read.
    """

    def __init__(self, actions: list[str], hotkeys: list[str], devices: list[str] | None = None,
                 input_dir: str | os.PathLike[str] = "/dev/input") -> None:
        try:
            import evdev
        except ImportError as e:  # pragma: no cover - evdev is a Linux dependency
            raise EngineError("python-evdev is not installed; pip install evdev, or use --input x11") from e
        import fcntl  # POSIX only: this module is imported on Windows too

        self._codes = {evdev_code(n): i for i, n in enumerate(actions)}
        self._hot = {evdev_code(n): -(i + 1) for i, n in enumerate(hotkeys)}
        wanted = set(self._codes) | set(self._hot)
        paths = devices if devices is not None else event_devices(input_dir)
        if not paths:
            raise EngineError(f"no input devices under {os.fspath(input_dir)} (in a container or VM, pass the "
                              "keyboard through); or use --input x11")
        self._devices: list[Any] = []
        self._injected: set[int] = set()  # fds of the engine's own uinput keyboards
        denied: list[str] = []
        failed: list[str] = []
        for p in paths:
            try:
                dev = evdev.InputDevice(p)
            except PermissionError:
                denied.append(p)
                continue
            except OSError as e:  # ENOENT, ENODEV, ENXIO, ENOTTY (not an input device), ...
                failed.append(f"{p} ({e.strerror or e})")
                continue
            try:
                keys = set(dev.capabilities().get(_EV_KEY, []))
                if not keys & wanted:
                    dev.close()
                    continue
                fcntl.ioctl(dev.fd, _EVIOCSCLOCKID, struct.pack("i", _CLOCK_MONOTONIC))
            except OSError as e:  # unplugged between open and setup
                dev.close()
                failed.append(f"{p} ({e.strerror or e})")
                continue
            if dev.name == UINPUT_NAME:
                self._injected.add(dev.fd)
            self._devices.append(dev)
        if not self._devices:
            if denied:
                why = f"permission denied on {', '.join(denied)}: {_INPUT_GROUP_FIX}"
            elif failed:
                why = f"cannot open {', '.join(failed)}; check these are input event devices that are plugged in"
            else:
                why = "no device reports the configured keys"
            raise EngineError(f"cannot read the keyboard/mouse through evdev: {why}; or use --input x11")
        self._queue: deque[tuple[int, int, int, int, int]] = deque()
        self._held: dict[tuple[int, int], bool] = {}
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._error = ""

    def start(self) -> None:
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

    def _run(self) -> None:
        fds = {d.fd: d for d in self._devices}
        try:
            while True:
                ready, _, _ = select.select([*fds, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                for fd in ready:
                    for ev in fds[fd].read():
                        if ev.type != _EV_KEY or ev.value == 2:  # 2: auto-repeat
                            continue
                        code = self._codes.get(ev.code)
                        if code is None:
                            code = self._hot.get(ev.code)
                        if code is None:
                            continue  # not configured: dropped here, never stored
                        down = ev.value == 1
                        if self._held.get((fd, code)) == down:
                            continue
                        self._held[(fd, code)] = down
                        self._queue.append((ev.sec * 1_000_000_000 + ev.usec * 1000, code, int(down), fd,
                                            int(fd in self._injected)))
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


def open_input(kind: str, actions: list[str], hotkeys: list[str], display: str = "") -> InputSource:
    """The input backend by name; one clear error for an unknown one."""
    if kind == "x11":
        return X11Input(actions, hotkeys, display)
    if kind == "evdev":
        return EvdevInput(actions, hotkeys)
    if kind == "rawinput" and kind in INPUTS:
        return RawInput(actions, hotkeys)
    raise EngineError(f"unknown input backend {kind!r}; valid: {', '.join(INPUTS) or 'none on this OS'}")


__all__ = [
    "INPUTS", "UINPUT_NAME", "EvdevInput", "InputSource", "RawInput", "SourcedEvents", "X11Input", "default_input",
    "event_devices", "hotkey_listener", "hotkeys_available", "human_mask", "inputs_for", "open_input",
]
