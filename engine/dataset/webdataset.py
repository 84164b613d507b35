"""Export windows as WebDataset tar shards, for streaming trainers (webdataset, torchdata, Ray, MosaicML...).

    DIR/<part>-000000.tar, DIR/<part>-000001.tar, ...     shards of about ``shard_bytes`` each
    DIR/index.json                                        parts, their shards and sample counts, the spec

One sample per window, its files sharing the key ``<part>-<window index, 9 digits>`` (WebDataset groups
a sample's files by the name before the first dot, and they are contiguous in the tar)::

    <key>.x.npy    the window's frames, uint8 (W, H, W'[, C]), frame 0 the oldest (numpy .npy)
    <key>.y.npy    its label: uint8 (A,) multi-hot, or int64 () class index
    <key>.json     {"session", "end", "part", "window"}: where it came from

Windows are written in a seeded random order (``shuffle``): a streaming reader cannot shuffle globally,
only within a buffer, so the shards themselves must be mixed. A shard is closed when it passes
``shard_bytes``, so each holds a whole number of samples. Memory: one gathered batch (engine.dataset
.outdir.BATCH_BYTES) whatever the dataset size; the directory is written under DIR.partial and renamed
at the end.

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


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(a, order="C", copy=None), allow_pickle=False)  # keeps 0-d 0-d
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


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
    with atomic_dir(out) as tmp:
        for name, w in parts.items():
            order = (np.random.default_rng(seed).permutation(len(w)) if shuffle
                     else np.arange(len(w), dtype=np.int64))
            sess, ends = w.index
            names = [s.name for s in w.sessions]
            shards: list[dict[str, Any]] = []
            tar: tarfile.TarFile | None = None
            shard_size = 0
            try:
                for idx, x, y in window_batches(w, order):
                    for k, i in enumerate(idx.tolist()):
                        if tar is None or shard_size >= shard_bytes:
                            if tar is not None:
                                tar.close()
                            fname = f"{name}-{len(shards):06d}.tar"
                            # Closed when the next shard starts, and in the finally below.
                            tar = tarfile.open(tmp / fname, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
                            shards.append({"file": fname, "samples": 0})
                            files += 1
                            shard_size = 0
                        key = f"{name}-{i:09d}"
                        meta = {"session": names[int(sess[i])], "end": int(ends[i]), "part": name, "window": i}
                        xb, yb = _npy(x[k]), _npy(np.asarray(y[k]))
                        jb = json.dumps(meta).encode()
                        _add(tar, f"{key}.x.npy", xb, now)
                        _add(tar, f"{key}.y.npy", yb, now)
                        _add(tar, f"{key}.json", jb, now)
                        size = len(xb) + len(yb) + len(jb) + 3 * 1024  # tar headers and padding, about
                        shard_size += size
                        written += size
                        shards[-1]["samples"] += 1
                    done += len(idx)
                    if progress is not None:
                        progress(done * window_bytes, total * window_bytes)
            finally:
                if tar is not None:
                    tar.close()
            index["parts"][name] = {"windows": len(w), "shards": shards, "spec": w.spec.to_dict()}
        (Path(tmp) / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return DirExport(Path(out), "webdataset", {k: len(v) for k, v in parts.items()}, total, total * window_bytes,
                     written, files)


__all__ = ["SHARD_BYTES", "export_webdataset"]
