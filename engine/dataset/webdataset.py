"""Export windows as WebDataset tar shards, for streaming trainers (webdataset, torchdata, Ray, MosaicML...).

    DIR/<part>-000000.tar, DIR/<part>-000001.tar, ...     shards of about ``shard_bytes`` each
    DIR/index.json                                        parts, their shards and sample counts, the spec

One sample per window, its files sharing the key ``<part>-<window index, 9 digits>`` (WebDataset groups
a sample's files by the name before the first dot, and they are contiguous in the tar)::

    <key>.x.npy    the window's frames, uint8 (W, H, W'[, C]), frame 0 the oldest (numpy .npy)
    <key>.y.npy    its label: uint8 (A,) multi-hot, or int64 () class index
    <key>.a.npy    with axis targets only: float32 (K,), each axis encoded (regression target or bin index;
                   the encodings are the index's "axes", as engine.axes_spec writes them)
    <key>.json     {"session", "end", "part", "window"}: where it came from

The shards are mixed (``shuffle``, seeded): a streaming reader cannot shuffle globally, only within a
buffer, so each shard must hold windows from all over the dataset. Each window is assigned a random shard
(as many shards as ``shard_bytes`` asks for, so a shard holds about that much) while the windows are read
in session order: reading stays sequential, so compacted sessions decompress each chunk about once for
the whole export (a random read order would decompress a chunk per window). Within a shard the samples
then follow the sessions' order, spread over the whole dataset; the reader's shuffle buffer mixes them.
Memory: one gathered batch (engine.dataset.outdir.BATCH_BYTES) and the open shards' tar headers, whatever
the dataset size; at most MAX_OPEN shards are open, more take another pass. The directory is written
under DIR.partial and renamed at the end.

Reading it with the webdataset package::

    ds = wds.WebDataset("DIR/train-{000000..000012}.tar", shardshuffle=True, nodesplitter=wds.split_by_node)
    ds = ds.shuffle(1000).decode().to_tuple("x.npy", "y.npy")
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.lerobot import DirExport
from engine.dataset.outdir import Progress, atomic_dir, check_out_dir, parts_of, window_batches
from engine.dataset.windows import Windows

SHARD_BYTES = 256 << 20
MAX_OPEN = 256  # shard files open at once; more shards take more passes over the sessions


def _tar_bytes(n: int) -> int:
    """Bytes a member of n bytes takes in a tar: a 512-byte header, the data padded to 512."""
    return 512 + -(-n // 512) * 512


def _sample_bytes(window_bytes: int) -> int:
    """About what one sample takes: x (.npy header 128 bytes), y and json (under 512 bytes each)."""
    return _tar_bytes(128 + window_bytes) + 2 * _tar_bytes(400)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(a, order="C", copy=None), allow_pickle=False)  # keeps 0-d 0-d
    return buf.getvalue()


class _TarWriter:
    """An append-only ustar writer that keeps nothing per member (tarfile.TarFile keeps a TarInfo of every
    member it wrote, which grows with the shard: 250k windows took 250 MB). Headers come from
    TarInfo.tobuf; the end is two zero blocks, padded to a whole record, as tarfile writes it."""

    def __init__(self, path: Path, mtime: float) -> None:
        self._f = open(path, "wb")  # noqa: SIM115  closed by close()
        self._mtime = int(mtime)

    def add(self, name: str, data: bytes) -> int:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), self._mtime, 0o444
        header = info.tobuf(tarfile.USTAR_FORMAT)
        pad = -len(data) % tarfile.BLOCKSIZE
        self._f.write(header)
        self._f.write(data)
        self._f.write(b"\0" * pad)
        return len(header) + len(data) + pad

    def close(self) -> None:
        end = 2 * tarfile.BLOCKSIZE
        self._f.write(b"\0" * (end + -(self._f.tell() + end) % tarfile.RECORDSIZE))
        self._f.close()


def export_webdataset(
    data: Windows | Mapping[str, Windows], out: str | os.PathLike[str], *, shard_bytes: int = SHARD_BYTES,
    shuffle: bool = True, seed: int = 0, progress: Progress | None = None,
) -> DirExport:
    """Write ``data`` (one Windows, or {part: Windows}) as WebDataset shards in the new directory ``out``
    (see the module docs). progress: (window bytes done, total) after each batch. Raises DatasetError
    (one line); ``out`` must not exist."""
    parts = parts_of(data)
    check_out_dir(out)
    total = sum(len(w) for w in parts.values())
    first = next(iter(parts.values())).spec
    window_bytes = first.window * int(np.prod(first.frame_shape))
    done = written = files = 0
    now = time.time()
    index: dict[str, Any] = {"format": "webdataset", "sample": {"x.npy": "uint8 (W, H, W'[, C]) window, oldest first",
                                                              "y.npy": "uint8 (A,) multi-hot or int64 () class",
                                                              "json": "session, end frame, part, window index"},
                             "parts": {}}
    if first.axes:
        index["sample"]["a.npy"] = "float32 (K,) axis targets, encoded per axes"
        index["axes"] = [a.to_dict() for a in first.axes]
    with atomic_dir(out) as tmp:
        for name, w in parts.items():
            sess, ends = w.index
            targets = np.asarray(w.axis_targets) if first.axes else None
            names = [s.name for s in w.sessions]
            n = len(w)
            sample = _sample_bytes(window_bytes)
            n_shards = max(1, -(-n * sample // shard_bytes))
            # Each window goes to a random shard (or, without shuffle, to consecutive ones); the windows
            # are read in session order, so the sessions' memory maps and chunk caches are read once.
            shard_of = (np.random.default_rng(seed).integers(0, n_shards, n) if shuffle
                        else np.arange(n, dtype=np.int64) * n_shards // n)
            in_order = np.lexsort((ends, sess))
            counts = np.bincount(shard_of, minlength=n_shards)
            files_of = [f"{name}-{k:06d}.tar" for k in range(n_shards)]
            for lo in range(0, n_shards, MAX_OPEN):  # at most MAX_OPEN files open: a pass over the data each
                hi = min(n_shards, lo + MAX_OPEN)
                mine = in_order[(shard_of[in_order] >= lo) & (shard_of[in_order] < hi)]
                tars: dict[int, _TarWriter] = {}
                try:
                    for idx, x, y in window_batches(w, mine):
                        for k, i in enumerate(idx.tolist()):
                            s = int(shard_of[i])
                            tar = tars.get(s)
                            if tar is None:
                                tar = tars[s] = _TarWriter(tmp / files_of[s], now)  # closed after the pass
                            key = f"{name}-{i:09d}"
                            meta = {"session": names[int(sess[i])], "end": int(ends[i]), "part": name, "window": i}
                            xb, yb = _npy(x[k]), _npy(np.asarray(y[k]))
                            jb = json.dumps(meta).encode()
                            written += tar.add(f"{key}.x.npy", xb) + tar.add(f"{key}.y.npy", yb)
                            if targets is not None:
                                written += tar.add(f"{key}.a.npy", _npy(targets[i]))
                            written += tar.add(f"{key}.json", jb)
                        done += len(idx)
                        if progress is not None:
                            progress(done * window_bytes, total * window_bytes)
                finally:
                    for tar in tars.values():
                        tar.close()
            files += sum(1 for c in counts if c)
            # A random draw can leave a shard empty: it was never opened, so it is not listed.
            shards = [{"file": f, "samples": int(c)} for f, c in zip(files_of, counts.tolist(), strict=True) if c]
            index["parts"][name] = {"windows": len(w), "shards": shards, "spec": w.spec.to_dict()}
        (Path(tmp) / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return DirExport(Path(out), "webdataset", {k: len(v) for k, v in parts.items()}, total, total * window_bytes,
                     written, files)


__all__ = ["SHARD_BYTES", "export_webdataset"]
