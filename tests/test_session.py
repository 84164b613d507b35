"""Session storage on real files: round trip, live reading, flat memory, crash recovery, disk errors, listing.

Writers that must die, run out of space or be measured run in their own process
(helpers/session_writer.py); nothing is mocked and nothing is timed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pytest
from helpers.session_writer import event_pattern, pattern

from engine import _native
from engine.cli.sessions import main as sessions_main
from engine.errors import EngineError
from engine.session import (
    EVENT_DTYPE,
    HEADER_BYTES,
    Session,
    SessionWriter,
    StorageError,
    data_dir,
    sessions,
)

HELPER = Path(__file__).parent / "helpers" / "session_writer.py"
SOURCE = {"backend": "x11", "region": [10, 20, 320, 240], "window": None}
MiB = 1 << 20


Color = Literal["gray", "rgb"]


def create(root: Path, name: str | None = "s", game: str = "kart", shape: tuple[int, ...] = (24, 32),
           color: Color = "gray", actions: Sequence[str] = ("w", "a", "s", "d"), **kw: Any) -> SessionWriter:
    return SessionWriter.create(root, name=name, game=game, fps=30.0, frame_shape=shape, color=color,
                                actions=actions, resize=None, source=SOURCE, **kw)


def write(w: SessionWriter, frames: np.ndarray, t_ns: np.ndarray, actions: np.ndarray) -> None:
    """Write all of frames in batches of 1..5, as a recorder draining its ring would."""
    sizes = iter(np.tile([3, 1, 5, 2, 4], len(frames)))
    while w.frames_written < len(frames):
        at = w.frames_written
        buf = w.frames_buffer(int(next(sizes)))
        k = min(len(buf), len(frames) - at)
        buf[:k] = frames[at : at + k]
        w.commit(k, t_ns[at : at + k], actions[at : at + k])


def npy_rows(path: Path) -> int:
    """The row count a plain np.load reads from the header."""
    return int(np.load(path, mmap_mode="r").shape[0])


def assert_exact_files(path: Path, t: int, e: int) -> None:
    """Every .npy loads with plain NumPy, says its count, and the file ends right after the data."""
    meta = json.loads((path / "meta.json").read_text())
    row = {"frames.npy": int(np.prod(meta["frame_shape"])), "timestamps.npy": 8,
           "actions.npy": len(meta["actions"]), "events.npy": EVENT_DTYPE.itemsize}
    for name, n in (("frames.npy", t), ("timestamps.npy", t), ("actions.npy", t), ("events.npy", e)):
        assert npy_rows(path / name) == n, name
        assert (path / name).stat().st_size == HEADER_BYTES + n * row[name], name


# -- round trip ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("color", "shape"), [("gray", (37, 53)), ("rgb", (21, 30, 3))])
def test_round_trip_is_bit_exact(tmp_path: Path, color: Color, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    n, chunk = 500, 13
    frames = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    t_ns = 10**9 + np.cumsum(rng.integers(1, 40_000_000, n)).astype(np.int64)
    actions = rng.integers(0, 2, (n, 4), dtype=np.uint8)
    ev_t = 10**9 + np.sort(rng.choice(10**9, 50, replace=False)).astype(np.int64)
    ev_a, ev_v = rng.integers(0, 4, 50), rng.integers(0, 2, 50)

    with create(tmp_path, shape=shape, color=color, chunk_frames=chunk) as w:
        while w.frames_written < n:
            at = w.frames_written
            buf = w.frames_buffer(int(rng.integers(1, 20)))
            assert buf.flags.writeable and buf.flags.c_contiguous
            assert buf.shape[1:] == shape and 1 <= len(buf) <= chunk - at % chunk  # never crosses a chunk
            k = min(int(rng.integers(0, len(buf) + 1)), n - at)  # k = 0 and k < len(buf) happen too
            buf[:k] = frames[at : at + k]
            w.commit(k, t_ns[at : at + k], actions[at : at + k])
            if at < 200 <= w.frames_written:
                w.flush(force=True)
                assert npy_rows(w.path / "frames.npy") == w.frames_written  # a valid .npy mid-recording
        w.append_events(ev_t[:20], ev_a[:20], ev_v[:20])
        w.append_events(np.empty(0, np.int64), np.empty(0, np.int16), np.empty(0, np.int8))
        w.append_events(ev_t[20:], ev_a[20:], ev_v[20:])
        w.note_dropped(3)
    closed = w.close()  # idempotent after the with block
    assert closed["status"] == "complete"

    s = Session.open(w.path)
    assert np.array_equal(s.frames, frames)
    assert np.array_equal(s.timestamps, t_ns)
    assert np.array_equal(s.actions, actions)
    assert np.array_equal(s.events["t_ns"], ev_t)
    assert np.array_equal(s.events["action"], ev_a)
    assert np.array_equal(s.events["value"], ev_v)
    assert not s.frames.flags.writeable
    assert_exact_files(w.path, n, 50)
    assert s.name == "s" and s.fps == 30.0 and s.actions_names == ["w", "a", "s", "d"]

    meta = json.loads((w.path / "meta.json").read_text())
    assert meta == closed == s.meta
    assert meta["format_version"] == 2 and meta["axes"] == [] and meta["engine_version"]
    assert meta["game"] == "kart" and meta["color"] == color and meta["frame_shape"] == list(shape)
    assert meta["resize"] is None and meta["source"] == SOURCE and meta["actions"] == ["w", "a", "s", "d"]
    assert meta["frames"] == n and meta["events"] == 50 and meta["dropped"] == 3
    assert meta["duration_s"] == pytest.approx((t_ns[-1] - t_ns[0]) / 1e9 + 1 / 30)
    assert datetime.fromisoformat(meta["created"]).utcoffset() == timedelta(0)
    assert meta["clock"] == "monotonic_ns" and meta["start_unix_ns"] > 0 and meta["start_monotonic_ns"] > 0
    assert not (w.path / "writer.lock").exists()


def test_session_without_actions_or_frames(tmp_path: Path) -> None:
    with create(tmp_path, name="empty", actions=()) as w:
        pass
    s = Session.open(w.path)
    assert s.frames.shape == (0, 24, 32) and s.actions.shape == (0, 0) and len(s.events) == 0
    assert s.meta["duration_s"] == 0.0
    assert_exact_files(w.path, 0, 0)

    with create(tmp_path, name="noactions", actions=()) as w:
        write(w, np.ones((10, 24, 32), np.uint8), np.arange(1, 11), np.empty((10, 0), np.uint8))
    assert Session.open(w.path).frames.shape == (10, 24, 32)


def test_native_queue_pops_straight_into_the_frames_file(tmp_path: Path, native_testing: ModuleType) -> None:
    """The recorder's path: FrameQueue.pop_into copies ring slots into frames_buffer views (the only copy)."""
    shape, n = (48, 64), 2000
    queue = _native.FrameQueue(64, shape)
    producer = native_testing.StressProducer(queue, n, 50_000)  # bytes derive from seq (see test_ring.py)
    t_ns, ticks = np.empty(64, np.int64), np.empty(64, np.uint64)
    seqs: list[int] = []
    with create(tmp_path, shape=shape, actions=("a",), chunk_frames=100) as w:
        producer.start()
        while not producer.done or queue.available():
            if queue.wait(0.01):
                buf = w.frames_buffer(queue.available())
                k = queue.pop_into(buf, t_ns[: len(buf)], ticks[: len(buf)])
                w.commit(k, t_ns[:k], np.zeros((k, 1), np.uint8))
                seqs.extend(int(s) for s in ticks[:k])
        producer.join()
    s = Session.open(w.path)
    assert len(s) + queue.dropped == n and len(s) == len(seqs)
    k = np.arange(np.prod(shape), dtype=np.uint64)
    for i, seq in enumerate(seqs):
        want = ((np.uint64(seq) * np.uint64(131) + k) & np.uint64(0xFF)).astype(np.uint8)
        want[:8] = np.frombuffer(np.uint64(seq).tobytes(), np.uint8)
        assert np.array_equal(s.frames[i].reshape(-1), want), f"frame {i} (seq {seq})"


