"""engine._native: the pybind11 glue over native/ (private; use the engine package).

Generated with pybind11-stubgen (``pybind11-stubgen engine._native``), then tidied by hand: precise array
and tuple types, ``int``/``float`` for pybind11's Supports* unions, and both OSes' classes (python/*.cpp
binds one OS's set; see the Windows section). Checked against the module by ``make check``
(``python -m mypy.stubtest engine._native engine._pacer``).
"""

from collections.abc import Sequence
from typing import Any, type_check_only

import numpy as np
import numpy.typing as npt

__version__: str

_U8 = npt.NDArray[np.uint8]

@type_check_only
class _Pybind11Type(type):
    """pybind11's metaclass (pybind11_builtins.pybind11_type), named so stubtest sees one."""

def monotonic_ns() -> int:
    """The engine's clock: monotonic nanoseconds (int64)."""

# -- kernels (python/bind_kernels.cpp) ----------------------------------------------------------------

def kernel_paths() -> list[str]:
    """Kernel paths this CPU can run, slowest first."""

def best_kernel_path() -> str: ...

class ConvertResize(metaclass=_Pybind11Type):
    """Prepared fused BGRA -> gray|rgb conversion and area resize for fixed sizes."""

    def __init__(self, src_w: int, src_h: int, dst_w: int, dst_h: int, color: str = "gray",
                 path: str = "auto") -> None: ...
    def run(self, src: _U8, out: _U8 | None = None) -> _U8:
        """Convert src (H, W, 4) BGRA into out (or a new array); returns the output."""
    @property
    def color(self) -> str: ...
    @property
    def frame_bytes(self) -> int: ...
    @property
    def path(self) -> str: ...

def convert_resize(src: _U8, width: int, height: int, color: str = "gray", path: str = "auto",
                   out: _U8 | None = None) -> _U8:
    """One-shot fused convert + area resize of a BGRA image."""

# -- rings (python/bind_ring.cpp) ---------------------------------------------------------------------

class FrameSink(metaclass=_Pybind11Type):
    @property
    def frame_bytes(self) -> int: ...

