"""Exceptions users catch. Messages are one line: what is wrong and what to do."""

from __future__ import annotations

from engine._native import CaptureError as _NativeCaptureError
from engine._native import WindowLost as _NativeWindowLost


class EngineError(Exception):
    """Bad input or an unusable environment, reported to the user as one line (CLI exit code 2)."""


# The native core raises these; they are RuntimeError subclasses defined by engine._native.
CaptureError = _NativeCaptureError
WindowLost = _NativeWindowLost

__all__ = ["CaptureError", "EngineError", "WindowLost"]
