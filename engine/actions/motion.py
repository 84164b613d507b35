"""Axis actuation (issue 14): relative mouse motion spread over the frame period, absolute pointer
positions, and virtual gamepads. engine.actions.outputs composes these into its outputs; nothing else
uses them directly.

- :class:`MotionSpreader`: each decision's relative motion (mouse_dx, mouse_dy in device units, wheel in
  notches) is sent as ``steps`` integer pieces at even offsets within the frame period, from its own
  thread, so the game sees the motion a hand makes, not one jump per frame. Fractions are carried to the
  next decision and the pieces of a decision sum exactly to its integer part, so over a run the motion
  sent equals the motion asked for (to within one count). Motion still in flight when the next decision
  arrives is merged into it (never dropped, never sent as a jump); :meth:`MotionSpreader.stop` drops it
  (the exit paths: release_all, close).
- :class:`UinputPad`: an Xbox-like virtual pad through python-evdev's UInput (ABS_X/Y/RX/RY in
  -32768..32767, ABS_Z/RZ triggers in 0..1023, ABS_HAT0X/Y for the d-pad, BTN_SOUTH/EAST/NORTH/WEST,
  BTN_TL/TR, BTN_SELECT/START, BTN_THUMBL/R). Destroyed with its file descriptor: a process that dies
  takes the pad with it, so a crash cannot leave a stick deflected.
- :class:`ViGEmPadOutput`: the same on Windows through ViGEm (engine._native.ViGEmPad; compile-tested only).

Axis conventions are engine.actions.names': sticks in [-1, 1] with y down (evdev's), triggers in [0, 1].
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.actions.names import PAD_BUTTONS, PAD_NAME
from engine.errors import EngineError

PAD_AXES: tuple[str, ...] = ("pad_lx", "pad_ly", "pad_rx", "pad_ry", "pad_lt", "pad_rt")
MOUSE_ABSOLUTE: tuple[str, ...] = ("mouse_x", "mouse_y")
# Linux: what an Xbox pad (the kernel's xpad driver) reports for each button; the d-pad is a hat.
PAD_EVDEV: dict[str, str] = {
    "pad_a": "BTN_SOUTH", "pad_b": "BTN_EAST", "pad_x": "BTN_NORTH", "pad_y": "BTN_WEST", "pad_lb": "BTN_TL",
    "pad_rb": "BTN_TR", "pad_back": "BTN_SELECT", "pad_start": "BTN_START", "pad_ls": "BTN_THUMBL",
    "pad_rs": "BTN_THUMBR",
}
PAD_HAT: dict[str, tuple[str, int]] = {
    "pad_up": ("ABS_HAT0Y", -1), "pad_down": ("ABS_HAT0Y", 1), "pad_left": ("ABS_HAT0X", -1),
    "pad_right": ("ABS_HAT0X", 1),
}
STICK_MAX = 32767
TRIGGER_MAX = 1023
# Windows: XUSB_GAMEPAD_* bits of the ViGEm (XInput) report.
XUSB_BITS: dict[str, int] = {
    "pad_up": 0x0001, "pad_down": 0x0002, "pad_left": 0x0004, "pad_right": 0x0008, "pad_start": 0x0010,
    "pad_back": 0x0020, "pad_ls": 0x0040, "pad_rs": 0x0080, "pad_lb": 0x0100, "pad_rb": 0x0200, "pad_a": 0x1000,
    "pad_b": 0x2000, "pad_x": 0x4000, "pad_y": 0x8000,
}


def split_pieces(total: int, steps: int) -> list[int]:
    """``total`` as ``steps`` integers that differ by at most one and sum exactly to it."""
    return [(total * (k + 1)) // steps - (total * k) // steps for k in range(steps)]


class MotionSpreader:
    """Sends relative motion through ``send(dx, dy, wheel)`` in ``steps`` pieces at offsets 0, P/steps, ...
    of the period P, from a thread of its own (started on the first motion). Wheel notches go with the
    first piece (a notch cannot be split)."""

    def __init__(self, send: Callable[[int, int, int], int], period_s: float, steps: int = 4) -> None:
        if not period_s > 0 or steps < 1:
            raise EngineError(f"motion needs a positive frame period and steps, got {period_s} s, {steps}")
        self._send = send
        self.period_ns = round(period_s * 1e9)
        self.steps = steps
        self._cond = threading.Condition()
        # Held while a piece is being sent: stop() waits for it. Reentrant: stop() may run in a signal handler
        # on the thread that is sending (the demo game's), which must not wait for itself.
        self._send_lock = threading.RLock()
        self._plan: list[list[int]] = []  # [due_ns, dx, dy, wheel], due order
        self._carry = [0.0, 0.0, 0.0]  # fractions not sent yet (dx, dy, wheel)
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = [0, 0, 0]  # totals sent (dx, dy, wheel)
        self.events = 0  # send() calls made
        self.error = ""

    def add(self, dx: float, dy: float, wheel: float = 0.0) -> int:
        """One decision's motion: spread over the next period, merged with what is still in flight. The
        first piece is sent before this returns; returns the events it took."""
        before = self.events
        # Plain floats, not NumPy: this runs on the play loop's path once a decision.
        want = [c + (v if math.isfinite(v) else 0.0) for c, v in zip(self._carry, (dx, dy, wheel), strict=True)]
        ix, iy, iw = (round(v) for v in want)
        self._carry = [want[0] - ix, want[1] - iy, want[2] - iw]
        with self._cond:
            if self.error:
                raise EngineError(f"mouse motion failed: {self.error}")
            for _, px, py, pw in self._plan:  # merge the unsent rest of the previous decision
                ix, iy, iw = ix + px, iy + py, iw + pw
            self._plan = []
            now = time.monotonic_ns()
            if ix or iy or iw:
                xs, ys = split_pieces(ix, self.steps), split_pieces(iy, self.steps)
                for k in range(self.steps):
                    w = iw if k == 0 else 0
                    if xs[k] or ys[k] or w:
                        self._plan.append([now + k * self.period_ns // self.steps, xs[k], ys[k], w])
            # The piece due now goes out from the caller's thread (with the keys of the same decision).
            first = self._plan.pop(0) if self._plan and self._plan[0][0] <= now else None
            if self._thread is None and self._plan:
                self._thread = threading.Thread(target=self._run, name="engine-motion", daemon=True)
                self._thread.start()
            if first is not None:
                self._send_lock.acquire()
            self._cond.notify()
        if first is not None:
            self._send_piece(first)
        return self.events - before

    @property
    def pending(self) -> tuple[int, int, int]:
        """Motion planned but not sent yet (dx, dy, wheel)."""
        with self._cond:
            return (sum(p[1] for p in self._plan), sum(p[2] for p in self._plan), sum(p[3] for p in self._plan))

    def wait_idle(self, timeout: float = 1.0) -> bool:
        """Wait until everything planned was sent; False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._plan and not self.error:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.01))
        with self._send_lock:  # the last piece popped may still be on its way
            return True

    def stop(self) -> None:
        """Drop the motion in flight and the carried fractions; on return nothing more is sent."""
        with self._cond:
            self._plan = []
            self._carry = [0.0, 0.0, 0.0]
            self._cond.notify()
        with self._send_lock:
            pass

    def close(self) -> None:
        self.stop()
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._plan:
                        wait = (self._plan[0][0] - time.monotonic_ns()) / 1e9
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                piece = self._plan.pop(0)
                self._send_lock.acquire()  # taken before the plan lock is let go: stop() cannot slip between
                self._cond.notify_all()
            self._send_piece(piece)

    def _send_piece(self, piece: list[int]) -> None:
        """Send one piece; the caller holds _send_lock, released here."""
        _, dx, dy, wheel = piece
        failed = ""
        try:
            self.events += self._send(dx, dy, wheel)
            self.sent = [self.sent[0] + dx, self.sent[1] + dy, self.sent[2] + wheel]
        except Exception as e:  # reported by the next add(); nothing more is sent
            failed = f"{type(e).__name__}: {e}"
        finally:
            self._send_lock.release()
        if failed:  # the plan lock only after the send lock is let go (add() takes them in the other order)
            with self._cond:
                self.error = failed
                self._plan = []


