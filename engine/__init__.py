"""engine: record gameplay at a fixed rate, cut it into training windows, and let a .tflite model play.

The public API lives in this package's modules; the compiled cores (``engine._native``, pybind11, and
``engine._pacer``, Cython) are private and re-exported here where users need them.
"""

from __future__ import annotations

from engine._native import __version__
from engine._pacer import Pacer, Tick, monotonic_ns, sleep_until_ns
from engine.capture import BACKENDS, CaptureSource, CaptureStream, open_source
from engine.errors import CaptureError, EngineError, WindowLost

__all__ = [
    "BACKENDS",
    "CaptureError",
    "CaptureSource",
    "CaptureStream",
    "EngineError",
    "Pacer",
    "Tick",
    "WindowLost",
    "__version__",
    "monotonic_ns",
    "open_source",
    "sleep_until_ns",
]
