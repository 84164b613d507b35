"""Sessions with axes (format_version 2): axes.npy and axis_events.npy round trip, survive kill -9, and
sessions written before (format_version 1, no axes) still open."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import EngineError
from engine.session import AXIS_EVENT_DTYPE, FORMAT_VERSION, Session, SessionWriter, StorageError

SOURCE = {"backend": "x11", "region": [0, 0, 8, 6], "window": None}
AXES = ["mouse_dx", "mouse_dy", "pad_lx"]


def _writer(tmp_path: Path, name: str, axes: list[str] = AXES, chunk_frames: int = 7) -> SessionWriter:
    return SessionWriter.create(tmp_path, name=name, game="g", fps=30.0, frame_shape=(6, 8), color="gray",
                                actions=["w", "mouse_left"], resize=None, source=SOURCE, chunk_frames=chunk_frames,
                                axes=axes)


def _write(w: SessionWriter, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n frames in batches that cross chunk boundaries; returns (t, actions, axes) as committed."""
    ts, acts, axes = [], [], []
    t0 = 1_000_000
    while sum(len(t) for t in ts) < n:
        buf = w.frames_buffer(min(5, n - sum(len(t) for t in ts)))
        k = len(buf)
        buf[:] = rng.integers(0, 256, buf.shape, dtype=np.uint8)
        start = sum(len(t) for t in ts)
        t = t0 + (np.arange(start, start + k, dtype=np.int64) + 1) * 33_333_333
        a = rng.integers(0, 2, (k, 2), dtype=np.uint8)
        x = rng.normal(size=(k, len(AXES))).astype(np.float32)
        w.commit(k, t, a, x)
        ts.append(t), acts.append(a), axes.append(x)
    return np.concatenate(ts), np.concatenate(acts), np.concatenate(axes)


def test_axes_and_axis_events_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w = _writer(tmp_path, "s")
    t, a, x = _write(w, 23, rng)
    ev_t = np.arange(1, 101, dtype=np.int64) * 1_000_000
    ev_axis = rng.integers(0, len(AXES), 100).astype(np.int16)
    ev_v = rng.normal(size=100).astype(np.float32)
    w.append_axis_events(ev_t[:60], ev_axis[:60], ev_v[:60])
    w.append_axis_events(ev_t[60:], ev_axis[60:], ev_v[60:])
    meta = w.close()
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert meta["axes"] == AXES and meta["axis_events"] == 100
    s = Session.open(tmp_path / "sessions" / "s")
    assert s.axis_names == AXES
    assert s.axes.dtype == np.float32 and s.axes.shape == (23, 3)
    np.testing.assert_array_equal(s.axes, x)
    np.testing.assert_array_equal(s.actions, a)
    np.testing.assert_array_equal(s.timestamps, t)
    assert s.axis_events.dtype == AXIS_EVENT_DTYPE
    np.testing.assert_array_equal(s.axis_events["t_ns"], ev_t)
    np.testing.assert_array_equal(s.axis_events["axis"], ev_axis)
    np.testing.assert_array_equal(s.axis_events["value"], ev_v)


def test_a_session_without_axes_has_none_and_no_axis_files(tmp_path: Path) -> None:
    w = _writer(tmp_path, "keys", axes=[])
    buf = w.frames_buffer(2)
    buf[:] = 1
    w.commit(2, np.array([5, 6]), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="no axes"):
        w.frames_buffer(1)
        w.commit(1, np.array([7]), np.zeros((1, 2), np.uint8), np.zeros((1, 0), np.float32))
    w.close()
    path = tmp_path / "sessions" / "keys"
    assert not (path / "axes.npy").exists() and not (path / "axis_events.npy").exists()
    s = Session.open(path)
    assert s.axis_names == [] and s.axes.shape == (2, 0) and len(s.axis_events) == 0


def test_a_format_1_session_still_opens_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    w = _writer(tmp_path, "old", axes=[])
    buf = w.frames_buffer(3)
    buf[:] = 9
    w.commit(3, np.array([5, 6, 7]), np.ones((3, 2), np.uint8))
    w.close()
    path = tmp_path / "sessions" / "old"
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = 1
    del meta["axes"]  # as version 1 wrote it
    (path / "meta.json").write_text(json.dumps(meta))
    s = Session.open(path)
    assert len(s) == 3 and s.axis_names == [] and s.axes.shape == (3, 0)
    np.testing.assert_array_equal(s.actions, np.ones((3, 2), np.uint8))
    meta["format_version"] = 3
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StorageError, match=r"format_version 3.*upgrade"):
        Session.open(path)


def test_writer_refuses_bad_axes(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="axes must be distinct"):
        _writer(tmp_path, "a", axes=["mouse_dx", "mouse_dx"])
    with pytest.raises(EngineError, match="axes must be distinct"):
        _writer(tmp_path, "b", axes=["w"])  # already an action
    w = _writer(tmp_path, "c")
    w.frames_buffer(1)
    with pytest.raises(ValueError, match=r"axes of shape \(1, 3\)"):
        w.commit(1, np.array([5]), np.zeros((1, 2), np.uint8))
    with pytest.raises(ValueError, match=r"axes of shape \(1, 3\)"):
        w.commit(1, np.array([5]), np.zeros((1, 2), np.uint8), np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="axis in"):
        w.append_axis_events(np.array([5]), np.array([3]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        w.append_axis_events(np.array([5]), np.array([0]), np.array([np.nan]))
    for bad in (np.zeros(13, np.uint8), np.zeros(14, np.int8), np.zeros((1, 14), np.uint8)):
        with pytest.raises(ValueError, match="14-byte records"):
            w.append_axis_records(bad)
    w.close()


KILLED = """
import os, signal, sys
import numpy as np
from engine.session import SessionWriter
w = SessionWriter.create(sys.argv[1], name="k", game="g", fps=30.0, frame_shape=(6, 8), color="gray",
                         actions=["w"], resize=None, source={"backend": "x11", "region": [0, 0, 8, 6],
                         "window": None}, chunk_frames=4, axes=["mouse_dx", "wheel"])
for i in range(10):
    buf = w.frames_buffer(1)
    buf[:] = i
    w.commit(1, np.array([1000 + i]), np.array([[i % 2]], np.uint8), np.array([[i, -i]], np.float32))
    w.append_axis_events(np.array([1000 + i, 1000 + i]), np.array([0, 1]), np.array([i, -i], np.float32))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_keeps_every_committed_frames_axes_and_axis_events(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    s = Session.open(tmp_path / "sessions" / "k")
    assert s.meta["status"] == "recovered"
    assert len(s) == 10 and s.meta["axis_events"] == 20
    np.testing.assert_array_equal(s.axes, np.stack([np.arange(10), -np.arange(10)], 1).astype(np.float32))
    np.testing.assert_array_equal(s.axis_events["value"][::2], np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(s.axis_events["axis"][1::2], np.ones(10))
