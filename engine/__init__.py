"""engine: record gameplay at a fixed rate, cut it into training windows, and let a .tflite model play.

The public API lives in this package's modules; the compiled cores (``engine._native``, pybind11, and
``engine._pacer``, Cython) are private and re-exported here where users need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine._native import __version__
from engine._pacer import Pacer, Tick, monotonic_ns, sleep_until_ns
from engine.capture import BACKENDS, CaptureSource, CaptureStream, open_source
from engine.errors import CaptureError, EngineError, WindowLost

if TYPE_CHECKING:
    from engine.session import Session, sessions

# Loaded on first use (PEP 562): the session modules are not needed by `import engine` itself.
_LAZY = {"Session": "engine.session", "sessions": "engine.session"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

__all__ = [
    "BACKENDS",
    "CaptureError",
    "CaptureSource",
    "CaptureStream",
    "EngineError",
    "Pacer",
    "Session",
    "Tick",
    "WindowLost",
    "__version__",
    "monotonic_ns",
    "open_source",
    "sessions",
    "sleep_until_ns",
]
