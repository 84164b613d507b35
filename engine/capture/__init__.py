"""Screen capture: open a source (a region, a window or a monitor) and stream frames at a fixed rate.

Backends are chosen lazily, per OS then per backend, from ``BACKENDS``; ``"default"`` is the fastest
one available. On Linux the native X11 grabber (MIT-SHM, XGetImage fallback) is the default and mss
is the portable fallback. On Windows the default is DXGI Desktop Duplication, which falls back to GDI
by itself when DXGI refuses (remote sessions, some hybrid-GPU laptops); ``gdi`` forces GDI, and mss
covers what the native grabbers cannot (an area spanning monitors). A downgrade records its reason on
the source (``fallback_reason``) and is logged once. When the fallback cannot read the screen either, the
one CaptureError raised says so and carries the reason as its ``fallback_reason``.

Zero-copy: ``CaptureSource.grab()`` returns a read-only view of the backend's own buffer (for the
native grabber, the MIT-SHM segment the X server writes into). It stays valid until the next grab on
the same source; copy what you keep. Streams convert straight into ring slots, never via Python.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from typing import Any, Literal, cast

import numpy as np

from engine import _native
from engine._pacer import DEFAULT_SPIN_NS, Pacer
from engine.errors import CaptureError, EngineError

Color = Literal["gray", "rgb"]
BackendName = Literal["default", "x11", "dxgi", "gdi", "mss"]
WinBackend = Literal["dxgi", "gdi"]
StreamMode = Literal["queue", "latest"]


def backends_for(platform: str) -> tuple[str, ...]:
    """The capture backends of an OS (a ``sys.platform`` value), fastest first."""
    if platform.startswith("linux") or "bsd" in platform:
        return ("x11", "mss")
    if platform == "win32":
        return ("dxgi", "gdi", "mss")
    return ("mss",)


BACKENDS: tuple[str, ...] = backends_for(sys.platform)

_log = logging.getLogger("engine.capture")
_logged_reasons: set[str] = set()


def _note_fallback(reason: str) -> None:
    if reason and reason not in _logged_reasons:
        _logged_reasons.add(reason)
        _log.warning("capture fell back to a slower path: %s", reason)


class CaptureSource:
    """A screen area to grab from. Use :func:`open_source` to make one."""

    backend: str = ""  # the backend name chosen from BACKENDS
    path: str = ""  # what that backend actually does, e.g. "xshm" or "xgetimage"
    fallback_reason: str = ""  # why a faster backend or path was not used ("" if it was)
    native: Any = None  # the engine._native.Source feeding a native capture loop, if any

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """Absolute (x, y, w, h) of the captured area."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        return self.rect[2]

    @property
    def height(self) -> int:
        return self.rect[3]

    def grab(self) -> np.ndarray:
        """BGRA pixels, shape (H, W, 4), read-only, valid until the next grab (see module docs)."""
        raise NotImplementedError

    def grab_frame(self, size: tuple[int, int] | None = None, color: Color = "gray") -> np.ndarray:
        """One converted (and resized) frame as a new array: (H, W) gray or (H, W, 3) RGB."""
        w, h = size or (self.width, self.height)
        return _native.convert_resize(self.grab(), w, h, color)

    def close(self) -> None:
        pass

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend}/{self.path} rect={self.rect}>"


class _NativeSource(CaptureSource):
    """A source backed by an engine._native grabber (``self.native``), which a native loop can run."""

    def _adopt(self) -> None:
        """Take the path and fallback reason from the native grabber just made; log a downgrade once."""
        self.path = self.native.backend
        self.fallback_reason = self.native.fallback_reason
        _note_fallback(self.fallback_reason)

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return tuple(self.native.rect)

    def grab(self) -> np.ndarray:
        return self.native.grab()

    def close(self) -> None:
        self.native = None