def test_writer_refuses_bad_input(tmp_path: Path) -> None:
    w = create(tmp_path)
    with pytest.raises(StorageError, match="already exists"):
        create(tmp_path)
    with pytest.raises(ValueError, match="holds 0 frames"):
        w.commit(1, np.array([1]), np.zeros((1, 4), np.uint8))
    buf = w.frames_buffer(4)
    with pytest.raises(ValueError, match="shape"):
        w.commit(len(buf), np.arange(1, len(buf) + 1), np.zeros((len(buf), 3), np.uint8))
    with pytest.raises(ValueError, match="strictly increasing"):
        w.commit(2, np.array([5, 5]), np.zeros((2, 4), np.uint8))
    w.commit(1, np.array([5]), np.zeros((1, 4), np.uint8))
    w.frames_buffer(1)
    with pytest.raises(ValueError, match="strictly increasing"):
        w.commit(1, np.array([5]), np.zeros((1, 4), np.uint8))  # not after the last committed frame
    with pytest.raises(ValueError, match="action in"):
        w.append_events(np.array([1]), np.array([4]), np.array([1]))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.frames_buffer(1)
    assert Session.open(w.path).frames.shape[0] == 1

    with pytest.raises(EngineError, match="does not fit"):
        create(tmp_path, name="x", shape=(24, 32), color="rgb")
    with pytest.raises(EngineError, match="directory name"):
        create(tmp_path, name="../escape")
    with pytest.raises(EngineError, match="distinct"):
        create(tmp_path, name="y", actions=("w", "w"))
    assert sorted(p.name for p in (tmp_path / "sessions").iterdir()) == ["s"]  # nothing left behind


