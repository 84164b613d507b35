"""engine: record gameplay at a fixed rate, cut it into training windows, and let a .tflite model play.

The public API lives in this package's modules; the compiled cores (``engine._native``, pybind11, and
``engine._pacer``, Cython) are private and re-exported here where users need them. ``import engine``
loads no compiled module: every re-export below but the pure-Python errors is resolved on first use
(PEP 562), so a training server without X libraries can import the package and its data modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.errors import CaptureError, EngineError, WindowLost

if TYPE_CHECKING:
    from engine._pacer import Pacer, Tick, monotonic_ns, sleep_until_ns
    from engine.capture import BACKENDS, CaptureSource, CaptureStream, open_source
    from engine.session import Session, sessions

    __version__: str

# Public name -> the module that defines it, imported on first use.
_LAZY = {
    "Pacer": "engine._pacer",
    "Tick": "engine._pacer",
    "monotonic_ns": "engine._pacer",
    "sleep_until_ns": "engine._pacer",
    "BACKENDS": "engine.capture",
    "CaptureSource": "engine.capture",
    "CaptureStream": "engine.capture",
    "open_source": "engine.capture",
    "Session": "engine.session",
    "sessions": "engine.session",
}


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, the same the native module is built with)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engine")
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