class NativeX11Source(_NativeSource):
    backend = "x11"

    def __init__(
        self,
        *,
        display: str = "",
        window: str | int | None = None,
        region: tuple[int, int, int, int] | None = None,
        use_shm: bool = True,
    ) -> None:
        window_id = window if isinstance(window, int) else 0
        title = window if isinstance(window, str) else ""
        self.native = _native.X11Grabber(
            display=display, window_id=window_id, window_title=title, region=region, use_shm=use_shm
        )
        self._adopt()

    @property
    def window_id(self) -> int:
        return int(self.native.window_id)


class NativeWinSource(_NativeSource):
    """DXGI Desktop Duplication (``backend="dxgi"``, GDI when DXGI refuses) or GDI BitBlt, both native.

    output: monitor index in win_list_monitors() order (the primary first); unused with a window.
    region: relative to the window's client area, or to the monitor (see :func:`win_target`).
    """

    def __init__(
        self,
        *,
        backend: WinBackend = "dxgi",
        window: str | int | None = None,
        region: tuple[int, int, int, int] | None = None,
        output: int = 0,
    ) -> None:
        window_handle = window if isinstance(window, int) else 0
        title = window if isinstance(window, str) else ""
        if backend == "dxgi":
            self.native = _native.DxgiGrabber(output=output, window_handle=window_handle, window_title=title,
                                              region=region)
        else:
            self.native = _native.GdiGrabber(output=output, window_handle=window_handle, window_title=title,
                                             region=region)
        self.backend = backend
        self._adopt()  # path: "dxgi", or "gdi" after DXGI refused

    @property
    def window_id(self) -> int:
        """The captured window's HWND (0 when capturing a monitor)."""
        return int(self.native.window_handle)


def _open_mss(display: str) -> Any:
    """An mss.MSS for the display; its refusal (e.g. an X pixel format it cannot read) as CaptureError."""
    import mss
    from mss.exception import ScreenShotError

    kwargs: dict[str, Any] = {"display": display} if display and sys.platform.startswith("linux") else {}
    try:
        return mss.MSS(**kwargs)
    except ScreenShotError as e:
        where = f" X display {_display_name(display)!r}" if sys.platform.startswith("linux") else " the screen"
        raise CaptureError(f"mss cannot capture{where}: {e}") from e


def _display_name(display: str) -> str:
    return display or os.environ.get("DISPLAY", "")


class MssSource(CaptureSource):
    """Portable fallback through python-mss (and the reference the native grabber is tested against)."""

    backend = "mss"

    def __init__(
        self,
        *,
        display: str = "",
        region: tuple[int, int, int, int] | None = None,
        monitor: int | None = None,
        window: str | int | None = None,
    ) -> None:
        if window is not None:
            raise EngineError("the mss backend cannot follow a window; use the x11 backend or pass --region")
        self._mss: Any = _open_mss(display)  # None once closed
        self.path = "mss"
        if region is None:
            mon = self._mss.monitors[monitor if monitor is not None else 1]
            region = (mon["left"], mon["top"], mon["width"], mon["height"])
        self._rect = _check_region(region, self._mss.monitors[0])
        x, y, w, h = self._rect
        self._area = {"left": x, "top": y, "width": w, "height": h}

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self._rect

    def grab(self) -> np.ndarray:
        shot = self._mss.grab(self._area)
        arr = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return arr

    def close(self) -> None:
        if self._mss is not None:
            self._mss.close()
            self._mss = None


def _check_region(region: tuple[int, int, int, int], screen: dict[str, int]) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in region)
    sx, sy, sw, sh = screen["left"], screen["top"], screen["width"], screen["height"]
    if w <= 0 or h <= 0:
        raise EngineError(f"region {x},{y},{w},{h} has no area; give X,Y,W,H with W and H > 0")
    if x < sx or y < sy or x + w > sx + sw or y + h > sy + sh:
        raise EngineError(f"region {x},{y},{w},{h} is outside the screen ({sw}x{sh}); pick X,Y,W,H inside it")
    return x, y, w, h


def monitor_rect(monitor: int, display: str = "") -> tuple[int, int, int, int]:
    """Rectangle of monitor N as mss numbers them: 0 is the whole virtual screen, 1 the first monitor."""
    with _open_mss(display) as sct:
        monitors = sct.monitors
    if not 0 <= monitor < len(monitors):
        last = len(monitors) - 1
        raise EngineError(f"monitor {monitor} does not exist; this display has monitors 0..{last}")
    m = monitors[monitor]
    return m["left"], m["top"], m["width"], m["height"]


