"""The one output layer: every key the engine sends, in every command (engine-play, the demo game's scripted
driver, engine-latency's probes), goes through an output here: XTest (native, X11), a uinput virtual
keyboard (Linux), SendInput (native, Windows), or nowhere (dry run, replay).

Every output sends only press/release changes and releases everything it holds in release_all(), which
its user calls on every exit path, and close() releases too; the native XTest and SendInput actuators
also release in their destructors, and their crash watchdog (engine.actions.watchdog) releases if the
process dies without closing them. Outputs are chosen per OS from ``OUTPUTS``; :func:`default_output` is
the first of them. Importing this module loads no compiled module: an output loads engine._native when
it is opened.

Axes (issue 14): an output opened with ``axes`` (``open_output(..., axes=[...], fps=..., region=...)``) also
takes :meth:`Output.apply_axes`, one decision's axis values in their natural units
(engine.actions.names): relative motion (mouse_dx, mouse_dy, wheel) is spread over the frame period
(engine.actions.motion.MotionSpreader); mouse_x/mouse_y put the pointer in the captured region; pad axes
and pad buttons drive a virtual pad (uinput on Linux, ViGEm on Windows). X has no gamepads, so XTest
refuses pad actions in one line. release_all() and close() also stop motion in flight and leave a pad
neutral.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

import numpy as np

from engine.actions.axes_out import AxesOutput
from engine.actions.motion import MOUSE_ABSOLUTE, PAD_AXES, UinputPad, ViGEmPadOutput
from engine.actions.names import PAD_BUTTONS, RELATIVE_AXES, UINPUT_NAME, evdev_code
from engine.actions.watchdog import Watchdog
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine import _native

OutputName = Literal["xtest", "uinput", "sendinput", "dry-run"]


def outputs_for(platform: str) -> tuple[str, ...]:
    """The outputs of an OS (a ``sys.platform`` value), the default first."""
    if platform.startswith("linux"):
        return ("xtest", "uinput", "dry-run")
    if platform == "win32":
        return ("sendinput", "dry-run")
    return ("dry-run",)


OUTPUTS: tuple[str, ...] = outputs_for(sys.platform)


def default_output(platform: str = sys.platform) -> str:
    """The output used when none is named: xtest on Linux, sendinput on Windows (dry-run elsewhere)."""
    return outputs_for(platform)[0]


class Output(Protocol):
    name: str
    axes: tuple[str, ...]

    def apply(self, state: np.ndarray) -> int:
        """Make the held set equal `state` (uint8 per action); returns events sent."""
        ...

    def apply_axes(self, values: np.ndarray) -> int:
        """One decision's axis values ((K,) float32, natural units, in the order of ``axes``); returns
        events sent (relative motion: the pieces sent so far)."""
        ...

    def release_all(self) -> int: ...

    def close(self) -> None: ...


class NativeKeysOutput(AxesOutput):
    """A native actuator (XTest or SendInput) plus its crash watchdog (engine.actions.watchdog).

    Injected presses outlive the process that sent them (XTest for certain; SendInput per its docs, see
    engine.actions.watchdog), so with ``watchdog`` (the default) a small process releases the configured
    keys if this one dies without closing the output. It runs in its own session / process group: a Ctrl-C
    in the terminal is the sender's to handle, not the watchdog's.
    """

    name = ""

    def __init__(self, actuator: _native.Actuator, kind: str, display: str, actions: list[str], watchdog: bool,
                 axes: Sequence[str] = (), fps: float | None = None, region: Sequence[int] | None = None,
                 pad: Callable[[list[str], list[str]], Any] | None = None) -> None:
        self._act = actuator
        self._keys = np.array([i for i, a in enumerate(actions) if a not in PAD_BUTTONS], np.intp)
        self._open_axes(actions, axes, fps=fps, region=region, move=actuator.move, warp=actuator.warp, pad=pad)
        # Motion and pads need no watchdog: motion holds nothing, and a pad dies with its process.
        self._watchdog = Watchdog(kind, display, [actions[i] for i in self._keys]) if watchdog else None

    def apply(self, state: np.ndarray) -> int:
        state = np.asarray(state, np.uint8)
        keys = state if len(self._keys) == len(state) else state[self._keys]
        return int(self._act.apply(keys)) + self._apply_pad_buttons(state)

    def release_all(self) -> int:
        return self._stop_axes() + int(self._act.release_all())

    @property
    def devices(self) -> list[int]:
        """The source device ids the listener reports for this output's own events (X11: its XTest slaves);
        empty where the OS flags injected input instead (SendInput)."""
        return list(getattr(self._act, "devices", []))

    def system_held(self) -> list[bool]:
        """What the system believes is down for each action (X: XQueryKeymap; Windows: GetAsyncKeyState)."""
        return list(self._act.system_held())

    def close(self) -> None:
        """Release everything, then tell the watchdog: "clean" only when the release went through, so a
        failed release leaves the watchdog to release what the system still reports down. Idempotent."""
        released = False
        try:
            self._stop_axes()
            self._act.release_all()
            released = True
        finally:
            try:
                self._close_axes()
            finally:
                if self._watchdog is not None:
                    self._watchdog.finish(clean=released)
                    self._watchdog = None


class XTestOutput(NativeKeysOutput):
    """Keys through XTest (native, X11)."""

    name = "xtest"

    def __init__(self, actions: list[str], display: str = "", *, watchdog: bool = True, master: str = "",
                 axes: Sequence[str] = (), fps: float | None = None, region: Sequence[int] | None = None) -> None:
        """master: send as another XInput2 master's XTest slaves (a second "person" on the display, created
        for as long as this output lives) instead of the core ones; its watchdog is off (the watchdog reads
        the core state only). axes: mouse_dx/mouse_dy/wheel (XTest relative motion, spread over 1/fps) and
        mouse_x/mouse_y (the pointer warped within region, root pixels); pad actions are refused."""
        from engine import _native

        pad = [a for a in (*actions, *axes) if a in PAD_BUTTONS or a in PAD_AXES]
        if pad:
            raise EngineError(f"XTest cannot send {', '.join(pad)}: X has no gamepads; use --output uinput for a "
                              "virtual pad")
        display = display or os.environ.get("DISPLAY", "")
        super().__init__(_native.XTestActuator(display, actions, master), "xtest", display, actions,
                         watchdog and not master, axes, fps, region)


class SendInputOutput(NativeKeysOutput):
    """Keys through SendInput (native, Windows), as hardware scan codes (what DirectInput/raw-input games
    read)."""

    name = "sendinput"

    def __init__(self, actions: list[str], *, watchdog: bool = True, axes: Sequence[str] = (),
                 fps: float | None = None, region: Sequence[int] | None = None) -> None:
        """axes: SendInput relative moves and wheel; mouse_x/mouse_y absolute; pad actions through a ViGEm
        virtual Xbox 360 pad (needs ViGEmBus and ViGEmClient.dll; compile-tested only)."""
        from engine import _native

        keys = [a for a in actions if a not in PAD_BUTTONS]
        super().__init__(_native.SendInputActuator(keys), "sendinput", "", actions, watchdog, axes, fps, region,
                         pad=ViGEmPadOutput)


class UinputOutput(AxesOutput):
    """A virtual keyboard (and mouse buttons) that games reading raw input see like a real device."""

    name = "uinput"
    # Events written right after the device appears are lost: udev and the game must open it first.
    SETTLE_S = 1.0

    def __init__(self, actions: list[str], settle_s: float | None = None, *, axes: Sequence[str] = (),
                 fps: float | None = None) -> None:
        """axes: mouse_dx/mouse_dy/wheel as REL_X/REL_Y/REL_WHEEL of the same device (spread over 1/fps);
        pad buttons and pad axes on a second device, an Xbox-like virtual pad (engine.actions.motion)."""
        try:
            import evdev
            from evdev import ecodes
        except ImportError:  # pragma: no cover - a Linux dependency
            raise EngineError("python-evdev is not installed (pip install evdev); or use --output xtest") from None
        if any(a in MOUSE_ABSOLUTE for a in axes):
            raise EngineError("uinput cannot place the pointer (mouse_x/mouse_y); use --output xtest")
        keys = [a for a in actions if a not in PAD_BUTTONS]
        self._keys = np.array([i for i, a in enumerate(actions) if a not in PAD_BUTTONS], np.intp)
        self._codes = [evdev_code(a) for a in keys]
        caps: dict[int, Sequence[int]] = {ecodes.EV_KEY: sorted(set(self._codes))}
        if any(a in RELATIVE_AXES for a in axes):
            caps[ecodes.EV_REL] = [ecodes.REL_X, ecodes.REL_Y, ecodes.REL_WHEEL]
            # A device with relative axes but no left button is not taken for a mouse by libinput.
            caps[ecodes.EV_KEY] = sorted({*caps[ecodes.EV_KEY], ecodes.BTN_LEFT})
        self._ecodes = ecodes
        self._dev: Any = None
        self._lock = threading.Lock()  # keys (the play loop) and motion (the motion thread) share the device
        try:
            if keys or ecodes.EV_REL in caps:
                self._dev = evdev.UInput(caps, name=UINPUT_NAME)
            settle = self.SETTLE_S if settle_s is None else settle_s
            self._open_axes(actions, axes, fps=fps, region=None, move=self._move, warp=None,
                            pad=lambda b, x: UinputPad(b, x, settle_s=0.0))
        except (OSError, evdev.UInputError, EngineError) as e:
            if self._dev is not None:
                self._dev.close()
            raise (e if isinstance(e, EngineError) else EngineError(uinput_error(e))) from None
        self._held = np.zeros(len(keys), np.uint8)
        time.sleep(settle)

    def _move(self, dx: int, dy: int, wheel: int) -> int:
        e = self._ecodes
        n = 0
        with self._lock:  # one report per piece, never split by the keys' SYN
            for code, v in ((e.REL_X, dx), (e.REL_Y, dy), (e.REL_WHEEL, wheel)):
                if v:
                    self._dev.write(e.EV_REL, code, v)
                    n += 1
            if n:
                self._dev.syn()
        return n

    def apply(self, state: np.ndarray) -> int:
        full = np.asarray(state, np.uint8)
        state = full if len(self._keys) == len(full) else full[self._keys]
        pad = self._apply_pad_buttons(full)
        changed = np.flatnonzero(state != self._held)
        if not len(changed):
            return pad
        with self._lock:
            for i in sorted(changed.tolist(), key=lambda j: state[j]):  # releases first
                self._dev.write(self._ecodes.EV_KEY, self._codes[i], int(state[i]))
            self._dev.syn()
        self._held[changed] = state[changed]
        return len(changed) + pad

    def release_all(self) -> int:
        n = self._stop_axes()
        changed = np.flatnonzero(self._held)
        with self._lock:
            for i in changed.tolist():
                self._dev.write(self._ecodes.EV_KEY, self._codes[i], 0)
            if len(changed):
                self._dev.syn()
        self._held[:] = 0
        return n + len(changed)

    def close(self) -> None:
        try:
            self.release_all()
        finally:
            self._close_axes()
            if self._dev is not None:
                self._dev.close()


def uinput_error(e: Exception) -> str:
    """One line with the fix for the ways opening /dev/uinput fails."""
    err = getattr(e, "errno", None)
    text = str(e)
    if err == errno.EACCES or isinstance(e, PermissionError) or "Permission" in text:
        return ("no permission to open /dev/uinput: add a udev rule (KERNEL==\"uinput\", GROUP=\"input\", "
                "MODE=\"0660\") and join the input group, or run with --output xtest")
    if err in (errno.ENOENT, errno.ENODEV) or "No such" in text or "uinput" in text.lower():
        return ("/dev/uinput is missing or has no driver: load the module (sudo modprobe uinput), "
                "or run with --output xtest")
    return f"cannot create the uinput device: {text}; or run with --output xtest"


class DryRunOutput:
    """Sends nothing; prints each change of decision (for --dry-run) and remembers the last state. Axis
    values are printed (two decimals) whenever they differ from the last ones printed, and kept in
    ``last_axes``."""

    name = "dry-run"

    def __init__(self, actions: list[str], stream: TextIO | None = None, *, axes: Sequence[str] = ()) -> None:
        self.actions = actions
        self.axes = tuple(axes)
        self._held = np.zeros(len(actions), np.uint8)
        self._stream = stream if stream is not None else sys.stdout
        self.last_axes = np.zeros(len(self.axes), np.float32)
        self._printed = ""

    def apply_axes(self, values: np.ndarray) -> int:
        values = np.asarray(values, np.float32).reshape(-1)
        if len(values) != len(self.axes):
            raise EngineError(f"expected {len(self.axes)} axis values, got {len(values)}")
        self.last_axes = values.copy()
        line = " ".join(f"{a}={v:+.2f}" for a, v in zip(self.axes, values.tolist(), strict=True))
        if line and line != self._printed:
            print(f"axes: {line}", file=self._stream, flush=True)
            self._printed = line
        return 0

    def apply(self, state: np.ndarray) -> int:
        changed = np.flatnonzero(state != self._held)
        if len(changed):
            self._held = state.astype(np.uint8).copy()
            held = [a for a, s in zip(self.actions, self._held, strict=True) if s] or ["(none)"]
            print(f"decision: {' '.join(held)}", file=self._stream, flush=True)
        return 0

    def release_all(self) -> int:
        self._held[:] = 0
        return 0

    def close(self) -> None:
        pass


class NullOutput:
    """Sends and prints nothing (replay: decisions are compared with the recording, not acted on)."""

    name = "none"

    def __init__(self, n_actions: int, axes: Sequence[str] = ()) -> None:
        self.n_actions = n_actions
        self.axes = tuple(axes)

    def apply(self, state: np.ndarray) -> int:
        return 0

    def apply_axes(self, values: np.ndarray) -> int:
        return 0

    def release_all(self) -> int:
        return 0

    def close(self) -> None:
        pass


def open_output(kind: str, actions: list[str], display: str = "", *, axes: Sequence[str] = (),
                fps: float | None = None, region: Sequence[int] | None = None) -> Output:
    """The output ``kind`` for ``actions`` (keys and pad buttons) and ``axes``; fps: the decision rate
    relative motion is spread over; region: (x, y, w, h) screen pixels mouse_x/mouse_y map into."""
    if kind == "xtest":
        return XTestOutput(actions, display, axes=axes, fps=fps, region=region)
    if kind == "uinput":
        return UinputOutput(actions, axes=axes, fps=fps)
    if kind == "sendinput" and kind in OUTPUTS:
        return SendInputOutput(actions, axes=axes, fps=fps, region=region)
    if kind == "dry-run":
        return DryRunOutput(actions, axes=axes)
    raise EngineError(f"unknown output {kind!r}; valid: {', '.join(OUTPUTS)}")


__all__ = [
    "OUTPUTS", "AxesOutput", "DryRunOutput", "NativeKeysOutput", "NullOutput", "Output", "SendInputOutput",
    "UinputOutput",
    "XTestOutput", "default_output", "open_output", "outputs_for", "uinput_error",
]
