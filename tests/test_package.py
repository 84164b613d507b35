"""The package's bottom layer: ``import engine`` loads no compiled module, its re-exports resolve lazily to
the real objects, and the native core's exceptions arrive as the pure-Python classes of engine.errors."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

import engine
from engine import _native, _pacer, errors


def test_import_engine_loads_no_compiled_module() -> None:
    code = (
        "import sys, engine, engine.errors\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('engine._', '_pacer', '_native')))\n"
        "assert not loaded, loaded\n"
        "print(engine.__version__)\n"
        "assert not [m for m in sys.modules if m.startswith('engine._')], 'the version loaded a compiled module'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == importlib.metadata.version("engine")


def test_version_is_the_one_the_native_module_was_built_with() -> None:
    assert engine.__version__ == _native.__version__


def test_lazy_reexports_are_the_real_objects() -> None:
    assert engine.Pacer is _pacer.Pacer and engine.monotonic_ns is _pacer.monotonic_ns
    assert engine.CaptureError is errors.CaptureError and set(engine.__all__) <= set(dir(engine))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = engine.nope


def test_native_exceptions_are_the_engine_errors_classes() -> None:
    assert issubclass(errors.WindowLost, errors.CaptureError) and issubclass(errors.CaptureError, RuntimeError)
    # A display nobody serves: the native actuator throws engine::CaptureError.
    with pytest.raises(errors.CaptureError, match="cannot open X display ':4093'") as info:
        _native.XTestActuator(":4093", ["left"])
    assert type(info.value) is errors.CaptureError