class FrameQueue(FrameSink):
    """SPSC queue of frames for recording. A native producer fills it; one Python consumer drains it.
    When full, the producer drops the newest frame and counts it."""

    def __init__(self, capacity: int, frame_shape: Sequence[int]) -> None: ...
    def available(self) -> int:
        """Consumer only: frames ready to read."""
    def frame(self, i: int = 0) -> _U8:
        """Consumer only: zero-copy read-only view of the i-th ready frame, valid until pop()."""
    def pop(self, n: int = 1) -> None:
        """Consumer only: release n frames."""
    def pop_into(self, frames: _U8, t_ns: npt.NDArray[np.int64], ticks: npt.NDArray[np.uint64]) -> int:
        """Consumer only: copy up to len(frames) ready frames (e.g. into a memmap) and release them."""
    def t_ns(self, i: int = 0) -> int: ...
    def tick(self, i: int = 0) -> int: ...
    def wait(self, timeout: float = -1.0) -> int:
        """Consumer only: block (without the GIL) until a frame is ready."""
    @property
    def capacity(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def frame_shape(self) -> tuple[int, ...]: ...

class LatestRing(FrameSink):
    """The newest `window` frames as one contiguous array (mirrored storage), for play. Readers never
    block the producer; a copy that raced with an overwrite is reported and retried."""

    def __init__(self, window: int, frame_shape: Sequence[int], slack: int = 4) -> None: ...
    def copy_window(self, end: int, out: _U8) -> tuple[int, int] | None:
        """Copy the window ending at frame `end` into out. Returns (t_ns, tick) of that newest frame, or
        None if the producer overwrote the window meanwhile (then out holds nothing usable)."""
    def t_ns(self, arg0: int) -> int: ...
    def tick(self, arg0: int) -> int: ...
    def t_grabbed(self, frame: int) -> int:
        """When the grab of `frame` returned (monotonic ns; 0 if pushed without a grab)."""
    def t_published(self, frame: int) -> int:
        """When `frame` was published (monotonic ns; valid while it is in the ring)."""
    def lock(self) -> bool:
        """mlock the frame storage (no page faults on the latency path); False if RLIMIT_MEMLOCK refuses."""
    @property
    def locked(self) -> bool: ...
    @property
    def woken_ns(self) -> int:
        """When the last wait_newer() saw a new frame, before it took the GIL back (ns)."""
    def wait_newer(self, after: int, timeout: float = -1.0) -> int:
        """Block (without the GIL) until more than `after` frames are published; returns the count."""
    @property
    def frame_shape(self) -> tuple[int, ...]: ...
    @property
    def published(self) -> int: ...
    @property
    def slack(self) -> int: ...
    @property
    def window(self) -> int: ...

def feed_window(ring: LatestRing, end: int, window: int, skip: int, lut: npt.NDArray[Any], layout: str,
                out: npt.NDArray[Any]) -> tuple[int, int] | None:
    """Write the window ending at `end` (every `skip`-th frame) into a model input buffer through a
    256-entry LUT, layout 'frames' or 'channels'. Returns (t_ns, tick) of the newest frame, or None if the
    producer overwrote the window meanwhile."""

def wait_feed(ring: LatestRing, after: int, timeout: float, window: int, skip: int, lut: npt.NDArray[Any],
              layout: str, out: npt.NDArray[Any]) -> tuple[int, bool, int, int, int, int, int, int]:
    """Wait (without the GIL, up to `timeout` s) until more than `after` frames are published, then feed the
    newest window like feed_window. Returns (published, fed, t_ns, tick, t_grabbed, t_published, t_woken,
    t_fed): fed is False on a timeout or a torn window (then retry)."""

def push_frame(sink: FrameSink, frame: _U8, t_ns: int, tick: int) -> bool:
    """Producer side for already-converted frames (replaying a session): copy into the next slot and
    publish. Returns False when the sink was full (dropped and counted)."""

# -- capture (python/bind_capture.cpp) ----------------------------------------------------------------

class Source(metaclass=_Pybind11Type):
    """A native capture backend."""

    def grab(self) -> _U8:
        """Grab BGRA pixels, shape (H, W, 4). The array views the backend's buffer: the next grab
        overwrites it, so copy what you keep."""
    @property
    def backend(self) -> str: ...
    @property
    def fallback_reason(self) -> str: ...
    @property
    def height(self) -> int: ...
    @property
    def rect(self) -> list[int]:
        """Absolute screen rectangle (x, y, w, h) of the last grab."""
    @property
    def width(self) -> int: ...

class CallableSource(Source):
    """A Python capture backend as a native Source: grab() calls `grab` with the GIL held. It lets the native
    CaptureLoop pace, convert, drop and count for Python backends too."""

    def __init__(self, grab: Any, rect: Sequence[int], backend: str = "python", fallback_reason: str = "") -> None: ...

class CaptureLoop(metaclass=_Pybind11Type):
    """Native capture thread: per pacer tick grab, convert+resize into a sink slot, stamp, publish."""

    def __init__(self, source: Source, sink: FrameSink, width: int, height: int, color: str = "gray",
                 period_ns: int = 33333333, path: str = "auto", spin_ns: int = 60000) -> None: ...
    def lateness_log(self) -> npt.NDArray[np.int64]:
        """Lateness (ns) of the most recent ticks, oldest first."""
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def set_realtime(self, priority: int, cpu: int = -1, grab_realtime: bool = False) -> None:
        """Before start(): SCHED_FIFO at `priority` (0: off) and pinned to `cpu` (< 0: anywhere) for the thread;
        grab_realtime: for the grab too, its wait for the X server kicked (play), not only the tick."""
    def start(self) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def stop(self) -> None: ...
    @property
    def error(self) -> str: ...
    @property
    def paused(self) -> bool: ...
    @property
    def period_ns(self) -> int: ...
    @property
    def running(self) -> bool: ...
    @property
    def scheduling(self) -> str:
        """What the thread was granted ("SCHED_FIFO 20 granted", "... refused (...)", "off")."""
    @property
    def window_lost(self) -> bool: ...

# -- input (python/bind_input.cpp) --------------------------------------------------------------------

def action_names() -> list[str]:
    """Every action name the engine knows, in table order."""

def action_info(name: str) -> dict[str, Any]:
    """Platform codes of an action; ValueError listing the valid names if unknown."""

class Actuator(metaclass=_Pybind11Type):
    """Presses and releases the configured actions, sending only changes (XTest or SendInput)."""

    def __len__(self) -> int: ...
    def apply(self, state: npt.ArrayLike) -> int:
        """Make the held set equal `state` (one value per action); returns events sent."""
    def release_all(self) -> int:
        """Release every action this actuator holds; returns events sent."""
    def release_system_held(self) -> int:
        """Release every configured action the system has down, whoever pressed it (crash watchdog)."""
    def set(self, action: int, down: bool) -> None: ...
    def move(self, dx: int, dy: int, wheel: int = 0) -> int:
        """Relative pointer motion (device units) and wheel notches (> 0 up), sent now; returns events sent.
        May be called from one other thread while the play loop sends keys."""
    def warp(self, x: int, y: int) -> None:
        """The pointer to absolute screen pixel (x, y) (X11: root window; Windows: virtual desktop)."""
    def system_held(self) -> list[bool]:
        """What the system (X server, or Windows) believes is down for each action, whoever pressed it."""
    @property
    def held(self) -> list[bool]:
        """What this actuator holds, per action."""

class AxisFramer(metaclass=_Pybind11Type):
    """Per-frame axis values from timestamped axis events (native/input/axis_framer.hpp): a
    relative axis sums its deltas over (t[i-1], t[i]], an absolute axis holds its value at t[i]."""

    def __init__(self, relative: Sequence[bool], neutral: Sequence[float]) -> None: ...
    def add_events(self, t_ns: npt.ArrayLike, axis: npt.ArrayLike, value: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Queue events (axis in [0, K)) until the frames they fall in arrive (out-of-order ones are sorted
        in); returns them as the session's axis log records (as Listener.pop_axes_into)."""
    def skip(self, t0: int, t1: int) -> None:
        """Relative motion in (t0, t1] is in no frame (before capture started, or paused), also if its events
        arrive later; absolute values there still set the state."""
    def settle(self, t_ns: int) -> None:
        """Fold queued events at or before t_ns into the state (no frame can come before t_ns)."""
    def frame(self, t_frames: npt.ArrayLike, out: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
        """Axis values (k, K) float32 for frames captured at t_frames (increasing), continuing from the last call."""
    @property
    def queued(self) -> int:
        """Events waiting for their frame."""
    @property
    def n_axes(self) -> int: ...

class Listener(metaclass=_Pybind11Type):
    """Timestamped press/release events of the configured actions and hotkeys only, from a native thread."""

    def pop(self, max: int = 4096) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16], npt.NDArray[np.int8],
                                            npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
        """Events so far as (t_ns int64, action int16, value int8, device int32, injected uint8) arrays;
        action < 0 is hotkey -(action+1); device is the source device (X11: the XInput2 slave id),
        injected 1 if that device is an injection device (X11: an XTest slave; Windows: injected input)."""
    def pop_axes(self, max: int = 65536) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16],
                                                   npt.NDArray[np.float32], npt.NDArray[np.int32],
                                                   npt.NDArray[np.uint8]]:
        """Axis events so far as (t_ns int64, axis int16, value float32, device int32, injected uint8) arrays:
        axis indexes the configured axes; value is a relative axis' delta or an absolute axis' new value."""
    def pop_axes_into(self, framer: AxisFramer, max: int = 65536) -> npt.NDArray[np.uint8]:
        """Axis events so far into `framer` (an AxisFramer over the configured axes), in one call; returns
        them as the session's axis log records: bytes of (t_ns <i8, axis <i2, value <f4) packed, 14 each
        (view them as engine.session.layout.AXIS_EVENT_DTYPE)."""
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def wait(self, timeout: float = -1.0) -> None: ...
    @property
    def axis_dropped(self) -> int:
        """Axis events lost because the axis queue was full (never drained)."""
    @property
    def dropped(self) -> int: ...
    @property
    def error(self) -> str: ...
    @property
    def hotkey_presses(self) -> int:
        """Hotkey presses the thread has seen so far (a cheap check between pops)."""
    @property
    def running(self) -> bool: ...