Rect = tuple[int, int, int, int]


def win_target(region: Rect | None, monitor: int | None, monitors: list[Rect]) -> tuple[int, Rect | None] | None:
    """Where the native Windows grabbers capture a screen area: (output index, region relative to that
    monitor, or None for all of it), or None when no single monitor holds the area (only mss can).

    region: absolute screen coordinates, as everywhere in the engine (it wins over ``monitor``).
    monitor: mss numbering, 0 = all monitors, 1 = the first; output N - 1 is monitor N. The native
    order puts the primary monitor first. Neither: the primary monitor.
    monitors: the (x, y, w, h) of each output in order (win_list_monitors()).
    """
    if region is not None:
        x, y, w, h = region
        for i, (mx, my, mw, mh) in enumerate(monitors):
            if mx <= x and my <= y and x + w <= mx + mw and y + h <= my + mh:
                return i, (x - mx, y - my, w, h)
        return None
    if monitor is None:
        return 0, None
    if not 0 <= monitor <= len(monitors):
        raise EngineError(f"monitor {monitor} does not exist; this display has monitors 0..{len(monitors)}")
    if monitor == 0:  # all monitors: one output only when there is one
        return (0, None) if len(monitors) == 1 else None
    return monitor - 1, None


def _open_windows(
    chosen: WinBackend,
    fallback: bool,
    *,
    region: Rect | None,
    window: str | int | None,
    monitor: int | None,
) -> CaptureSource:
    """open_source() for the native Windows backends (``fallback``: mss may stand in, "default" only)."""
    if window is not None:
        return NativeWinSource(backend=chosen, window=window, region=region)
    monitors: list[Rect] = [(int(x), int(y), int(w), int(h)) for x, y, w, h in
                            (m["rect"] for m in _native.win_list_monitors())]
    target = win_target(region, monitor, monitors)
    if target is None:
        what = f"region {','.join(map(str, region))}" if region is not None else f"monitor {monitor}"
        reason = f"{what} is not inside one monitor, and the {chosen} grabber captures one monitor"
        if not fallback:
            raise EngineError(f"{reason}; use --backend mss, or a region inside one monitor")
        src = MssSource(region=region, monitor=monitor)
        src.fallback_reason = reason
        _note_fallback(reason)
        return src
    output, rel = target
    return NativeWinSource(backend=chosen, output=output, region=rel)


def open_source(
    *,
    region: tuple[int, int, int, int] | None = None,
    window: str | int | None = None,
    monitor: int | None = None,
    backend: str = "default",
    display: str | None = None,
    use_shm: bool = True,
) -> CaptureSource:
    """Open a capture source.

    region: (x, y, w, h) on the screen, or inside the window when ``window`` is given.
    window: a window title (exact, else a unique case-insensitive substring), an X window id, or on
    Windows an HWND.
    monitor: mss numbering (0 = all monitors, 1 = first); ignored when region is given.
    backend: one of BACKENDS or "default" (the fastest available, with fallback).
    display: the X display (ignored on Windows).
    """
    names = ("default", *BACKENDS)
    if backend not in names:
        raise EngineError(f"unknown capture backend {backend!r}; valid: {', '.join(names)}")
    if window is not None and monitor is not None:
        raise EngineError("give a window or a monitor, not both")
    chosen = BACKENDS[0] if backend == "default" else backend
    if chosen in ("dxgi", "gdi"):
        return _open_windows(cast(WinBackend, chosen), backend == "default", region=region, window=window,
                             monitor=monitor)
    display = display or ""
    if chosen == "x11":
        return _open_x11(display, region=region, window=window, monitor=monitor, use_shm=use_shm,
                         fallback=backend == "default")
    if region is None and monitor is not None and window is None:
        region = monitor_rect(monitor, display)
    return MssSource(display=display, region=region, monitor=monitor, window=window)


