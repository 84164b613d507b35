"""The interface every capture backend implements, and what the backends share.

A ``CaptureSource`` is a screen area (a region, a window or a monitor) that one backend grabs BGRA
pixels from. ``grab()`` returns a read-only view of the backend's own buffer (for the native X11 grabber,
the MIT-SHM segment the X server writes into): it stays valid until the next grab on the same source, so
copy what you keep.

Every source can feed the one native capture loop (``engine.capture.stream``): a native backend hands
over its own grabber, a Python backend (mss) an adapter whose grab calls back into Python with the GIL
held (``loop_source``). Nothing here loads the compiled module until a source is used.

Fallbacks are observable: a source that is not the fastest path records why in ``fallback_reason`` and
the reason is logged once per process (``note_fallback``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from engine.sidecar import Color

BackendName = Literal["default", "x11", "dxgi", "gdi", "mss"]
Rect = tuple[int, int, int, int]

_log = logging.getLogger("engine.capture")
_logged_reasons: set[str] = set()


def note_fallback(reason: str) -> None:
    """Log a downgrade to a slower path, once per distinct reason."""
    if reason and reason not in _logged_reasons:
        _logged_reasons.add(reason)
        _log.warning("capture fell back to a slower path: %s", reason)


class CaptureSource:
    """A screen area to grab from. Use :func:`engine.capture.open_source` to make one."""

    backend: str = ""  # the backend name chosen from BACKENDS
    path: str = ""  # what that backend actually does, e.g. "xshm" or "xgetimage"
    fallback_reason: str = ""  # why a faster backend or path was not used ("" if it was)
    native: Any = None  # the backend's own engine._native.Source, for native backends

    @property
    def rect(self) -> Rect:
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
        import engine._native as _native

        w, h = size or (self.width, self.height)
        return _native.convert_resize(self.grab(), w, h, color)

    def loop_source(self) -> Any:
        """The ``engine._native.Source`` the native capture loop grabs through: the backend's own grabber,
        or for a Python backend a ``CallableSource`` that calls :meth:`grab` with the GIL held (so pacing,
        drop counting and stats are the native loop's for every backend)."""
        if self.native is not None:
            return self.native
        import engine._native as _native

        return _native.CallableSource(self.grab, self.rect, backend=self.path or self.backend,
                                      fallback_reason=self.fallback_reason)

    def close(self) -> None:
        pass

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend}/{self.path} rect={self.rect}>"


class NativeSource(CaptureSource):
    """A source backed by an engine._native grabber (``self.native``), which the native loop runs as is."""

    def _adopt(self) -> None:
        """Take the path and fallback reason from the native grabber just made; log a downgrade once."""
        self.path = self.native.backend
        self.fallback_reason = self.native.fallback_reason
        note_fallback(self.fallback_reason)

    @property
    def rect(self) -> Rect:
        return tuple(self.native.rect)

    def grab(self) -> np.ndarray:
        return self.native.grab()

    def close(self) -> None:
        self.native = None


__all__ = ["BackendName", "CaptureSource", "Color", "NativeSource", "Rect", "note_fallback"]
