"""The Windows glue, checked from Linux: what is platform-neutral runs here for real; the rest is checked
as far as Linux allows.

- backend/default selection per OS (capture, inputs, outputs) as functions of the platform string, and
  that Linux still selects exactly what it did;
- the monitor/region -> DXGI/GDI output mapping (mss numbering, 1 = first monitor = output 0);
- engine.session's Windows branches (engine/session/fileio.py: seek+write, grow-by-ftruncate, lock release
  order, tolerated truncation, replace retry) run on Linux with a flock-backed stand-in for
  msvcrt.locking: their logic, not Windows' file semantics;
- python/*.cpp compiled with mingw-w64 against CPython's headers with a Windows pyconfig.h stand-in
  (slow; skipped without mingw): the Windows bindings type-check, which is not a Windows build.
"""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import _native
from engine.actions.inputs import INPUTS, default_input, hotkey_listener, hotkeys_available, inputs_for, open_input
from engine.actions.outputs import OUTPUTS, default_output, open_output, outputs_for
from engine.capture import BACKENDS, backends_for, win_target
from engine.cli.play import build_parser as play_parser
from engine.cli.record import build_parser as record_parser
from engine.errors import EngineError
from engine.record import RecordConfig

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------
# Selection per OS


def test_backends_per_os() -> None:
    assert backends_for("linux") == ("x11", "mss")
    assert backends_for("freebsd14") == ("x11", "mss")
    assert backends_for("win32") == ("dxgi", "gdi", "mss")
    assert backends_for("darwin") == ("mss",)
    assert backends_for(sys.platform) == BACKENDS


def test_inputs_per_os() -> None:
    assert inputs_for("linux") == ("x11", "evdev")
    assert inputs_for("win32") == ("rawinput",)
    assert inputs_for("darwin") == ()
    assert (default_input("linux"), default_input("win32"), default_input("darwin")) == ("x11", "rawinput", "")
    assert inputs_for(sys.platform) == INPUTS


def test_outputs_per_os() -> None:
    assert outputs_for("linux") == ("xtest", "uinput", "dry-run")
    assert outputs_for("win32") == ("sendinput", "dry-run")
    assert outputs_for("darwin") == ("dry-run",)
    assert (default_output("linux"), default_output("win32"), default_output("darwin")) == (
        "xtest", "sendinput", "dry-run")
    assert outputs_for(sys.platform) == OUTPUTS


def test_kill_switch_needs_a_display_only_on_x11() -> None:
    assert hotkeys_available(":0", "linux") and not hotkeys_available("", "linux")
    assert hotkeys_available("", "win32")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="what Linux selects")
def test_linux_selection_is_unchanged() -> None:
    assert (BACKENDS, INPUTS, OUTPUTS) == (("x11", "mss"), ("x11", "evdev"), ("xtest", "uinput", "dry-run"))
    assert RecordConfig().input == "x11"
    assert play_parser().parse_args(["--model", "m.tflite"]).output == "xtest"
    (inp,) = [a for a in record_parser()._actions if a.dest == "input"]
    assert tuple(inp.choices or ()) == ("x11", "evdev") and "default x11" in str(inp.help)
    # The Windows names are refused with the list of what this OS has, as any unknown name.
    with pytest.raises(EngineError, match="unknown input backend 'rawinput'; valid: x11, evdev"):
        open_input("rawinput", ["left"], [])
    with pytest.raises(EngineError, match="unknown output 'sendinput'; valid: xtest, uinput, dry-run"):
        open_output("sendinput", ["left"])
    # The compiled module has the X11 classes and none of the Windows ones (python/*.cpp #if sections).
    assert all(hasattr(_native, n) for n in ("X11Grabber", "XTestActuator", "X11InputListener"))
    assert not any(hasattr(_native, n) for n in ("DxgiGrabber", "GdiGrabber", "SendInputActuator",
                                                  "RawInputListener", "win_list_monitors"))


@pytest.mark.x11
def test_kill_switch_listener_is_the_platform_one(xvfb: Any) -> None:
    listener = hotkey_listener(["f12"], xvfb.display)
    assert isinstance(listener, _native.X11InputListener)
    listener.start()
    try:
        assert listener.running and len(listener.pop(16)[0]) == 0
    finally:
        listener.stop()


