"""The native Windows backends: DXGI Desktop Duplication (``dxgi``, which falls back to GDI by itself when
DXGI refuses: remote sessions, some hybrid-GPU laptops) and GDI BitBlt (``gdi``), both in native/capture/.

Both grab one monitor (or a window), so a screen area is first mapped to a monitor and a region relative
to it (:func:`win_target`, pure and tested on every OS); an area no single monitor holds goes to mss
under ``"default"`` (a recorded, logged fallback) and is refused when a native backend was asked for.
"""

from __future__ import annotations

from typing import Literal

from engine.capture.base import CaptureSource, NativeSource, Rect, note_fallback
from engine.errors import EngineError

WinBackend = Literal["dxgi", "gdi"]


class NativeWinSource(NativeSource):
    """DXGI Desktop Duplication (``backend="dxgi"``, GDI when DXGI refuses) or GDI BitBlt, both native.

    output: monitor index in win_list_monitors() order (the primary first); unused with a window.
    region: relative to the window's client area, or to the monitor (see :func:`win_target`).
    """

    def __init__(
        self,
        *,
        backend: WinBackend = "dxgi",
        window: str | int | None = None,
        region: Rect | None = None,
        output: int = 0,
    ) -> None:
        import engine._native as _native

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


def open_windows(
    chosen: WinBackend,
    fallback: bool,
    *,
    region: Rect | None,
    window: str | int | None,
    monitor: int | None,
) -> CaptureSource:
    """open_source() for the native Windows backends (``fallback``: mss may stand in, "default" only)."""
    import engine._native as _native

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
        from engine.capture.mss_source import MssSource

        src = MssSource(region=region, monitor=monitor)
        src.fallback_reason = reason
        note_fallback(reason)
        return src
    output, rel = target
    return NativeWinSource(backend=chosen, output=output, region=rel)


__all__ = ["NativeWinSource", "WinBackend", "open_windows", "win_target"]
