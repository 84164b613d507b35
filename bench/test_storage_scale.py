"""Storage at scale (issue 16): compressed sessions, the store stage's prefault, and exports of a large dataset.

Rows, all measured in one run:
- compression: ratio and MB per CPU second (compress, decompress) of the engine's choice (blosc2, zstd
  level 1, chunks of whole frames) against zarr v3 (zstd level 1, same chunks) and zlib level 1, on two
  kinds of frames: a recording of the demo game (engine-record under Xvfb, the game driving itself),
  a real game with real sprite art (pygame's own "aliens" example, playing by itself under Xvfb,
  captured through the engine's window capture), and game-like textured frames (bench
  harness.game_scene: gradients, hard edges and noise, panned with sub-pixel motion so that no two frames
  repeat exactly: a worst case). CPU seconds, not wall time, because the machine is shared.
- compaction: engine-sessions compact's CPU per frame; and the writer's CPU per frame recording the same
  frames with compression on (SessionWriter(compress=True): each full chunk compressed on the writer
  thread, verified and swapped in at close) and off.
- gather: shuffled batches from a compacted session against the same session raw (MB/s of windows).
- store: SessionWriter at 1080p RGB with and without prefaulting each new chunk (CPU ms per frame).
- export at scale: N synthetic frames (32x32 gray; 100k quick, 1M full) in sessions of 50k, exported as
  LeRobot and WebDataset in a subprocess each, at two sizes: MB/s of frames and peak RSS (flat memory:
  the larger export's peak is about the smaller one's).

Every row checks what it measured (lossless round trips, equal gathers, counts); no timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import game_scene, ratio

from engine import _native
from engine.capture import open_source
from engine.demo import WINDOW_TITLE
from engine.record import RecordConfig, Recorder
from engine.session import Session, SessionWriter, compact

HERE = Path(__file__).resolve().parent
DEMO_SECONDS = {"quick": 4.0, "full": 15.0}
SCALE_FRAMES = {"quick": (50_000, 100_000), "full": (100_000, 1_000_000)}
SESSION_FRAMES = 50_000
SMALL = (32, 32)


def _cpu() -> float:
    return time.process_time()


def _textured(n: int, h: int = 240, w: int = 320) -> np.ndarray:
    """Game-like RGB frames: the harness scene panned along a curve with sub-pixel steps (bilinear)."""
    big = game_scene(h * 3, w * 3, seed=5).astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        fx, fy = 200 + 150 * np.sin(i / 40), 200 + 100 * np.cos(i / 55)
        x, y = int(fx), int(fy)
        ax, ay = fx - x, fy - y
        p = big[y : y + h + 1, x : x + w + 1]
        v = (1 - ay) * ((1 - ax) * p[:-1, :-1] + ax * p[:-1, 1:]) + ay * ((1 - ax) * p[1:, :-1] + ax * p[1:, 1:])
        out[i] = np.clip(v + 0.5, 0, 255).astype(np.uint8)
    return out


def _codecs(frames: np.ndarray, tmp: Path) -> dict[str, dict[str, float]]:
    """ratio, compress and decompress MB per CPU second for blosc2 (the engine's), zarr and zlib."""
    import zlib

    import blosc2
    import zarr

    from engine.session.compressed import CompressedFrames, chunk_layout, write_compressed

    raw = frames.nbytes
    res: dict[str, dict[str, float]] = {}
    k, _ = chunk_layout(frames[0].nbytes)
    path = tmp / "f.b2nd"
    t0 = _cpu()
    size = write_compressed(frames, path)
    tc = _cpu() - t0
    cf = CompressedFrames(path, cache_bytes=0)
    t0 = _cpu()
    for c in range(cf.nchunks):
        cf.chunk(c)
    td = _cpu() - t0
    assert np.array_equal(np.asarray(cf), frames)
    res["blosc2"] = {"ratio": raw / size, "comp": raw / tc / 1e6, "decomp": raw / td / 1e6}
    zp = tmp / "f.zarr"
    t0 = _cpu()
    z = zarr.create_array(str(zp), shape=frames.shape, chunks=(k, *frames.shape[1:]), dtype="u1",
                          compressors=[zarr.codecs.ZstdCodec(level=1)])
    z[:] = frames
    tc = _cpu() - t0
    zsize = sum(f.stat().st_size for f in zp.rglob("*") if f.is_file())
    t0 = _cpu()
    for a in range(0, len(frames), k):
        z[a : a + k]
    td = _cpu() - t0
    assert np.array_equal(z[:], frames)
    res["zarr"] = {"ratio": raw / zsize, "comp": raw / tc / 1e6, "decomp": raw / td / 1e6}
    t0 = _cpu()
    blob = zlib.compress(frames.tobytes(), 1)
    tc = _cpu() - t0
    t0 = _cpu()
    zlib.decompress(blob)
    td = _cpu() - t0
    res["zlib"] = {"ratio": raw / len(blob), "comp": raw / tc / 1e6, "decomp": raw / td / 1e6}
    del blosc2
    return res


def _record_real_game(display: str, n: int) -> np.ndarray:
    """n frames (320x240 RGB, about 30 fps) of a real game with real art: pygame's own "aliens" example,
    which plays by itself (aliens fly, drop bombs, the player's tank waits), in its window on the bench's
    X display, through the engine's window capture. Stops early if the player is hit (the game closes)."""
    env = dict(os.environ, DISPLAY=display, SDL_VIDEODRIVER="x11", SDL_AUDIODRIVER="dummy",
               PYGAME_HIDE_SUPPORT_PROMPT="1")
    game = subprocess.Popen([sys.executable, "-m", "pygame.examples.aliens"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        ids: list[int] = []
        while not ids and time.monotonic() < deadline:
            ids = [w["id"] for w in _native.x11_list_windows(display) if w["title"] == "Pygame Aliens"]
            time.sleep(0.05)
        assert ids, "pygame's aliens example did not open its window"
        grabber = _native.X11Grabber(display=display, window_id=ids[0])
        plan = _native.ConvertResize(640, 480, 320, 240, "rgb")
        frames = []
        for _ in range(n):
            try:
                frames.append(plan.run(grabber.grab()).copy())
            except Exception:  # the game ended (WindowLost): keep what was captured
                break
            time.sleep(1 / 30)
        assert len(frames) >= 30, f"only {len(frames)} frames of the real game"
        return np.stack(frames)
    finally:
        game.terminate()
        game.wait(10)


def _record_demo(xvfb: Any, demo_game: Any, tmp: Path, seconds: float, color: str, *args: str) -> Session:
    demo_game("--autodrive", "--seed", "7", "--pos", "40,40", *args)
    with open_source(window=WINDOW_TITLE, display=xvfb.display):
        pass  # the window is up
    cfg = RecordConfig(fps=30.0, window=WINDOW_TITLE, actions=["left", "right", "up"], data_dir=tmp, countdown=0,
                       duration=seconds, game="demo", color=color, display=xvfb.display)  # type: ignore[arg-type]
    summary = Recorder(cfg).run(install_signals=False)
    return Session.open(summary.path)


LONG_FRAMES = {"quick": 1500, "full": 6000}


def _long_session(demo: Session, root: Path, n: int) -> Session:
    frames = np.asarray(demo.frames)
    w = SessionWriter.create(root, name="long", game="demo", fps=30.0, frame_shape=frames.shape[1:], color="gray",
                             actions=demo.actions_names, resize=None, source={})
    at = 0
    while at < n:
        buf = w.frames_buffer(n - at)
        k = len(buf)
        src = np.arange(at, at + k) % len(frames)
        buf[:] = frames[src]
        w.commit(k, (np.arange(at, at + k, dtype=np.int64) + 1) * 33_333_333, np.asarray(demo.actions)[src])
        at += k
    w.close()
    return Session.open(w.path)


def _gather_mb_s(session_path: Path, batches: int, seed: int = 0) -> tuple[float, np.ndarray]:
    from engine.dataset import Windows

    w = Windows([session_path], window=4, skip=2)
    order = np.random.default_rng(seed).permutation(len(w))
    size = 64
    t0 = time.perf_counter()
    got = 0
    first = None
    for b in range(batches):
        idx = order[(b * size) % len(w) :][:size]
        x, _ = w.gather(idx)
        got += x.nbytes
        if first is None:
            first = x.copy()
    assert first is not None
    return got / (time.perf_counter() - t0) / 1e6, first


def test_compression_and_gather(report, mode, smoke, xvfb, demo_game, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seconds = 1.5 if smoke else DEMO_SECONDS[mode]
    demo = _record_demo(xvfb, demo_game, tmp_path / "demo", seconds, "gray")
    assert len(demo) > 10
    contents = {
        f"demo recording {demo.meta['frame_shape'][1]}x{demo.meta['frame_shape'][0]} gray": np.asarray(demo.frames),
        "game-like textured 320x240 rgb": _textured(40 if smoke else 120 if mode == "quick" else 600),
        "real game (pygame's aliens) 320x240 rgb": _record_real_game(xvfb.display,
                                                                     50 if smoke else 150 if mode == "quick" else 600),
    }
    for label, frames in contents.items():
        work = tmp_path / "codec"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        res = _codecs(frames, work)
        group = f"compress {label}: ratio ({len(frames)} frames)"
        for who, r in res.items():
            report.add(group, who, r["ratio"], "x", ratio=ratio(res["blosc2"]["ratio"], r["ratio"],
                       higher_is_better=True) if who != "blosc2" else None,
                       note="engine's choice: zstd-1, chunks of whole frames" if who == "blosc2" else "")
        for kind in ("comp", "decomp"):
            group = f"{'compress' if kind == 'comp' else 'decompress'} {label}: MB per CPU s"
            for who, r in res.items():
                report.add(group, who, r[kind], "MB/cpu-s", ratio=ratio(res["blosc2"][kind], r[kind],
                           higher_is_better=True) if who != "blosc2" else None)

    # compaction, and the gather from it against the raw session: a session longer than the chunk cache,
    # made of the recording's frames in turn (real content; the cache cannot hold it all)
    long = _long_session(demo, tmp_path / "long", 400 if smoke else LONG_FRAMES[mode])
    raw_dir = long.path
    packed = tmp_path / "packed" / "sessions" / long.path.name
    shutil.copytree(raw_dir, packed)
    t0 = _cpu()
    meta = compact(packed)
    cpu_ms = (_cpu() - t0) / len(long) * 1e3
    report.add("compact demo frames: CPU per frame", "engine-sessions compact", cpu_ms, "ms/frame",
               note=f"{meta['compression']['raw_bytes'] / meta['compression']['compressed_bytes']:.0f}x smaller")
    # recording with compression on vs off: the writer's store stage, demo frames, one frame per commit
    frames = np.asarray(long.frames)
    rec: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(3):  # interleaved: both see the same machine
        for on in (False, True):
            rec[on].append(_record_cpu_ms(frames, tmp_path / f"rec{on}", compress=on))
    off_ms = float(np.median([r[0] for r in rec[False]]))
    on_ms = float(np.median([r[0] for r in rec[True]]))
    close_ms = float(np.median([r[1] for r in rec[True]]))
    group = f"record {frames.shape[2]}x{frames.shape[1]} demo frames: writer CPU per frame"
    report.add(group, "SessionWriter, raw", off_ms, "ms/frame", ratio=1.0)
    report.add(group, "SessionWriter(compress=True)", on_ms, "ms/frame", ratio=ratio(on_ms, off_ms),
               note=f"+ {close_ms:.0f} ms at close (verify, swap) for {len(frames)} frames")
    batches = 5 if smoke else 20 if mode == "quick" else 100
    _gather_mb_s(raw_dir, 2)  # warm-up: kernels compiled, pages cached
    raw_rate, raw_x = _gather_mb_s(raw_dir, batches)
    packed_rate, packed_x = _gather_mb_s(packed, batches)
    assert np.array_equal(raw_x, packed_x)
    group = f"gather shuffled batches of 64 x 4 frames, {len(long)}-frame session: MB/s"
    report.add(group, "raw session (memory map)", raw_rate, "MB/s", ratio=1.0)
    report.add(group, "compacted session (chunk cache)", packed_rate, "MB/s",
               ratio=ratio(packed_rate, raw_rate, higher_is_better=True), note="< 1: the price of decompression")


def _record_cpu_ms(frames: np.ndarray, root: Path, compress: bool) -> tuple[float, float]:
    """(CPU ms per frame while recording, CPU ms of close()) for the writer's store stage."""
    shutil.rmtree(root, ignore_errors=True)
    w = SessionWriter.create(root, name="r", game="demo", fps=30.0, frame_shape=frames.shape[1:], color="gray",
                             actions=["a"], resize=None, source={}, compress=compress)
    zero = np.zeros((1, 1), np.uint8)
    t0 = _cpu()
    for i in range(len(frames)):
        w.frames_buffer(1)[0] = frames[i]
        w.commit(1, np.array([i + 1], np.int64), zero)
    t1 = _cpu()
    meta = w.close()
    t2 = _cpu()
    assert meta["frames"] == len(frames) and ("compression" in meta) == compress
    return (t1 - t0) / len(frames) * 1e3, (t2 - t1) * 1e3


def _store_cpu_ms(tmp: Path, prefault: bool, frames: int) -> float:
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    shutil.rmtree(tmp, ignore_errors=True)
    w = SessionWriter.create(tmp, name="p", game="bench", fps=60.0, frame_shape=frame.shape, color="rgb",
                             actions=["a"], resize=None, source={}, prefault=prefault)
    zero = np.zeros((1, 1), np.uint8)
    t0 = _cpu()
    for i in range(frames):
        w.frames_buffer(1)[0] = frame
        w.commit(1, np.array([i + 1], np.int64), zero)
    ms = (_cpu() - t0) / frames * 1e3
    assert w.close()["frames"] == frames
    return ms


def test_store_prefault(report, mode, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 60 if mode == "quick" else 300
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):  # interleaved, so both see the same machine
        for pf in (False, True):
            runs[pf].append(_store_cpu_ms(tmp_path / "s", pf, n))
    on, off = float(np.median(runs[True])), float(np.median(runs[False]))
    group = "store 1080p RGB frames: CPU per frame"
    report.add(group, "SessionWriter, chunk prefaulted", on, "ms/frame", ratio=ratio(on, off),
               note="MADV_POPULATE_WRITE per new chunk")
    report.add(group, "SessionWriter, no prefault", off, "ms/frame", ratio=1.0)


# ---- the export at scale, in a subprocess per size and format (clean RSS) ------------------------------
def make_sessions(root: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (256, *SMALL), dtype=np.uint8)
    done, s = 0, 0
    while done < frames:
        n = min(SESSION_FRAMES, frames - done)
        w = SessionWriter.create(root, name=f"s{s:03d}", game="synthetic", fps=30.0, frame_shape=SMALL, color="gray",
                                 actions=["a", "b", "c"], resize=None, source={})
        at = 0
        while at < n:
            buf = w.frames_buffer(min(4096, n - at))
            k = len(buf)
            buf[:] = pool[(np.arange(at, at + k) * 7) % len(pool)]
            t = (np.arange(at, at + k, dtype=np.int64) + 1) * 33_333_333
            acts = ((np.arange(at, at + k)[:, None] >> np.arange(3)[None, :]) & 1).astype(np.uint8)
            w.commit(k, t, acts)
            at += k
        w.close()
        done += n
        s += 1


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def probe(fmt: str, root: Path, out: Path) -> dict[str, float]:
    """Export every session under root as fmt into out; the numbers of this process. Memory is the
    anonymous RSS (the process's own heap), sampled at every progress step: the sessions' memory maps add
    file-backed pages to RSS as they are read, which are page cache the kernel drops at will, not memory
    the export holds."""
    import pyarrow.parquet  # noqa: F401  imported before the baseline: its import is not the export's memory

    from engine.dataset import Windows
    from engine.dataset.lerobot import export_lerobot
    from engine.dataset.webdataset import export_webdataset

    w = Windows("synthetic", window=4, stride=4, data_dir=root)
    base = _status_mb("RssAnon")
    peak = [base]

    def sample(done: int, total: int) -> None:
        peak[0] = max(peak[0], _status_mb("RssAnon"))

    t0 = time.perf_counter()
    r = (export_lerobot(w, out, progress=sample) if fmt == "lerobot" else
         export_webdataset(w, out, progress=sample))
    dt = time.perf_counter() - t0
    return {"items": r.items, "raw_mb": r.raw_bytes / 1e6, "written_mb": r.bytes_written / 1e6,
            "mb_s": r.raw_bytes / dt / 1e6, "seconds": dt, "peak_anon_mb": peak[0],
            "peak_growth_mb": peak[0] - base, "vmhwm_mb": _status_mb("VmHWM")}


@pytest.mark.parametrize("fmt", ["lerobot", "webdataset"])
def test_export_at_scale(report, mode, smoke, tmp_path, fmt) -> None:  # type: ignore[no-untyped-def]
    scale = (10_000, 20_000) if smoke else SCALE_FRAMES[mode]
    pytest.importorskip("pyarrow", reason="the exports need engine[scale] (pip install 'engine[scale]')")
    got = {}
    for n in scale:
        root = tmp_path / f"data{n}"
        make_sessions(root, n)
        out = tmp_path / f"out{n}"
        proc = subprocess.run([sys.executable, str(Path(__file__)), fmt, str(root), str(out)], capture_output=True,
                              text=True, timeout=3600, cwd=HERE.parent)
        assert proc.returncode == 0, proc.stderr[-3000:]
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        assert r["items"] == (n if fmt == "lerobot" else sum(
            (min(SESSION_FRAMES, n - a) - 4) // 4 + 1 for a in range(0, n, SESSION_FRAMES)))
        got[n] = r
        shutil.rmtree(root)
        shutil.rmtree(out)
    small, large = scale
    group = f"export {fmt}: {large // 1000}k frames of 32x32 gray"
    report.add(group, "engine", got[large]["mb_s"], "MB/s", note=f"{got[large]['written_mb']:.0f} MB written "
               f"in {got[large]['seconds']:.0f} s")
    group = f"export {fmt}: peak anonymous RSS growth, {small // 1000}k vs {large // 1000}k frames"
    report.add(group, f"{small // 1000}k frames", got[small]["peak_growth_mb"], "MB")
    report.add(group, f"{large // 1000}k frames", got[large]["peak_growth_mb"], "MB",
               ratio=ratio(max(got[large]["peak_growth_mb"], 1.0), max(got[small]["peak_growth_mb"], 1.0)),
               note=f"process peak RSS {got[large]['vmhwm_mb']:.0f} MB with mapped session pages; "
                    "ratio ~1: flat in the dataset size")


if __name__ == "__main__":  # the subprocess side of test_export_at_scale
    print(json.dumps(probe(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))))