# -- Windows only -------------------------------------------------------------------------------------
# Declared on every OS so that the Windows branches, chosen at run time by backend name, type-check on
# Linux too; stubtest-allowlist.txt lists them as absent here (tests/test_windows_glue.py asserts they are).

class DxgiGrabber(Source):
    def __init__(self, output: int = 0, window_handle: int = 0, window_title: str = "",
                 region: Sequence[int] | None = None, use_dxgi: bool = True) -> None: ...
    def stats(self) -> dict[str, int]: ...
    @property
    def rotation_degrees(self) -> int: ...
    @property
    def window_handle(self) -> int: ...

class GdiGrabber(Source):
    def __init__(self, output: int = 0, window_handle: int = 0, window_title: str = "",
                 region: Sequence[int] | None = None) -> None: ...
    @property
    def stale_grabs(self) -> int: ...
    @property
    def window_handle(self) -> int: ...

def win_list_windows() -> list[dict[str, Any]]: ...
def win_list_monitors() -> list[dict[str, Any]]: ...
def win_screen_size() -> list[int]:
    """Size of the primary monitor in physical pixels."""

class SendInputActuator(Actuator):
    """Sends press/release changes of the configured actions via SendInput."""

    def __init__(self, actions: Sequence[str]) -> None: ...

class ViGEmPad(metaclass=_Pybind11Type):
    """A virtual Xbox 360 pad through ViGEm (ViGEmClient.dll loaded at run time)."""

    def __init__(self) -> None: ...
    def update(self, buttons: int, lt: int, rt: int, lx: int, ly: int, rx: int, ry: int) -> None:
        """One report: XUSB_GAMEPAD_* button bits, triggers 0..255, sticks -32768..32767 (y up)."""
    def neutral(self) -> None:
        """Sticks centred, triggers 0, buttons up."""

