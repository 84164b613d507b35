"""Exceptions users catch. Messages are one line: what is wrong and what to do.

Pure Python, so any layer may import it without loading a compiled module. The native core raises
``CaptureError`` and ``WindowLost`` as C++ exceptions; ``engine._native`` translates them into these very
classes when it is loaded, so ``except engine.errors.CaptureError`` catches what native code throws.
"""

from __future__ import annotations


class EngineError(Exception):
    """Bad input or an unusable environment, reported to the user as one line (CLI exit code 2)."""


class CaptureError(RuntimeError):
    """A capture or input source failed while running (display lost, grab refused, OS error)."""

    # Set when the error ends a fallback chain (native grabber -> mss): why the fallback was tried.
    fallback_reason: str = ""


class WindowLost(CaptureError):
    """The captured window was closed or can no longer be found."""


__all__ = ["CaptureError", "EngineError", "WindowLost"]
