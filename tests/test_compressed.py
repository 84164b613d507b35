"""Compressed sessions (engine.session.compressed, engine-sessions compact): lossless, atomic, and read
by every reader like raw ones; the dataset gather through the chunk cache equals the raw gather."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_dataset import write_session

from engine.cli.sessions import main as sessions_main
from engine.dataset import Windows
from engine.session import CompressedFrames, Session, StorageError, compact, is_compressed, sessions
from engine.session.compressed import COMPRESSED_FRAMES

CHUNK = 16  # frames per chunk in these tests: many chunks in a small session


def _two(tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {"k1": write_session(tmp_path, "k1", 203, gaps=(90,), seed=1),
            "k2": write_session(tmp_path, "k2", 150, seed=2, shape=(6, 10))}


def test_compact_is_lossless_and_every_read_matches_the_raw_frames(tmp_path: Path) -> None:
    raw = _two(tmp_path)
    path = tmp_path / "sessions" / "k1"
    before = Session.open(path)
    meta = compact(path, chunk_frames=CHUNK)
    assert is_compressed(path) and not (path / "frames.npy").exists()
    assert meta["frames_file"] == COMPRESSED_FRAMES and meta["compression"]["chunk_frames"] == CHUNK
    assert json.loads((path / "meta.json").read_text())["compression"]["raw_bytes"] == raw["k1"][0].nbytes
    s = Session.open(path)
    f = s.frames
    assert isinstance(f, CompressedFrames) and len(s) == len(before) == 203
    frames = raw["k1"][0]
    assert f.shape == frames.shape and f.dtype == np.uint8
    assert np.array_equal(np.asarray(f), frames)
    assert np.array_equal(f[5], frames[5]) and np.array_equal(f[-1], frames[-1])
    assert np.array_equal(f[10:50], frames[10:50]) and np.array_equal(f[200:500], frames[200:])
    assert np.array_equal(f[3:100:7], frames[3:100:7])
    idx = np.array([[0, 202], [17, 16]])
    assert np.array_equal(f[idx], frames[idx])
    assert np.array_equal(f[5, 2:4], frames[5, 2:4])
    assert np.array_equal(np.stack(list(f)), frames)
    with pytest.raises(IndexError):
        f[203]
    assert np.array_equal(s.timestamps, raw["k1"][1]) and np.array_equal(s.actions, raw["k1"][2])
    # The listing sees it, and a second compact leaves it as it is.
    assert [i.name for i in sessions(tmp_path)] == ["k1", "k2"]
    assert compact(path)["compression"] == meta["compression"]


@pytest.mark.parametrize("float32", [False, True])
def test_gather_from_compressed_sessions_equals_the_raw_gather(tmp_path: Path, float32: bool) -> None:
    _two(tmp_path)
    raw_windows = Windows(["k1", "k2"], window=5, skip=3, data_dir=tmp_path)
    idx = np.random.default_rng(0).permutation(len(raw_windows))[:64]
    want_x, want_y = raw_windows.gather(idx, float32=float32)
    compact(tmp_path / "sessions" / "k1", chunk_frames=CHUNK)  # k1 compressed, k2 raw: a mixed set
    mixed = Windows(["k1", "k2"], window=5, skip=3, data_dir=tmp_path)
    x, y = mixed.gather(idx, float32=float32)
    assert x.dtype == want_x.dtype and np.array_equal(x, want_x) and np.array_equal(y, want_y)
    compact(tmp_path / "sessions" / "k2", chunk_frames=CHUNK)
    both = Windows(["k1", "k2"], window=5, skip=3, data_dir=tmp_path)
    assert np.array_equal(both.gather(idx, float32=float32)[0], want_x)
    assert np.array_equal(both[3][0], raw_windows[3][0])


def test_a_shuffled_batch_decompresses_each_chunk_it_touches_once(tmp_path: Path) -> None:
    _two(tmp_path)
    compact(tmp_path / "sessions" / "k1", chunk_frames=CHUNK)
    w = Windows(["k1"], window=4, data_dir=tmp_path)
    idx = np.random.default_rng(1).permutation(len(w))[:40]
    frames = w.sessions[0].frames
    assert isinstance(frames, CompressedFrames)
    frames._cache_chunks = 0  # no cache across batches: count what one batch needs
    _, ends = w.index
    touched = {int(f) // CHUNK for e in ends[idx] for f in range(e - 3, e + 1)}
    w.gather(idx)
    assert frames.decompressed_chunks == len(touched) < 40 * 4


def test_compact_is_atomic_and_finishes_an_interrupted_compact(tmp_path: Path) -> None:
    raw = _two(tmp_path)
    path = tmp_path / "sessions" / "k1"
    # Interrupted while writing: a partial copy is thrown away and the job redone.
    (path / (COMPRESSED_FRAMES + ".partial")).write_bytes(b"half a file")
    compact(path, chunk_frames=CHUNK)
    assert not (path / (COMPRESSED_FRAMES + ".partial")).exists()
    # Interrupted after the rename, before the raw frames went: readers read the raw ones, the next
    # compact verifies the copy and removes them.
    other = tmp_path / "sessions" / "k2"
    compact(other, chunk_frames=CHUNK)
    write_session(tmp_path, "k3", 150, seed=2)
    k3 = tmp_path / "sessions" / "k3"
    (k3 / COMPRESSED_FRAMES).write_bytes((other / COMPRESSED_FRAMES).read_bytes())  # same frames as k2
    assert not is_compressed(k3) and isinstance(Session.open(k3).frames, np.ndarray)
    compact(k3)
    assert is_compressed(k3) and np.array_equal(np.asarray(Session.open(k3).frames), raw["k2"][0])
    # A copy that differs from the raw frames is never trusted: the raw frames stay.
    write_session(tmp_path, "k4", 150, seed=9)
    k4 = tmp_path / "sessions" / "k4"
    (k4 / COMPRESSED_FRAMES).write_bytes((other / COMPRESSED_FRAMES).read_bytes())
    with pytest.raises(StorageError, match="differs from the raw frames"):
        compact(k4)
    assert (k4 / "frames.npy").exists()


def test_a_session_being_recorded_is_not_compacted(tmp_path: Path) -> None:
    from engine.session import SessionWriter

    w = SessionWriter.create(tmp_path, name="live", game="kart", fps=30.0, frame_shape=(4, 4), color="gray",
                             actions=["a"], resize=None, source={"backend": "test", "region": [0, 0, 4, 4],
                                                                  "window": None})
    try:
        with pytest.raises(StorageError, match="being recorded"):
            compact(w.path)
        assert (w.path / "frames.npy").exists()
    finally:
        w.close()


def test_cli_compact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _two(tmp_path)
    assert sessions_main(["compact", "--data-dir", str(tmp_path), "k1", "k2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("k1: ") and "->" in out[0]
    assert sessions_main(["compact", "--data-dir", str(tmp_path), "--all"]) == 0
    assert "already compact" in capsys.readouterr().out
    assert sessions_main(["compact", "--data-dir", str(tmp_path), "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no session 'nope'" in err[0]
    assert sessions_main(["compact", "--data-dir", str(tmp_path)]) == 2
    assert sessions_main(["--data-dir", str(tmp_path)]) == 0  # the listing still works
    assert "k1" in capsys.readouterr().out


def test_report_of_a_compacted_session_shows_the_same_frames(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    write_session(tmp_path, "r1", 120, seed=4, shape=(24, 32))
    env = dict(os.environ, ENGINE_DATA_DIR=str(tmp_path))

    def report(out: Path) -> bytes:
        out.mkdir()
        r = subprocess.run([sys.executable, "-m", "engine.cli.report", "r1", "--out", str(out)],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        return (out / "r1.report.png").read_bytes()

    raw = report(tmp_path / "raw")
    compact(tmp_path / "sessions" / "r1", chunk_frames=CHUNK)
    assert report(tmp_path / "packed") == raw  # the same picture, pixel for pixel


def test_torch_loader_workers_read_compressed_sessions(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install engine[torch])")
    from engine.dataset.torch_adapter import data_loader

    _two(tmp_path)
    raw = Windows(["k1", "k2"], window=4, data_dir=tmp_path)
    want = list(raw.batches(50))
    compact(tmp_path / "sessions" / "k1", chunk_frames=CHUNK)
    w = Windows(["k1", "k2"], window=4, data_dir=tmp_path)
    w.gather(np.arange(10))  # the parent has read (and cached) chunks before the workers fork
    got = list(data_loader(w, 50, num_workers=2, float32=False))
    assert len(got) == len(want)
    assert all(np.array_equal(tx.numpy(), x) and np.array_equal(ty.numpy(), y)
               for (tx, ty), (x, y) in zip(got, want, strict=True))


# ---- compression while recording (SessionWriter(compress=True)) ----------------------------------------
def _record(root: Path, n: int, *, compress: bool, chunk_frames: int = 10) -> np.ndarray:
    from helpers.session_writer import ACTIONS, pattern

    from engine.session import SessionWriter

    w = SessionWriter.create(root, name="c", game="test", fps=60.0, frame_shape=(12, 16), color="gray",
                             actions=ACTIONS, resize=None, source={}, chunk_frames=chunk_frames, compress=compress)
    at, sizes = 0, [3, 7, 1, 9, 4]
    while at < n:  # odd batches, across chunk boundaries (a buffer never crosses one)
        buf = w.frames_buffer(min(sizes[at % 5], n - at))
        frames, t, a = pattern(at, len(buf), (12, 16))
        buf[:] = frames
        w.commit(len(buf), t, a)
        at += len(buf)
    meta = w.close()
    assert meta["frames"] == n
    return pattern(0, n, (12, 16))[0]


def test_compression_while_recording_gives_a_compacted_session(tmp_path: Path) -> None:
    frames = _record(tmp_path, 95, compress=True)
    path = tmp_path / "sessions" / "c"
    assert is_compressed(path) and not list(path.glob("*.partial"))
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["compression"]["raw_bytes"] == frames.nbytes
    s = Session.open(path)
    assert isinstance(s.frames, CompressedFrames) and np.array_equal(np.asarray(s.frames), frames)
    _record(tmp_path / "raw", 95, compress=False)
    assert not is_compressed(tmp_path / "raw" / "sessions" / "c")


def test_a_writer_killed_while_compressing_leaves_a_raw_session_that_compacts(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    helpers = Path(__file__).parent / "helpers"
    code = (f"import sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "from test_compressed import _writer_until_killed; _writer_until_killed(sys.argv[1])")
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                          cwd=helpers) as proc:
        assert proc.stdout is not None
        try:
            ready = proc.stdout.readline().strip()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert ready == "READY 57"
    path = tmp_path / "sessions" / "c"
    assert (path / (COMPRESSED_FRAMES + ".partial")).exists()  # it died mid-recording, compressing
    s = Session.open(path)  # recovered from the raw files, as any killed recording
    assert s.meta["status"] == "recovered" and len(s) == 57
    from helpers.session_writer import pattern

    frames = pattern(0, 57, (12, 16))[0]
    assert isinstance(s.frames, np.ndarray) and np.array_equal(s.frames, frames)
    compact(path)
    assert not (path / (COMPRESSED_FRAMES + ".partial")).exists()
    assert np.array_equal(np.asarray(Session.open(path).frames), frames)


def _writer_until_killed(root: str) -> None:
    """The killed process of the test above: 57 frames committed (5 full chunks compressed), then wait."""
    import sys
    import time

    from helpers.session_writer import ACTIONS, pattern

    from engine.session import SessionWriter

    w = SessionWriter.create(root, name="c", game="test", fps=60.0, frame_shape=(12, 16), color="gray",
                             actions=ACTIONS, resize=None, source={}, chunk_frames=10, compress=True)
    while w.frames_written < 57:
        at = w.frames_written
        buf = w.frames_buffer(min(3, 57 - at))
        frames, t, a = pattern(at, len(buf), (12, 16))
        buf[:] = frames
        w.commit(len(buf), t, a)
    print("READY", w.frames_written, flush=True)
    time.sleep(600)
    sys.exit(1)


@pytest.mark.x11
def test_engine_record_compress_writes_a_compressed_session(xvfb, image_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """engine-record --compress on a real window: the session is compressed when it closes, and its frames
    are the window's pixels converted, as a raw recording of the same window holds them."""
    import os
    import subprocess
    import sys

    from scenes import scene

    image_window(scene(96, 128, seed=40), title="compress-game", x=50, y=700)
    env = dict(os.environ, DISPLAY=xvfb.display)
    for name, extra in (("packed", ["--compress"]), ("raw", [])):
        r = subprocess.run([sys.executable, "-m", "engine.cli.record", "--countdown", "0", "--duration", "1",
                            "--fps", "20", "--window", "compress-game", "--data-dir", str(tmp_path), "--name", name,
                            *extra], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    packed, raw = Session.open(tmp_path / "sessions" / "packed"), Session.open(tmp_path / "sessions" / "raw")
    assert is_compressed(packed.path) and not is_compressed(raw.path)
    assert not (packed.path / "frames.npy").exists() and (packed.path / COMPRESSED_FRAMES).exists()
    assert len(packed) >= 2 and np.array_equal(packed.frames[0], raw.frames[0])  # a static window
    assert all(np.array_equal(packed.frames[i], packed.frames[0]) for i in range(len(packed)))