def _open_x11(
    display: str,
    *,
    region: Rect | None,
    window: str | int | None,
    monitor: int | None,
    use_shm: bool,
    fallback: bool,
) -> CaptureSource:
    """open_source() for the native X11 grabber (``fallback``: mss may stand in, "default" only)."""
    monitor_error: CaptureError | None = None
    if region is None and monitor is not None and window is None:
        try:
            region = monitor_rect(monitor, display)
        except CaptureError as e:
            # mss lists the monitors, and refuses before listing them on a pixel format it cannot
            # read. The native grabber, opened on the whole screen below, then says what that format
            # is (the clearer message); if it can read the screen, mss's refusal is the error.
            monitor_error = e
    try:
        src: CaptureSource = NativeX11Source(display=display, window=window, region=region, use_shm=use_shm)
    except CaptureError as e:
        # Only a format the native grabber cannot read is worth a fallback; a missing display or
        # window would fail in mss too, so it is reported as is.
        if not fallback or "unsupported X pixel format" not in str(e):
            raise
        reason = f"native x11 grabber: {e}"
        if monitor_error is not None:
            raise _unreadable_format(display, e, monitor_error, reason) from monitor_error
        try:
            src = MssSource(display=display, region=region, window=window)
        except CaptureError as mss_error:
            raise _unreadable_format(display, e, mss_error, reason) from mss_error
        src.fallback_reason = reason
        _note_fallback(reason)
        return src
    if monitor_error is not None:
        src.close()
        raise monitor_error
    return src


def _unreadable_format(display: str, native_error: CaptureError, mss_error: CaptureError,
                       reason: str) -> CaptureError:
    """The one error for a screen neither the native grabber nor mss can read: the format, then what to
    do. The fallback that was tried stays observable as the error's ``fallback_reason``."""
    # The native message reads "unsupported X pixel format (depth 16, masks ...); ...": the part before
    # ';' names the format (native/capture/x11_shm.cpp).
    what = str(native_error).split(";", 1)[0]
    mss_says = mss_error.__cause__ or mss_error  # mss's own words, without our wrapper's prefix
    err = CaptureError(
        f"cannot capture X display {_display_name(display)!r}: {what}, which neither the native x11 grabber "
        f"nor its mss fallback can read (mss: {mss_says}). Run the X server at depth 24 "
        "(for Xvfb: -screen 0 WIDTHxHEIGHTx24)"
    )
    err.fallback_reason = reason
    return err