class RawInputListener(Listener):
    """Raw input (WM_INPUT) key/button events of the configured actions and hotkeys only."""

    def __init__(self, actions: Sequence[str], hotkeys: Sequence[str] = [], capacity: int = 65536,
                 axes: Sequence[str] = []) -> None:
        """axes: mouse_dx, mouse_dy, wheel (raw input) and pad_* (XInput pad 0, polled in the listener thread)."""
# -- X11 only (python/*.cpp bind these on every OS but Windows) -----------------------------------------

class X11Grabber(Source):
    def __init__(self, display: str = "", window_id: int = 0, window_title: str = "",
                 region: Sequence[int] | None = None, use_shm: bool = True, window_source: str = "auto") -> None: ...
    @property
    def read_from(self) -> str:
        """What a window's pixels are read from: 'composite', 'window' or 'screen'."""
    @property
    def screen_size(self) -> list[int]: ...
    @property
    def window_id(self) -> int: ...

def x11_list_windows(display: str = "") -> list[dict[str, Any]]: ...
def x11_screen_size(display: str = "") -> list[int]: ...

class XTestActuator(Actuator):
    """Sends press/release changes of the configured actions via XTest."""

    def __init__(self, display: str, actions: Sequence[str], master: str = "") -> None:
        """master: send through the XTest slaves of this XInput2 master (created if missing, removed when the
        actuator closes) instead of the core ones, so its events carry another source device."""
    @property
    def devices(self) -> list[int]:
        """XInput2 ids of the XTest slaves it sends through: its events' source devices."""

class X11InputListener(Listener):
    """XInput2 raw key/button events of the configured actions and hotkeys only."""

    def __init__(self, display: str, actions: Sequence[str], hotkeys: Sequence[str] = [],
                 capacity: int = 65536, axes: Sequence[str] = [], region: Sequence[int] = []) -> None:
        """axes: mouse_dx, mouse_dy (XI2 raw motion), wheel (raw buttons 4/5), mouse_x, mouse_y (pointer position
        in [0, 1] across region (x, y, w, h); default the screen)."""
