"""Export windows as a LeRobot dataset v3.0 directory, written with pyarrow (the ``lerobot`` package needs
Python 3.12+ and is not used).

    DIR/meta/info.json                               codebase_version "v3.0", fps, features, totals, paths
    DIR/meta/stats.json                              per-feature mean/std/min/max/count
    DIR/meta/tasks.parquet                           one task per game: task (index), task_index
    DIR/meta/episodes/chunk-000/file-000.parquet     one row per episode (= one session)
    DIR/data/chunk-{c:03d}/file-{f:03d}.parquet      one row per frame
    DIR/meta/engine/spec.json                        the engine's window spec (window, skip, labels...)
    DIR/meta/engine/windows-<part>.parquet           the engine's windows: episode, last frame, label
                                                     (and with axes, "axes": the encoded axis targets)

Each session is an episode holding all its frames; the game is the task. A frame row holds
``observation.images.screen`` (a PNG, LeRobot's "image" dtype: {bytes, path}), ``action`` (float32
vector, one 0/1 entry per action, then with axes each axis' recorded value in its natural units, as
LeRobot's continuous actions are; names in info.json, the engine's axis encodings in
meta/engine/spec.json), ``timestamp`` (frame_index / fps, as LeRobot's
own recorder writes it: its loaders look frames up by timestamp with a 0.1 ms tolerance, which capture
jitter would break), ``capture_s`` (the recorded capture time in seconds since the episode's first
frame, float64: where dropped frames and pauses show), ``frame_index``, ``episode_index``, ``index`` and
``task_index``.

Why PNG inside the parquet and not mp4: the frames stay lossless, so a reader gets exactly the pixels the
engine trained on (the engine's windows and labels can be rebuilt bit for bit, which the Ray reader
does); LeRobot's own benchmark found PNG decodes 2-6x faster than its AV1 video; and the data stays one
kind of file that pyarrow, Ray, Spark or Hugging Face ``datasets`` read without FFmpeg. Video is 5x
smaller; choose it when the dataset is published rather than trained on.

Streaming: frames go through in row groups of about 8 MB of raw frames, encoded and written one group at
a time; a file is closed at the first episode boundary past ``file_bytes`` (LeRobot keeps an episode in
one file). Memory is one row group plus one episode's stats row, whatever the dataset size. The whole
directory is written under DIR.partial and renamed at the end (engine.dataset.outdir).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.outdir import Progress, atomic_dir, check_out_dir, parts_of, png
from engine.dataset.spec import DatasetError
from engine.dataset.windows import Windows
from engine.session import Session

CODEBASE_VERSION = "v3.0"
IMAGE_KEY = "observation.images.screen"
CHUNKS_SIZE = 1000  # files per chunk directory (LeRobot's default)
FILE_BYTES = 100 << 20  # data file size at which the next episode starts a new file (LeRobot: 100 MB)
ROW_GROUP_BYTES = 8 << 20  # raw frame bytes per parquet row group
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # the submodule is used as pa.parquet
    except ImportError:
        raise DatasetError("the lerobot format needs pyarrow: pip install 'engine[scale]'") from None
    return pa


@dataclass(frozen=True)
class DirExport:
    """What a directory export wrote."""

    path: Path
    format: str
    windows: dict[str, int]  # part: windows
    items: int  # frames (lerobot) or windows (webdataset)
    raw_bytes: int  # frame bytes read from the sessions (the progress total)
    bytes_written: int
    files: int


class _Stats:
    """Streaming mean/std/min/max of rows (n, k) (float64 sums)."""

    def __init__(self) -> None:
        self.n = 0
        self.sum: np.ndarray | None = None
        self.sq: np.ndarray | None = None
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        xs = np.asarray(rows, np.float64)
        s, q, lo, hi = xs.sum(axis=0), (xs * xs).sum(axis=0), xs.min(axis=0), xs.max(axis=0)
        self.n += xs.shape[0]
        if self.sum is None or self.sq is None or self.lo is None or self.hi is None:
            self.sum, self.sq, self.lo, self.hi = s, q, lo, hi
        else:
            self.sum, self.sq = self.sum + s, self.sq + q
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    def to_dict(self) -> dict[str, Any]:
        assert self.sum is not None and self.sq is not None and self.lo is not None and self.hi is not None
        mean = self.sum / max(self.n, 1)
        std = np.sqrt(np.maximum(self.sq / max(self.n, 1) - mean * mean, 0.0))
        return {"mean": mean.tolist(), "std": std.tolist(), "min": self.lo.tolist(), "max": self.hi.tolist(),
                "count": [self.n]}


class _PixelStats:
    """Exact per-channel pixel statistics from 256-bin histograms, in LeRobot's image layout: values
    scaled to [0, 1], shape (C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        self.hist = np.zeros((channels, 256), np.int64)
        self.frames = 0

    def add(self, block: np.ndarray) -> None:
        c = self.hist.shape[0]
        px = block.reshape(-1, c)
        for k in range(c):
            self.hist[k] += np.bincount(px[:, k], minlength=256)
        self.frames += block.shape[0]

    def to_dict(self) -> dict[str, Any]:
        v = np.arange(256) / 255.0
        n = self.hist.sum(axis=1).clip(min=1)
        mean = (self.hist * v).sum(axis=1) / n
        std = np.sqrt(np.maximum((self.hist * v * v).sum(axis=1) / n - mean * mean, 0.0))
        used = self.hist > 0
        lo = np.array([v[np.argmax(u)] if u.any() else 0.0 for u in used])
        hi = np.array([v[255 - np.argmax(u[::-1])] if u.any() else 0.0 for u in used])

        def col(a: np.ndarray) -> Any:
            return a.reshape(-1, 1, 1).tolist()

        return {"mean": col(mean), "std": col(std), "min": col(lo), "max": col(hi), "count": [self.frames]}


def _episodes(parts: Mapping[str, Windows]) -> tuple[list[Session], dict[str, tuple[int, int]] | None]:
    """The sessions to write as episodes, in order, and LeRobot splits (episode ranges per part) when
    each session belongs to one part (a split by session), else None."""
    owner: dict[Path, str] = {}
    shared_by_parts = False
    ordered: list[tuple[str, Session]] = []
    seen: set[Path] = set()
    for name, w in parts.items():
        used = np.unique(w.index[0])
        for i in used.tolist():
            s = w.sessions[i]
            key = s.path.resolve()
            if key in owner and owner[key] != name:
                shared_by_parts = True
            owner.setdefault(key, name)
            if key not in seen:
                seen.add(key)
                ordered.append((name, s))
    if shared_by_parts:
        return [s for _, s in ordered], None
    part_names = list(parts)
    ordered.sort(key=lambda ns: part_names.index(ns[0]))  # stable: session order within a part
    splits: dict[str, tuple[int, int]] = {}
    for i, (name, _) in enumerate(ordered):
        lo, _hi = splits.get(name, (i, i))
        splits[name] = (lo, i + 1)
    return [s for _, s in ordered], splits


def export_lerobot(
    data: Windows | Mapping[str, Windows], out: str | os.PathLike[str], *, progress: Progress | None = None,
    file_bytes: int = FILE_BYTES, png_level: int = 1,
) -> DirExport:
    """Write ``data`` (one Windows, or {part: Windows} from :meth:`Windows.split`) as a LeRobot v3.0
    dataset directory ``out`` (see the module docs). progress: (frame bytes done, total) after each
    row group. Raises DatasetError (one line); ``out`` must not exist."""
    pa = _pa()
    pq = pa.parquet
    parts = parts_of(data)
    check_out_dir(out)
    spec = next(iter(parts.values())).spec
    episodes, splits = _episodes(parts)
    h, w_px = spec.frame_shape[:2]
    channels = 1 if spec.color == "gray" else 3
    fb = math.prod(spec.frame_shape)
    n_actions = len(spec.actions) + len(spec.axes)
    axis_names = [a.name for a in spec.axes]
    games = sorted({str(s.meta["game"]) for s in episodes})
    task_of = {g: i for i, g in enumerate(games)}
    total = sum(len(s) for s in episodes)
    fps = round(spec.fps)
    image_struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([
        (IMAGE_KEY, image_struct),
        ("action", pa.list_(pa.float32(), n_actions)),
        ("timestamp", pa.float32()),
        ("capture_s", pa.float64()),
        ("frame_index", pa.int64()),
        ("episode_index", pa.int64()),
        ("index", pa.int64()),
        ("task_index", pa.int64()),
    ], metadata={b"huggingface": json.dumps({"info": {"features": {
        IMAGE_KEY: {"_type": "Image"},
        "action": {"_type": "Sequence", "feature": {"dtype": "float32", "_type": "Value"}, "length": n_actions},
        "timestamp": {"dtype": "float32", "_type": "Value"},
        "capture_s": {"dtype": "float64", "_type": "Value"},
        "frame_index": {"dtype": "int64", "_type": "Value"},
        "episode_index": {"dtype": "int64", "_type": "Value"},
        "index": {"dtype": "int64", "_type": "Value"},
        "task_index": {"dtype": "int64", "_type": "Value"},
    }}}).encode()})
    rows_per_group = max(1, ROW_GROUP_BYTES // fb)
    pixels = _PixelStats(channels)
    stats = {k: _Stats() for k in ("action", "timestamp", "capture_s", "frame_index", "episode_index", "index",
                                   "task_index")}
    ep_rows: list[dict[str, Any]] = []
    written = files = 0
    with atomic_dir(out) as tmp:
        writer: Any = None
        file_index = file_bytes_now = 0
        chunk_index = 0
        index = 0
        try:
            for e, ses in enumerate(episodes):
                if writer is not None and file_bytes_now >= file_bytes:
                    writer.close()
                    writer = None
                    file_index += 1
                    if file_index == CHUNKS_SIZE:
                        chunk_index, file_index = chunk_index + 1, 0
                if writer is None:
                    path = tmp / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(str(path), schema, compression="none")  # PNGs are compressed
                    file_bytes_now = 0
                    files += 1
                cols = _columns(ses, spec.actions)
                axis_cols = np.array([ses.axis_names.index(a) for a in axis_names], np.int64)
                t_ns = np.asarray(ses.timestamps)
                n = len(ses)
                first_index = index
                task = task_of[str(ses.meta["game"])]
                for lo in range(0, n, rows_per_group):
                    hi = min(n, lo + rows_per_group)
                    block = np.asarray(ses.frames[lo:hi])
                    pngs = [png(f, png_level) for f in block]
                    acts = np.asarray(ses.actions[lo:hi])[:, cols].astype(np.float32)
                    if axis_names:
                        acts = np.concatenate([acts, np.asarray(ses.axes[lo:hi])[:, axis_cols]], axis=1)
                    fi = np.arange(lo, hi, dtype=np.int64)
                    ts = (fi / fps).astype(np.float32)
                    cap = (t_ns[lo:hi] - t_ns[0]) / 1e9
                    table = pa.table({
                        IMAGE_KEY: pa.StructArray.from_arrays(
                            [pa.array(pngs, pa.binary()), pa.nulls(hi - lo, pa.string())], fields=list(image_struct)),
                        "action": pa.FixedSizeListArray.from_arrays(pa.array(acts.ravel(), pa.float32()), n_actions),
                        "timestamp": pa.array(ts), "capture_s": pa.array(cap), "frame_index": pa.array(fi),
                        "episode_index": pa.array(np.full(hi - lo, e, np.int64)),
                        "index": pa.array(fi + first_index),
                        "task_index": pa.array(np.full(hi - lo, task, np.int64)),
                    }, schema=schema)
                    writer.write_table(table)
                    size = sum(len(p) for p in pngs)
                    file_bytes_now += size
                    written += size
                    pixels.add(block)
                    stats["action"].add(acts)
                    stats["timestamp"].add(ts[:, None])
                    stats["capture_s"].add(cap[:, None])
                    stats["frame_index"].add(fi[:, None])
                    stats["index"].add((fi + first_index)[:, None])
                    stats["episode_index"].add(np.full((hi - lo, 1), e))
                    stats["task_index"].add(np.full((hi - lo, 1), task))
                    index += hi - lo
                    if progress is not None:
                        progress(index * fb, total * fb)
                ep_rows.append({
                    "episode_index": e, "tasks": [str(ses.meta["game"])], "length": n,
                    "data/chunk_index": chunk_index, "data/file_index": file_index,
                    "dataset_from_index": first_index, "dataset_to_index": index,
                    "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                    "engine/session": ses.name, "engine/path": str(ses.path.resolve()),
                })
        finally:
            if writer is not None:
                writer.close()
        _write_meta(pa, tmp, spec, parts, episodes, ep_rows, games, splits, pixels, stats, total, fps, h, w_px,
                    channels, files)
    return DirExport(Path(out), "lerobot", {k: len(v) for k, v in parts.items()}, total, total * fb, written, files)


def _columns(ses: Session, actions: tuple[str, ...]) -> np.ndarray:
    have = ses.actions_names
    return np.array([have.index(a) for a in actions], np.int64)


def _write_meta(pa: Any, root: Path, spec: Any, parts: Mapping[str, Windows], episodes: list[Session],
                ep_rows: list[dict[str, Any]], games: list[str], splits: dict[str, tuple[int, int]] | None,
                pixels: _PixelStats, stats: dict[str, _Stats], total: int, fps: int, h: int, w: int, channels: int,
                files: int) -> None:
    pq = pa.parquet
    meta = root / "meta"
    (meta / "engine").mkdir(parents=True)
    ep_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    ep_path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), str(ep_path))
    tasks = pa.table({"task": games, "task_index": pa.array(range(len(games)), pa.int64())})
    # pandas metadata makes "task" the index when LeRobot reads it with pandas (as it does).
    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
         "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.0.0"}
    tasks = tasks.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    pq.write_table(tasks, str(meta / "tasks.parquet"))
    scalar = {"shape": [1], "names": None}
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": None,
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(games),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": FILE_BYTES >> 20,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": ({k: f"{a}:{b}" for k, (a, b) in splits.items()} if splits is not None
                   else {"train": f"0:{len(episodes)}"}),
        "data_path": DATA_PATH,
        "video_path": None,
        "features": {
            IMAGE_KEY: {"dtype": "image", "shape": [h, w, channels], "names": ["height", "width", "channels"]},
            "action": {"dtype": "float32", "shape": [len(spec.actions) + len(spec.axes)],
                       "names": [*spec.actions, *(a.name for a in spec.axes)]},
            "timestamp": {"dtype": "float32", **scalar},
            "capture_s": {"dtype": "float64", **scalar},
            "frame_index": {"dtype": "int64", **scalar},
            "episode_index": {"dtype": "int64", **scalar},
            "index": {"dtype": "int64", **scalar},
            "task_index": {"dtype": "int64", **scalar},
        },
        "engine": {"recorded_fps": spec.fps, "color": spec.color, "data_files": files,
                   "windows": "meta/engine/windows-<part>.parquet", "spec": "meta/engine/spec.json"},
    }
    (meta / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    st = {IMAGE_KEY: pixels.to_dict(), "action": stats["action"].to_dict()}
    for k in ("timestamp", "capture_s", "frame_index", "episode_index", "index", "task_index"):
        st[k] = stats[k].to_dict()
    (meta / "stats.json").write_text(json.dumps(st, indent=2) + "\n")
    # The engine's windows over the episodes: enough to rebuild exactly what engine.dataset yields.
    ep_of = {s.path.resolve(): i for i, s in enumerate(episodes)}
    first_index = [r["dataset_from_index"] for r in ep_rows]
    part_specs = {}
    for name, win in parts.items():
        sess, ends = win.index
        ep = np.array([ep_of.get(x.path.resolve(), -1) for x in win.sessions], np.int64)[sess]
        labels = np.asarray(win.labels)
        cols: dict[str, Any] = {
            "window_index": pa.array(np.arange(len(win), dtype=np.int64)),
            "episode_index": pa.array(ep),
            "frame_index": pa.array(np.asarray(ends, np.int64)),
            "index": pa.array(np.asarray(first_index, np.int64)[ep] + ends),
        }
        if labels.ndim == 2:
            cols["label"] = pa.FixedSizeListArray.from_arrays(pa.array(labels.ravel(), pa.uint8()), labels.shape[1])
        else:
            cols["label"] = pa.array(labels.astype(np.int64))
        if win.spec.axes:  # the windows' axis targets, encoded (engine.axes_spec), beside the key label
            t = np.asarray(win.axis_targets, np.float32)
            cols["axes"] = pa.FixedSizeListArray.from_arrays(pa.array(t.ravel(), pa.float32()), t.shape[1])
        pq.write_table(pa.table(cols), str(meta / "engine" / f"windows-{name}.parquet"))
        part_specs[name] = win.spec.to_dict()
    first = next(iter(parts.values())).spec
    (meta / "engine" / "spec.json").write_text(json.dumps(
        {"format": "engine-windows", "window": first.window, "skip": first.skip, "encoding": first.encoding,
         "actions": list(first.actions), "classes": [list(c) for c in first.classes],
         "axes": [a.to_dict() for a in first.axes],
         "frame_shape": list(first.frame_shape), "color": first.color, "parts": part_specs}, indent=2) + "\n")


__all__ = ["CODEBASE_VERSION", "IMAGE_KEY", "DirExport", "export_lerobot"]