def test_default_name_is_game_and_utc_time(tmp_path: Path) -> None:
    with create(tmp_path, name=None, game="kart") as a, create(tmp_path, name=None, game="kart") as b:
        assert a.path.name.startswith("kart_") and a.path.name.endswith(("Z", "Z_2"))
        assert a.path != b.path


# -- reading while recording, crashes ----------------------------------------------------------------


def test_reader_sees_flushed_frames_while_writer_keeps_writing(tmp_path: Path) -> None:
    """Writer in another process; the reader must neither recover nor block it."""
    shape = (48, 64)
    path = tmp_path / "sessions" / "s"
    with subprocess.Popen([sys.executable, str(HELPER), "live", str(tmp_path)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().split() == ["FLUSHED", "500"]
        first = Session.open(path)
        assert first.meta["status"] == "recording" and len(first) == 500
        assert json.loads((path / "meta.json").read_text())["status"] == "recording"  # not "recovered"
        frames, t_ns, _ = pattern(0, 500, shape)
        assert np.array_equal(first.frames, frames) and np.array_equal(first.timestamps, t_ns)

        proc.stdin.write("more\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ["FLUSHED", "1000"]
        second = Session.open(path)
        assert len(second) == 1000 and second.meta["status"] == "recording"
        assert np.array_equal(second.frames, pattern(0, 1000, shape)[0])
        assert np.array_equal(first.frames, frames)  # an earlier reader's view stays valid

        proc.stdin.close()
        assert proc.stdout.readline().strip() == "CLOSED"
        assert proc.wait(60) == 0
    done = Session.open(path)
    assert done.meta["status"] == "complete" and len(done) == 1000
    assert np.array_equal(done.actions, pattern(0, 1000, shape)[2])
    assert_exact_files(path, 1000, 0)


def test_reader_in_the_writers_process_does_not_recover(tmp_path: Path) -> None:
    with create(tmp_path) as w:
        write(w, np.full((20, 24, 32), 9, np.uint8), np.arange(1, 21), np.zeros((20, 4), np.uint8))
        w.flush(force=True)
        write(w, np.full((40, 24, 32), 9, np.uint8), np.arange(1, 41), np.zeros((40, 4), np.uint8))
        s = Session.open(w.path)
        assert s.meta["status"] == "recording" and len(s) == 20
        assert [i.status for i in sessions(tmp_path)] == ["recording"]
    assert Session.open(w.path).meta["status"] == "complete"


def test_kill_9_mid_recording_is_recovered(tmp_path: Path) -> None:
    shape = (48, 64)
    path = tmp_path / "sessions" / "s"
    reported, events, flushed = 0, 0, 0
    with subprocess.Popen([sys.executable, str(HELPER), "kill", str(tmp_path)], stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith("FLUSHED"):
                    flushed = int(line.split()[1])
                    continue
                reported, events = map(int, line.split())
                if flushed and reported >= flushed + 2000:
                    break
            live = Session.open(path)  # the writer is alive: read as of its last flush, not recovered
            assert live.meta["status"] == "recording" and len(live) >= flushed
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for line in proc.stdout:  # what it printed before dying, after our last read
            if not line.startswith("FLUSHED") and len(line.split()) == 2:
                reported, events = map(int, line.split())
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((path / "meta.json").read_text())["status"] == "recording"

    s = Session.open(path)
    t = len(s)
    assert reported <= t <= reported + 9  # every reported commit, at most the batch being printed
    assert s.meta["status"] == "recovered" and s.meta["frames"] == t
    frames, t_ns, actions = pattern(0, t, shape)
    assert np.array_equal(s.frames, frames)
    assert np.array_equal(s.timestamps, t_ns)
    assert np.array_equal(s.actions, actions)
    e = len(s.events)
    assert events <= e <= events + 1
    ev_t, ev_a, ev_v = event_pattern(0, e)
    assert np.array_equal(s.events["t_ns"], ev_t) and np.array_equal(s.events["action"], ev_a)
    assert np.array_equal(s.events["value"], ev_v)
    assert s.meta["duration_s"] == pytest.approx((t_ns[-1] - t_ns[0]) / 1e9 + 1 / 60)
    assert_exact_files(path, t, e)
    assert not (path / "writer.lock").exists()
    again = Session.open(path)
    assert len(again) == t and again.meta == s.meta


def test_listing_recovers_a_session_whose_writer_exited_without_closing(tmp_path: Path) -> None:
    code = (
        "import os, sys, numpy as np\n"
        f"sys.path.insert(0, {str(HELPER.parent)!r})\n"
        "from session_writer import open_writer, write_batch\n"
        f"w = open_writer({str(tmp_path)!r}, (48, 64), chunk_frames=16)\n"
        "while w.frames_written < 100:\n"
        "    write_batch(w, 7, (48, 64))\n"
        "print(w.frames_written, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    committed = int(out.stdout)
    [info] = sessions(tmp_path)
    assert info.status == "recovered" and info.frames == committed
    s = Session.open(info.path)
    assert s.meta["status"] == "recovered" and np.array_equal(s.frames, pattern(0, committed, (48, 64))[0])


# -- memory ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_memory_stays_flat_over_100k_frames(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(HELPER), "rss", str(tmp_path)], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout)
    print(json.dumps(r))  # shown with -rP: RSS and per-frame costs, measured, not asserted
    assert abs(r["rss_100k"] - r["rss_1k"]) < 6 * MiB
    assert r["rss_max"] - r["rss_min"] < 6 * MiB  # flat all the way, not only at the two ends
    s = Session.open(tmp_path / "sessions" / "s")
    assert len(s) == 100_000 and bool((np.diff(s.timestamps) > 0).all())
    assert_exact_files(s.path, 100_000, 0)


# -- disk errors -----------------------------------------------------------------------------------


def check_stopped_session(path: Path, out: str, reason: str) -> None:
    """The fill helper's writer hit a storage error: one clear line; what it committed is all there."""
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    committed, message = int(lines["COMMITTED"]), lines["ERROR"]
    assert reason in message and f"its {committed} committed frames are kept" in message
    assert lines["AGAIN"] == "True" and lines["STATUS"] == "recovered"  # later writes raise it again
    assert committed > 0
    s = Session.open(path)
    assert len(s) == committed and s.meta["status"] == "recovered" and s.meta["error"] == message
    frames, t_ns, actions = pattern(0, committed, (48, 64))
    assert np.array_equal(s.frames, frames) and np.array_equal(s.timestamps, t_ns)
    assert np.array_equal(s.actions, actions)
    assert_exact_files(path, committed, 0)


def test_file_size_limit_stops_cleanly(tmp_path: Path) -> None:
    def limit() -> None:  # exceeding RLIMIT_FSIZE is EFBIG: Python ignores SIGXFSZ
        resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, MiB))

    out = subprocess.run([sys.executable, str(HELPER), "fill", str(tmp_path)], capture_output=True, text=True,
                         preexec_fn=limit, timeout=120)
    assert out.returncode == 0, out.stderr
    check_stopped_session(tmp_path / "sessions" / "s", out.stdout, "file size limit reached")


def test_disk_full_stops_cleanly(tmp_path: Path) -> None:
    """A real ENOSPC: a 1 MiB tmpfs in a private mount namespace (gone with the process); the session is
    copied out of it for checking."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    script = (
        f'mount -t tmpfs -o size=1m tmpfs "{disk}" || exit 77\n'
        f'"{sys.executable}" "{HELPER}" fill "{disk}"\n'
        f'cp -a "{disk}/sessions" "{saved}"\n'
    )
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=120)
    if out.returncode == 77 or "unshare failed" in out.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    check_stopped_session(saved / "s", out.stdout, "disk full")


@pytest.mark.parametrize("where", ["proc", "parent_is_file", "is_file"])
def test_unwritable_data_dir(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("not a directory")
    root = {"proc": Path("/proc/engine-test-data"), "parent_is_file": tmp_path / "file" / "data",
            "is_file": tmp_path / "file"}[where]
    with pytest.raises(StorageError) as e:
        create(root)
    message = str(e.value)
    assert "\n" not in message and str(root) in message and "--data-dir" in message
    if where == "is_file":
        with pytest.raises(StorageError, match="not a directory"):
            sessions(root)


# -- listing ---------------------------------------------------------------------------------------


def make_sessions(root: Path) -> None:
    for name, game, n in (("b1", "kart", 30), ("a1", "race", 12), ("c1", "kart", 7)):
        with create(root, name=name, game=game) as w:
            write(w, np.zeros((n, 24, 32), np.uint8), np.arange(1, n + 1, dtype=np.int64) * 33_333_333,
                  np.zeros((n, 4), np.uint8))


def test_sessions_lists_oldest_first_and_filters_by_game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    make_sessions(tmp_path)
    (tmp_path / "sessions" / "stray").mkdir()  # no meta.json: not a session
    infos = sessions(tmp_path)
    assert [i.name for i in infos] == ["b1", "a1", "c1"]  # by created, not by name
    assert [i.frames for i in infos] == [30, 12, 7]
    assert all(i.status == "complete" and i.fps == 30.0 and i.bytes_on_disk > 0 for i in infos)
    assert infos[0].duration_s == pytest.approx(30 / 30)
    assert [i.name for i in sessions(tmp_path, game="kart")] == ["b1", "c1"]
    assert sessions(tmp_path, game="none") == []
    assert sessions(tmp_path / "nowhere") == []

    monkeypatch.setenv("ENGINE_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path and data_dir("x") == Path("x")
    assert [i.name for i in sessions()] == ["b1", "a1", "c1"]
    monkeypatch.delenv("ENGINE_DATA_DIR")
    assert data_dir() == Path("data")


def test_engine_sessions_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_sessions(tmp_path)
    assert sessions_main(["--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "GAME", "CREATED", "(UTC)", "FRAMES", "DURATION", "FPS", "STATUS",
                                "SIZE"]
    assert [line.split()[0] for line in lines[1:]] == ["b1", "a1", "c1"]
    assert lines[1].split()[1] == "kart" and lines[1].split()[4:8] == ["30", "1.0s", "30", "complete"]

    assert sessions_main(["--data-dir", str(tmp_path), "--game", "race"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["a1"]

    assert sessions_main(["--data-dir", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.startswith("no sessions in")


@pytest.mark.parametrize("args", [["--data-dir", "{file}"], ["--bogus"], ["--game", ""], ["--data-dir"]])
def test_engine_sessions_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "file").write_text("")
    argv = [a.format(file=tmp_path / "file") for a in args]
    out = subprocess.run([sys.executable, "-m", "engine.cli.sessions", *argv], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stdout == "" and len(out.stderr.splitlines()) == 1
    assert out.stderr.startswith("engine-sessions: ")


def test_engine_sessions_reads_engine_data_dir(tmp_path: Path) -> None:
    make_sessions(tmp_path)
    env = dict(os.environ, ENGINE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "engine.cli.sessions", "--game", "kart"], capture_output=True,
                         text=True, env=env, check=True)
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["b1", "c1"]


def test_the_package_exports_session_and_sessions_without_loading_them_at_import(tmp_path: Path) -> None:
    code = ("import sys, engine; lazy = 'engine.session' not in sys.modules; "
            "from engine import Session, sessions; import engine.session as s; "
            "print(lazy, Session is s.Session, sessions is s.sessions, "
            "{'Session', 'sessions'} <= set(engine.__all__))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["True"] * 4, r.stderr
    import engine

    with SessionWriter.create(tmp_path, name="s1", game="racer", fps=30, frame_shape=(2, 3), color="gray",
                              actions=["left"], resize=None, source=SOURCE) as w:
        buf = w.frames_buffer(1)
        buf[:] = 7
        w.commit(1, np.array([5], np.int64), np.ones((1, 1), np.uint8))
    (info,) = engine.sessions(tmp_path, game="racer")
    ses = engine.Session.open(info.path)
    assert len(ses) == 1 and (ses.frames[0] == 7).all() and ses.actions[0, 0] == 1 and ses.timestamps[0] == 5


def test_storage_loads_no_compiled_module_capture_or_play_at_import() -> None:
    """A training server without X reads sessions: importing engine.session (in a fresh interpreter, no
    DISPLAY) adds no compiled module, no X library and nothing of capture, play, actions or record. The
    package's own __init__ and engine.errors are judged by their own tests: what they load is the baseline."""
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('engine')\n"
        "pkg = types.ModuleType('engine')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['engine'] = pkg\n"
        "def loaded():\n"
        "    libs = {line.split()[-1] for line in open('/proc/self/maps') if 'libX' in line}\n"
        "    return {m for m in sys.modules if m.startswith('engine._')} | libs\n"
        "import engine.errors\n"
        "base = loaded()\n"
        "import engine.session\n"
        "print(sorted(loaded() - base))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['engine', 'capture'], ['engine', 'play'],"
        " ['engine', 'actions'], ['engine', 'record'])))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[]", "[]"], r.stdout
