"""The one output layer: every key the engine sends, in every command (engine-play, the demo game's scripted
driver, engine-latency's probes), goes through an output here: XTest (native, X11), a uinput virtual
keyboard (Linux), SendInput (native, Windows), or nowhere (dry run, replay).

Every output sends only press/release changes and releases everything it holds in release_all(), which
its user calls on every exit path, and close() releases too; the native XTest and SendInput actuators
also release in their destructors, and their crash watchdog (engine.actions.watchdog) releases if the
process dies without closing them. Outputs are chosen per OS from ``OUTPUTS``; :func:`default_output` is
the first of them. Importing this module loads no compiled module: an output loads engine._native when
it is opened.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

import numpy as np

from engine.actions.names import UINPUT_NAME, evdev_code
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

    def apply(self, state: np.ndarray) -> int:
        """Make the held set equal `state` (uint8 per action); returns events sent."""
        ...

    def release_all(self) -> int: ...

    def close(self) -> None: ...


class NativeKeysOutput:
    """A native actuator (XTest or SendInput) plus its crash watchdog (engine.actions.watchdog).

    Injected presses outlive the process that sent them (XTest for certain; SendInput per its docs, see
    engine.actions.watchdog), so with ``watchdog`` (the default) a small process releases the configured
    keys if this one dies without closing the output. It runs in its own session / process group: a Ctrl-C
    in the terminal is the sender's to handle, not the watchdog's.
    """

    name = ""

    def __init__(self, actuator: _native.Actuator, kind: str, display: str, actions: list[str], watchdog: bool) -> None:
        self._act = actuator
        self._watchdog = Watchdog(kind, display, actions) if watchdog else None

    def apply(self, state: np.ndarray) -> int:
        return int(self._act.apply(state))

    def release_all(self) -> int:
        return int(self._act.release_all())

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
            self._act.release_all()
            released = True
        finally:
            if self._watchdog is not None:
                self._watchdog.finish(clean=released)
                self._watchdog = None


class XTestOutput(NativeKeysOutput):
    """Keys through XTest (native, X11)."""

    name = "xtest"

    def __init__(self, actions: list[str], display: str = "", *, watchdog: bool = True, master: str = "") -> None:
        """master: send as another XInput2 master's XTest slaves (a second "person" on the display, created
        for as long as this output lives) instead of the core ones; its watchdog is off (the watchdog reads
        the core state only)."""
        from engine import _native

        display = display or os.environ.get("DISPLAY", "")
        super().__init__(_native.XTestActuator(display, actions, master), "xtest", display, actions,
                         watchdog and not master)


class SendInputOutput(NativeKeysOutput):
    """Keys through SendInput (native, Windows), as hardware scan codes (what DirectInput/raw-input games
    read)."""

    name = "sendinput"

    def __init__(self, actions: list[str], *, watchdog: bool = True) -> None:
        from engine import _native

        super().__init__(_native.SendInputActuator(actions), "sendinput", "", actions, watchdog)


class UinputOutput:
    """A virtual keyboard (and mouse buttons) that games reading raw input see like a real device."""

    name = "uinput"
    # Events written right after the device appears are lost: udev and the game must open it first.
    SETTLE_S = 1.0

    def __init__(self, actions: list[str], settle_s: float | None = None) -> None:
        try:
            import evdev
            from evdev import ecodes
        except ImportError:  # pragma: no cover - a Linux dependency
            raise EngineError("python-evdev is not installed (pip install evdev); or use --output xtest") from None
        self._codes = [evdev_code(a) for a in actions]
        try:
            self._dev = evdev.UInput({ecodes.EV_KEY: sorted(set(self._codes))}, name=UINPUT_NAME)
        except (OSError, evdev.UInputError) as e:
            raise EngineError(uinput_error(e)) from None
        self._ecodes = ecodes
        self._held = np.zeros(len(actions), np.uint8)
        time.sleep(self.SETTLE_S if settle_s is None else settle_s)

    def apply(self, state: np.ndarray) -> int:
        changed = np.flatnonzero(state != self._held)
        if not len(changed):
            return 0
        for i in sorted(changed.tolist(), key=lambda j: state[j]):  # releases first
            self._dev.write(self._ecodes.EV_KEY, self._codes[i], int(state[i]))
        self._dev.syn()
        self._held[changed] = state[changed]
        return len(changed)

    def release_all(self) -> int:
        return self.apply(np.zeros_like(self._held))

    def close(self) -> None:
        self.release_all()
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
    """Sends nothing; prints each change of decision (for --dry-run) and remembers the last state."""

    name = "dry-run"

    def __init__(self, actions: list[str], stream: TextIO | None = None) -> None:
        self.actions = actions
        self._held = np.zeros(len(actions), np.uint8)
        self._stream = stream if stream is not None else sys.stdout

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

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def apply(self, state: np.ndarray) -> int:
        return 0

    def release_all(self) -> int:
        return 0

    def close(self) -> None:
        pass


def open_output(kind: str, actions: list[str], display: str = "") -> Output:
    if kind == "xtest":
        return XTestOutput(actions, display)
    if kind == "uinput":
        return UinputOutput(actions)
    if kind == "sendinput" and kind in OUTPUTS:
        return SendInputOutput(actions)
    if kind == "dry-run":
        return DryRunOutput(actions)
    raise EngineError(f"unknown output {kind!r}; valid: {', '.join(OUTPUTS)}")


__all__ = [
    "OUTPUTS", "DryRunOutput", "NativeKeysOutput", "NullOutput", "Output", "SendInputOutput", "UinputOutput",
    "XTestOutput", "default_output", "open_output", "outputs_for", "uinput_error",
]
