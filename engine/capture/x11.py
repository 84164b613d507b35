"""The native X11 backend (MIT-SHM, XGetImage when SHM is refused) and its fallback to mss.

The grabber itself lives in native/capture/x11_shm.cpp; it records its own downgrade (no MIT-SHM
extension, SHM refused over TCP, SHM disabled by the caller) as ``fallback_reason``. Only a pixel format
the native grabber cannot read is worth falling back to mss for: a missing display or window would fail
in mss too, so those errors are reported as they are.
"""

from __future__ import annotations

from typing import Literal

from engine.capture.base import CaptureSource, NativeSource, Rect, note_fallback
from engine.errors import CaptureError

# Where a window's pixels are read from (native/capture/x11_shm.hpp): "auto" is its Composite pixmap,
# else the window drawable; "screen" is the screen at the window's place (before: the bench compares).
WindowSource = Literal["auto", "composite", "window", "screen"]


class NativeX11Source(NativeSource):
    backend = "x11"

    def __init__(
        self,
        *,
        display: str = "",
        window: str | int | None = None,
        region: Rect | None = None,
        use_shm: bool = True,
        window_source: WindowSource = "auto",
    ) -> None:
        import engine._native as _native

        window_id = window if isinstance(window, int) else 0
        title = window if isinstance(window, str) else ""
        self.native = _native.X11Grabber(
            display=display, window_id=window_id, window_title=title, region=region, use_shm=use_shm,
            window_source=window_source,
        )
        self._adopt()

    @property
    def window_id(self) -> int:
        return int(self.native.window_id)

    @property
    def read_from(self) -> str:
        """What the pixels are read from: "composite" (a window's own pixmap), "window" or "screen"."""
        return str(self.native.read_from)


def open_x11(
    display: str,
    *,
    region: Rect | None,
    window: str | int | None,
    monitor: int | None,
    use_shm: bool,
    fallback: bool,
    window_source: WindowSource = "auto",
) -> CaptureSource:
    """open_source() for the native X11 grabber (``fallback``: mss may stand in, "default" only)."""
    from engine.capture.mss_source import MssSource, display_name, monitor_rect

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
        src: CaptureSource = NativeX11Source(display=display, window=window, region=region, use_shm=use_shm,
                                             window_source=window_source)
    except CaptureError as e:
        # Only a format the native grabber cannot read is worth a fallback; a missing display or
        # window would fail in mss too, so it is reported as is.
        if not fallback or "unsupported X pixel format" not in str(e):
            raise
        reason = f"native x11 grabber: {e}"
        if monitor_error is not None:
            raise _unreadable_format(display_name(display), e, monitor_error, reason) from monitor_error
        try:
            src = MssSource(display=display, region=region, window=window)
        except CaptureError as mss_error:
            raise _unreadable_format(display_name(display), e, mss_error, reason) from mss_error
        src.fallback_reason = reason
        note_fallback(reason)
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
        f"cannot capture X display {display!r}: {what}, which neither the native x11 grabber "
        f"nor its mss fallback can read (mss: {mss_says}). Run the X server at depth 24 "
        "(for Xvfb: -screen 0 WIDTHxHEIGHTx24)"
    )
    err.fallback_reason = reason
    return err


__all__ = ["NativeX11Source", "open_x11"]