class PointerWarp:
    """mouse_x / mouse_y in [0, 1] within ``region`` (x, y, w, h, screen pixels): the pointer is put there
    when the pixel it maps to changes. An axis not configured keeps its last value (0.5 at first)."""

    def __init__(self, warp: Callable[[int, int], None], region: Sequence[int]) -> None:
        if len(region) != 4 or region[2] < 1 or region[3] < 1:
            raise EngineError("mouse_x/mouse_y need the captured region to place the pointer in; none was given")
        self._warp = warp
        self.region = tuple(int(v) for v in region)
        self.value = [0.5, 0.5]
        self._at: tuple[int, int] | None = None

    def set(self, which: int, value: float) -> None:
        self.value[which] = float(np.clip(np.nan_to_num(value, nan=0.5), 0.0, 1.0))

    def flush(self) -> int:
        x, y, w, h = self.region
        at = (x + round(self.value[0] * (w - 1)), y + round(self.value[1] * (h - 1)))
        if at == self._at:
            return 0
        self._warp(*at)
        self._at = at
        return 1


def _stick(v: float) -> int:
    return round(float(np.clip(np.nan_to_num(v), -1.0, 1.0)) * STICK_MAX)


class UinputPad:
    """An Xbox-like virtual pad (python-evdev UInput). ``set(buttons, axes)`` writes only what changed,
    then one SYN_REPORT; :meth:`neutral` centres the sticks, zeroes the triggers and lifts every button."""

    SETTLE_S = 1.0  # events written right after the device appears are lost: udev and the game open it first

    def __init__(self, buttons: Sequence[str], axes: Sequence[str], settle_s: float | None = None) -> None:
        from engine.actions.outputs import uinput_error

        try:
            import evdev
            from evdev import AbsInfo, ecodes
        except ImportError:  # pragma: no cover - a Linux dependency
            raise EngineError("python-evdev is not installed (pip install evdev); a virtual pad needs it") from None
        self.buttons, self.axes = list(buttons), list(axes)
        self._e = ecodes
        keys = [getattr(ecodes, PAD_EVDEV[b]) for b in PAD_EVDEV]  # the full set: games expect a whole pad
        stick = AbsInfo(value=0, min=-STICK_MAX - 1, max=STICK_MAX, fuzz=16, flat=128, resolution=0)
        trigger = AbsInfo(value=0, min=0, max=TRIGGER_MAX, fuzz=0, flat=0, resolution=0)
        hat = AbsInfo(value=0, min=-1, max=1, fuzz=0, flat=0, resolution=0)
        # (code, AbsInfo) pairs: the python-evdev docs' form for absolute axes (its type stubs only know codes).
        abs_caps: Any = [(ecodes.ABS_X, stick), (ecodes.ABS_Y, stick), (ecodes.ABS_RX, stick), (ecodes.ABS_RY, stick),
                    (ecodes.ABS_Z, trigger), (ecodes.ABS_RZ, trigger), (ecodes.ABS_HAT0X, hat),
                    (ecodes.ABS_HAT0Y, hat)]
        try:  # an Xbox 360 pad's ids, so SDL and games map it as one
            self._dev = evdev.UInput({ecodes.EV_KEY: keys, ecodes.EV_ABS: abs_caps}, name=PAD_NAME,
                                     vendor=0x045E, product=0x028E, version=0x110, bustype=ecodes.BUS_USB)
        except (OSError, evdev.UInputError) as e:
            raise EngineError(uinput_error(e).replace("--output xtest", "play without pad actions")) from None
        self._axis_code = {"pad_lx": ecodes.ABS_X, "pad_ly": ecodes.ABS_Y, "pad_rx": ecodes.ABS_RX,
                           "pad_ry": ecodes.ABS_RY, "pad_lt": ecodes.ABS_Z, "pad_rt": ecodes.ABS_RZ}
        self._state: dict[tuple[int, int], int] = {}  # (type, code) -> value last written
        time.sleep(self.SETTLE_S if settle_s is None else settle_s)

    def _write(self, etype: int, code: int, value: int) -> int:
        if self._state.get((etype, code), 0) == value:
            return 0
        self._dev.write(etype, code, value)
        self._state[(etype, code)] = value
        return 1

    def set(self, held: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> int:
        e = self._e
        n = 0
        hats = {"ABS_HAT0X": 0, "ABS_HAT0Y": 0}
        for name, down in zip(self.buttons, held, strict=True):
            if name in PAD_HAT:
                if down:
                    axis, sign = PAD_HAT[name]
                    hats[axis] += sign
            else:
                n += self._write(e.EV_KEY, getattr(e, PAD_EVDEV[name]), int(bool(down)))
        if any(b in PAD_HAT for b in self.buttons):
            for axis, v in hats.items():
                n += self._write(e.EV_ABS, getattr(e, axis), int(np.sign(v)))
        for name, v in zip(self.axes, values, strict=True):
            if name in ("pad_lt", "pad_rt"):
                raw = round(float(np.clip(np.nan_to_num(v), 0.0, 1.0)) * TRIGGER_MAX)
            else:
                raw = _stick(v)
            n += self._write(e.EV_ABS, self._axis_code[name], raw)
        if n:
            self._dev.syn()
        return n

    def neutral(self) -> int:
        n = 0
        for (etype, code), v in list(self._state.items()):
            if v:
                n += self._write(etype, code, 0)
        if n:
            self._dev.syn()
        return n

    def close(self) -> None:
        try:
            self.neutral()
        finally:
            self._dev.close()


class ViGEmPadOutput:
    """The :class:`UinputPad` interface on Windows through ViGEm (engine._native.ViGEmPad): one full report
    per change. XInput's stick y is up, the engine's down: flipped here."""

    def __init__(self, buttons: Sequence[str], axes: Sequence[str]) -> None:
        from engine import _native

        self.buttons, self.axes = list(buttons), list(axes)
        self._pad: Any = _native.ViGEmPad()  # type: ignore[attr-defined,unused-ignore]
        self._last: tuple[int, ...] | None = None

    def set(self, held: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> int:
        bits = sum(XUSB_BITS[b] for b, down in zip(self.buttons, held, strict=True) if down)
        v = dict(zip(self.axes, (float(x) for x in values), strict=True))
        trig = [round(float(np.clip(np.nan_to_num(v.get(t, 0.0)), 0, 1)) * 255) for t in ("pad_lt", "pad_rt")]
        report = (bits, *trig, _stick(v.get("pad_lx", 0.0)), -_stick(v.get("pad_ly", 0.0)),
                  _stick(v.get("pad_rx", 0.0)), -_stick(v.get("pad_ry", 0.0)))
        if report == self._last:
            return 0
        self._pad.update(*report)
        self._last = report
        return 1

    def neutral(self) -> int:
        self._pad.neutral()
        self._last = None
        return 1

    def close(self) -> None:
        self.neutral()
        del self._pad  # the destructor unplugs the pad


def pad_parts(keys: Sequence[str], axes: Sequence[str]) -> tuple[list[str], list[str]]:
    """(pad buttons among keys, pad axes among axes), in order."""
    return [k for k in keys if k in PAD_BUTTONS], [a for a in axes if a in PAD_AXES]


__all__ = [
    "MOUSE_ABSOLUTE",
    "PAD_AXES",
    "PAD_EVDEV",
    "PAD_HAT",
    "PAD_NAME",
    "XUSB_BITS",
    "MotionSpreader",
    "PointerWarp",
    "UinputPad",
    "ViGEmPadOutput",
    "pad_parts",
    "split_pieces",
]