class CaptureStream:
    """Frames from a source at a fixed rate, converted and resized, into a ring.

    mode="queue" (recording): every frame goes to a FrameQueue the consumer drains; when it is full
    the newest frame is dropped and counted. mode="latest" (play): a LatestRing holding the newest
    ``window`` frames as one contiguous array.

    With a native source the loop is a native thread (no GIL); with mss it is a Python thread on the
    same pacer and the same converter.
    """

    def __init__(
        self,
        source: CaptureSource,
        *,
        fps: float,
        size: tuple[int, int] | None = None,
        color: Color = "gray",
        mode: StreamMode = "queue",
        capacity: int = 256,
        window: int = 1,
        slack: int = 4,
        kernel: str = "auto",
        spin_ns: int = DEFAULT_SPIN_NS,
    ) -> None:
        if not fps > 0:
            raise EngineError(f"fps must be positive, got {fps}")
        if color not in ("gray", "rgb"):
            raise EngineError(f"color must be 'gray' or 'rgb', not {color!r}")
        w, h = size or (source.width, source.height)
        self.source = source
        self.fps = float(fps)
        self.period_ns = round(1e9 / fps)
        self.color: Color = color
        self.size = (w, h)
        self.frame_shape: tuple[int, ...] = (h, w) if color == "gray" else (h, w, 3)
        self.mode: StreamMode = mode
        if mode == "queue":
            self.sink: Any = _native.FrameQueue(capacity, self.frame_shape)
        elif mode == "latest":
            self.sink = _native.LatestRing(window, self.frame_shape, slack)
        else:
            raise EngineError(f"mode must be 'queue' or 'latest', not {mode!r}")
        self._loop: Any = None
        self._thread: _PythonLoop | None = None
        if source.native is not None:
            self._loop = _native.CaptureLoop(
                source.native, self.sink, w, h, color, self.period_ns, kernel, spin_ns
            )
        else:
            conv = _native.ConvertResize(source.width, source.height, w, h, color, kernel)
            self._thread = _PythonLoop(source, self.sink, conv, self.period_ns, spin_ns)

    def start(self) -> None:
        (self._loop or self._thread).start()  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop and join the capture thread (at most a period and a grab later). Idempotent."""
        (self._loop or self._thread).stop()  # type: ignore[union-attr]

    def pause(self) -> None:
        (self._loop or self._thread).pause()  # type: ignore[union-attr]

    def resume(self) -> None:
        (self._loop or self._thread).resume()  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        return bool((self._loop or self._thread).running)  # type: ignore[union-attr]

    @property
    def error(self) -> str:
        """Why the capture thread stopped on its own ("" while healthy)."""
        return str((self._loop or self._thread).error)  # type: ignore[union-attr]

    @property
    def window_lost(self) -> bool:
        return bool((self._loop or self._thread).window_lost)  # type: ignore[union-attr]

    def stats(self) -> dict[str, int]:
        return dict((self._loop or self._thread).stats())  # type: ignore[union-attr]

    def lateness_log(self) -> np.ndarray:
        return np.asarray((self._loop or self._thread).lateness_log())  # type: ignore[union-attr]

    def __enter__(self) -> CaptureStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PythonLoop:
    """The capture loop for Python backends (mss): same pacer, same converter, same sink contract."""

    def __init__(self, source: CaptureSource, sink: Any, conv: Any, period_ns: int, spin_ns: int) -> None:
        self._source, self._sink, self._conv = source, sink, conv
        self._period_ns, self._spin_ns = period_ns, spin_ns
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._resumed = False
        self._thread: threading.Thread | None = None
        self.error = ""
        self.window_lost = False
        self._stats = dict.fromkeys(
            ("ticks", "frames", "late_ticks", "dropped", "grab_ns_total", "grab_ns_max", "convert_ns_total",
             "convert_ns_max", "lateness_ns_total", "lateness_ns_max"), 0)
        self._lateness: deque[int] = deque(maxlen=65536)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine-capture-mss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._resumed = True
        self._paused.clear()

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def lateness_log(self) -> np.ndarray:
        return np.asarray(self._lateness, dtype=np.int64)

    def _run(self) -> None:
        from engine._pacer import monotonic_ns

        pacer = Pacer(period_ns=self._period_ns, spin_ns=self._spin_ns)
        s = self._stats
        try:
            while not self._stop.is_set():
                if self._paused.is_set():
                    self._stop.wait(0.005)
                    continue
                if self._resumed:
                    self._resumed = False
                    pacer.restart()
                tick = pacer.wait()
                s["ticks"] += 1
                s["late_ticks"] += tick.skipped
                s["lateness_ns_total"] += tick.lateness_ns
                s["lateness_ns_max"] = max(s["lateness_ns_max"], tick.lateness_ns)
                self._lateness.append(tick.lateness_ns)
                t0 = monotonic_ns()
                bgra = self._source.grab()
                t1 = monotonic_ns()
                if _native.publish_frame(self._sink, self._conv, bgra, t0, tick.index):
                    s["frames"] += 1
                else:
                    s["dropped"] += 1
                t2 = monotonic_ns()
                s["grab_ns_total"] += t1 - t0
                s["grab_ns_max"] = max(s["grab_ns_max"], t1 - t0)
                s["convert_ns_total"] += t2 - t1
                s["convert_ns_max"] = max(s["convert_ns_max"], t2 - t1)
        except Exception as e:  # surfaced through .error like the native loop's
            self.error = str(e) or type(e).__name__


__all__ = [
    "BACKENDS",
    "CaptureSource",
    "CaptureStream",
    "Color",
    "MssSource",
    "NativeWinSource",
    "NativeX11Source",
    "backends_for",
    "monitor_rect",
    "open_source",
    "win_target",
]
