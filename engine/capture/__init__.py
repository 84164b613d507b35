"""Screen capture: open a source (a region, a window or a monitor) and stream frames at a fixed rate.

Backends are chosen lazily, per OS then per backend, from ``BACKENDS``; ``"default"`` is the fastest
one available. On Linux the native X11 grabber (MIT-SHM, XGetImage fallback) is the default and mss
is the portable fallback. On Windows the default is DXGI Desktop Duplication, which falls back to GDI
by itself when DXGI refuses (remote sessions, some hybrid-GPU laptops); ``gdi`` forces GDI, and mss
covers what the native grabbers cannot (an area spanning monitors). A downgrade records its reason on
the source (``fallback_reason``) and is logged once. When the fallback cannot read the screen either, the
one CaptureError raised says so and carries the reason as its ``fallback_reason``.

Modules: ``base`` (the CaptureSource interface), one per backend (``x11``, ``windows``, ``mss_source``),
``stream`` (CaptureStream, over the one native capture loop). Importing this package opens no display,
lists no monitor and loads no backend: :func:`open_source` imports the one it selects.

Zero-copy: ``CaptureSource.grab()`` returns a read-only view of the backend's own buffer (for the
native grabber, the MIT-SHM segment the X server writes into). It stays valid until the next grab on
the same source; copy what you keep. Streams convert straight into ring slots, never via Python.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, cast

from engine.capture.base import BackendName, CaptureSource, Color, Rect
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.capture.mss_source import MssSource, monitor_rect
    from engine.capture.stream import CaptureStream, StreamMode
    from engine.capture.windows import NativeWinSource, WinBackend, win_target
    from engine.capture.x11 import NativeX11Source, WindowSource


def backends_for(platform: str) -> tuple[str, ...]:
    """The capture backends of an OS (a ``sys.platform`` value), fastest first."""
    if platform.startswith("linux") or "bsd" in platform:
        return ("x11", "mss")
    if platform == "win32":
        return ("dxgi", "gdi", "mss")
    return ("mss",)


# This OS's backends, fastest first; "default" (accepted by open_source) means the first, with fallback.
BACKENDS: tuple[str, ...] = backends_for(sys.platform)

# Loaded on first use (PEP 562), so that importing the package loads no backend.
_LAZY = {
    "CaptureStream": "engine.capture.stream",
    "StreamMode": "engine.capture.stream",
    "MssSource": "engine.capture.mss_source",
    "monitor_rect": "engine.capture.mss_source",
    "NativeX11Source": "engine.capture.x11",
    "NativeWinSource": "engine.capture.windows",
    "WinBackend": "engine.capture.windows",
    "win_target": "engine.capture.windows",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine.capture' has no attribute {name!r}")


def open_source(
    *,
    region: Rect | None = None,
    window: str | int | None = None,
    monitor: int | None = None,
    backend: str = "default",
    display: str | None = None,
    use_shm: bool = True,
    window_source: WindowSource = "auto",
) -> CaptureSource:
    """Open a capture source.

    region: (x, y, w, h) on the screen, or inside the window when ``window`` is given.
    window: a window title (exact, else a unique case-insensitive substring), an X window id, or on
    Windows an HWND.
    monitor: mss numbering (0 = all monitors, 1 = first); ignored when region is given.
    backend: one of BACKENDS or "default" (the fastest available, with fallback).
    display: the X display (ignored on Windows).
    use_shm: False forces the X11 grabber's XGetImage path (a recorded fallback).
    window_source: where an X11 window's pixels come from: "auto" (its own pixels: the Composite pixmap,
    else the window drawable), "composite", "window" (the drawable), or "screen" (the screen at the
    window's place, which under XWayland is black and on X11 holds whatever covers the window).
    """
    names = ("default", *BACKENDS)
    if backend not in names:
        raise EngineError(f"unknown capture backend {backend!r}; valid: {', '.join(names)}")
    if window is not None and monitor is not None:
        raise EngineError("give a window or a monitor, not both")
    chosen = BACKENDS[0] if backend == "default" else backend
    fallback = backend == "default"
    if chosen in ("dxgi", "gdi"):
        from engine.capture.windows import open_windows

        return open_windows(cast("WinBackend", chosen), fallback, region=region, window=window, monitor=monitor)
    display = display or ""
    if chosen == "x11":
        from engine.capture.x11 import open_x11

        return open_x11(display, region=region, window=window, monitor=monitor, use_shm=use_shm, fallback=fallback,
                        window_source=window_source)
    from engine.capture.mss_source import MssSource, monitor_rect

    if region is None and monitor is not None and window is None:
        region = monitor_rect(monitor, display)
    return MssSource(display=display, region=region, monitor=monitor, window=window)


__all__ = [
    "BACKENDS",
    "BackendName",
    "CaptureSource",
    "CaptureStream",
    "Color",
    "MssSource",
    "NativeWinSource",
    "NativeX11Source",
    "Rect",
    "StreamMode",
    "WinBackend",
    "backends_for",
    "monitor_rect",
    "open_source",
    "win_target",
]