def test_sendinput_watchdog_program_runs_and_honours_clean() -> None:
    # The program SendInputOutput starts: it imports, reads the pipe, and exits 0 on "clean" without
    # touching the (Windows-only) actuator.
    watchdog = [sys.executable, "-m", "engine.actions.watchdog", "sendinput", ""]
    run = subprocess.run([*watchdog, "left,right"], input="clean\n", capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stderr) == (0, "")
    # Without "clean" it would release keys; here there is no SendInputActuator, so it says so in one line.
    run = subprocess.run([*watchdog, "left"], input="", capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "releasing the sendinput keys of a dead process failed" in run.stderr


# ---------------------------------------------------------------------------------------------------
# Monitor / region -> output

PRIMARY = (0, 0, 1920, 1080)
RIGHT = (1920, 0, 1280, 1024)
LEFT = (-1600, -200, 1600, 900)


def test_monitor_numbers_map_to_outputs() -> None:
    mons = [PRIMARY, RIGHT, LEFT]
    assert win_target(None, None, mons) == (0, None)  # the default: the primary monitor
    assert win_target(None, 1, mons) == (0, None)  # mss numbering: 1 = first = output 0
    assert win_target(None, 2, mons) == (1, None)
    assert win_target(None, 3, mons) == (2, None)
    assert win_target(None, 0, mons) is None  # all monitors: no single output, mss only
    assert win_target(None, 0, [PRIMARY]) == (0, None)  # ... unless there is only one
    for bad in (4, -1):
        with pytest.raises(EngineError, match=r"monitor .* does not exist; this display has monitors 0\.\.3"):
            win_target(None, bad, mons)


def test_regions_become_relative_to_their_monitor() -> None:
    mons = [PRIMARY, RIGHT, LEFT]
    assert win_target((100, 50, 640, 480), None, mons) == (0, (100, 50, 640, 480))
    assert win_target((1920, 0, 1280, 1024), None, mons) == (1, (0, 0, 1280, 1024))  # a whole monitor
    assert win_target((2000, 100, 320, 240), None, mons) == (1, (80, 100, 320, 240))
    assert win_target((-1500, -100, 100, 100), None, mons) == (2, (100, 100, 100, 100))  # negative coordinates
    assert win_target((2000, 100, 320, 240), 1, mons) == (1, (80, 100, 320, 240))  # the region wins
    assert win_target((1800, 0, 320, 240), None, mons) is None  # across two monitors
    assert win_target((5000, 0, 10, 10), None, mons) is None  # on none


# ---------------------------------------------------------------------------------------------------
# session.py's Windows branches, on Linux


def _fake_msvcrt() -> Any:
    """msvcrt.locking's contract (LK_NBLCK raises OSError when another handle holds the lock, LK_UNLCK)
    on flock(2), which is per open file like a Windows handle's lock."""
    lk_unlck, lk_nblck = 0, 2

    def locking(fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        if mode == lk_nblck:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PermissionError(errno.EACCES, "Permission denied") from None
        elif mode == lk_unlck:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            raise AssertionError(f"unexpected locking mode {mode}")

    return types.SimpleNamespace(LK_UNLCK=lk_unlck, LK_LOCK=1, LK_NBLCK=lk_nblck, LK_RLCK=3, LK_NBRLCK=4,
                                 locking=locking)


@pytest.fixture
def win_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """engine.session with its file operations as on Windows: engine.session.fileio (which the writer and
    reader reach as ``fileio.name``) reloaded under sys.platform "win32" with the msvcrt stand-in, and
    reloaded back afterwards."""
    import engine.session
    from engine.session import fileio

    monkeypatch.setitem(sys.modules, "msvcrt", _fake_msvcrt())
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", "win32")
        importlib.reload(fileio)
    try:
        # reload() re-runs the module in its old namespace: check for the Windows branches, not fcntl's absence
        assert hasattr(fileio, "msvcrt") and fileio._pwrite is not os.pwrite
        yield engine.session
    finally:
        monkeypatch.delitem(sys.modules, "msvcrt")
        importlib.reload(fileio)
        assert fileio._pwrite is os.pwrite


def _create(mod: Any, root: Path, chunk_frames: int = 4) -> Any:
    return mod.SessionWriter.create(root, name="s", game="g", fps=30.0, frame_shape=(6, 8), color="gray",
                                    actions=["a", "b"], resize=None, source={"backend": "dxgi"},
                                    chunk_frames=chunk_frames)


def _write(w: Any, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        buf = w.frames_buffer(1)
        buf[0] = i + 1
        w.commit(1, np.array([1000 * (i + 1)], np.int64), np.array([[i % 2, 1]], np.uint8))
    w.append_events(np.array([5, 6], np.int64), np.array([0, 1], np.int16), np.array([1, 0], np.int8))


def test_win32_branches_round_trip(win_session: Any, tmp_path: Path) -> None:
    w = _create(win_session, tmp_path)
    _write(w, 10)  # three chunks: grown by ftruncate, headers and rows written by seek + write
    path = w.path
    assert (path / "writer.lock").read_text() == f"{os.getpid()}\n"  # the pid stays readable
    live = win_session.Session.open(path)
    assert live.meta["status"] == "recording" and (path / "writer.lock").exists()  # locked: left alone
    size_before = (path / "frames.npy").stat().st_size
    assert size_before == 256 + 12 * 48  # preallocated to the end of the third chunk
    del live
    meta = w.close()
    assert meta["status"] == "complete" and meta["frames"] == 10 and meta["events"] == 2
    assert not (path / "writer.lock").exists()  # unlocked, closed, then deleted
    assert (path / "frames.npy").stat().st_size == 256 + 10 * 48
    s = win_session.Session.open(path)
    assert s.frames[:, 0, 0].tolist() == list(range(1, 11))
    assert s.timestamps.tolist() == [1000 * (i + 1) for i in range(10)]
    assert s.actions[:, 0].tolist() == [i % 2 for i in range(10)] and s.events["value"].tolist() == [1, 0]
    assert np.load(path / "frames.npy").shape == (10, 6, 8)  # plain NumPy reads it


def test_win32_branches_recover_a_dead_writer(win_session: Any, tmp_path: Path) -> None:
    w = _create(win_session, tmp_path)
    _write(w, 6)
    w.flush(force=True)
    _write(w, 3, start=6)  # committed after the last flush: only the timestamps say so
    # The process dies: Windows closes its handles, which drops their locks.
    w._chunk = None
    for fd in w._fds.values():
        os.close(fd)
    os.close(w._lock_fd)
    s = win_session.Session.open(w.path)
    assert s.meta["status"] == "recovered" and len(s) == 9 and s.meta["events"] == 4
    assert s.frames[:, 0, 0].tolist() == list(range(1, 10))
    assert not (w.path / "writer.lock").exists()


def test_win32_truncation_refused_keeps_the_tail(win_session: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows cannot shorten a file that some process has mapped; the session must still close whole.
    real = os.ftruncate

    def ftruncate(fd: int, size: int) -> None:
        if size < os.fstat(fd).st_size:
            raise OSError(errno.EINVAL, "The requested operation cannot be performed on a file with a "
                                        "user-mapped section open")
        real(fd, size)

    w = _create(win_session, tmp_path)
    _write(w, 5)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    meta = w.close()
    monkeypatch.setattr(os, "ftruncate", real)
    assert meta["status"] == "complete" and meta["frames"] == 5
    assert (w.path / "frames.npy").stat().st_size == 256 + 8 * 48  # the preallocated tail is kept
    s = win_session.Session.open(w.path)
    assert len(s) == 5 and s.frames[:, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert np.load(w.path / "timestamps.npy").tolist() == [1000, 2000, 3000, 4000, 5000]
    # A growth that fails is a disk error, never tolerated.
    def full(fd: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "ftruncate", full)
    w2 = win_session.SessionWriter.create(tmp_path, name="t", game="g", fps=30.0, frame_shape=(6, 8),
                                          color="gray", actions=["a"], resize=None, source={}, chunk_frames=4)
    with pytest.raises(win_session.StorageError, match="disk full"):
        w2.frames_buffer(1)


def test_win32_replace_retries_while_meta_is_open(win_session: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = os.replace, []

    def replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) <= 3:
            raise PermissionError(errno.EACCES, "Access is denied")  # a reader has meta.json open
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    w = _create(win_session, tmp_path)
    assert len(calls) == 4 and (w.path / "meta.json").exists()
    w.close()


# ---------------------------------------------------------------------------------------------------
# The bindings, cross-compiled

# What a 64-bit Windows CPython build's pyconfig.h tells an extension built by GCC: LLP64 sizes, the
# Windows platform macros, the core in a DLL. A stand-in for the check below, not CPython's file.
WIN_PYCONFIG = """\
#ifndef Py_CONFIG_H
#define Py_CONFIG_H
#include <io.h>
#include <basetsd.h>
#include <stdio.h>
#define MS_WIN32
#define MS_WIN64
#define MS_WINDOWS
#define NT_THREADS
#define WITH_THREAD
#define PLATFORM "win32"
#define COMPILER "[gcc]"
#define Py_ENABLE_SHARED 1
#define MS_COREDLL
#define HAVE_DECLSPEC_DLL
#define PY_LONG_LONG long long
#define PY_LLONG_MIN LLONG_MIN
#define PY_LLONG_MAX LLONG_MAX
#define PY_ULLONG_MAX ULLONG_MAX
#define SIZEOF_VOID_P 8
#define SIZEOF_SIZE_T 8
#define SIZEOF_TIME_T 8
#define SIZEOF_OFF_T 4
#define SIZEOF_FPOS_T 8
#define SIZEOF_HKEY 8
#define SIZEOF_SHORT 2
#define SIZEOF_INT 4
#define SIZEOF_LONG 4
#define SIZEOF_LONG_LONG 8
#define SIZEOF_DOUBLE 8
#define SIZEOF_FLOAT 4
#define SIZEOF_WCHAR_T 2
#define SIZEOF_PID_T 4
#define SIZEOF__BOOL 1
#define ALIGNOF_SIZE_T 8
#define ALIGNOF_LONG 4
#define HAVE_SSIZE_T 1
#define HAVE_WCHAR_H 1
#define HAVE_STDDEF_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_ERRNO_H 1
#define HAVE_FCNTL_H 1
#define HAVE_SIGNAL_H 1
#define HAVE_PROCESS_H 1
#define HAVE_DIRECT_H 1
#define HAVE_IO_H
#define HAVE_COPYSIGN 1
#define HAVE_ROUND 1
#define HAVE_DECL_ISINF 1
#define HAVE_DECL_ISNAN 1
#define HAVE_DECL_ISFINITE 1
#define HAVE_DYNAMIC_LOADING
#define WITH_DOC_STRINGS 1
#define WITH_PYMALLOC 1
#define DOUBLE_IS_LITTLE_ENDIAN_IEEE754 1
#define LONG_BIT 32
#define WORD_BIT 32
#endif
"""


@pytest.mark.slow
def test_bindings_compile_for_windows(tmp_path: Path) -> None:
    cxx = shutil.which("x86_64-w64-mingw32-g++-posix")
    if cxx is None:
        pytest.skip("not installed: g++-mingw-w64-x86-64-posix")
    pybind11 = pytest.importorskip("pybind11")

    # CPython's headers are the same on every OS but for pyconfig.h: this Python's, with the stand-in.
    include = tmp_path / "python-include"
    shutil.copytree(sysconfig.get_paths()["include"], include)
    (include / "pyconfig.h").write_text(WIN_PYCONFIG)
    flags = ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{include}",
             f"-I{pybind11.get_include()}", f"-I{ROOT / 'native'}", f"-I{ROOT / 'python'}"]
    sources = sorted((ROOT / "python").glob("*.cpp"))
    procs = [(src, subprocess.Popen([cxx, *flags, str(src)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)) for src in sources]
    failed = []
    for src, p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            failed.append(f"{src.name}:\n{out}")
    assert not failed, "\n".join(failed)
    assert {s.name for s in sources} >= {"bind_capture.cpp", "bind_input.cpp", "module.cpp"}
