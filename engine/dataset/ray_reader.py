"""Read a LeRobot export (engine.dataset.lerobot) back as the engine's windows, with Ray Data, on one machine
or a cluster.

    import ray
    from engine.dataset.ray_reader import read_windows
    ray.init()                                   # or ray.init("ray://head:10001") on a cluster
    ds = read_windows("racer-lerobot", part="train")
    for batch in ds.iter_batches(batch_size=64, batch_format="numpy"):
        x, y = batch["x"], batch["y"]           # the same windows and labels engine.dataset yields

``ray.data.read_parquet`` reads data/*/*.parquet (spread over the cluster's workers: one read task per
file); the rows are grouped by episode, and each group turns its frames (PNG-decoded) and the export's
window table (meta/engine/windows-<part>.parquet) into rows {"window_index", "x", "y"}: x uint8
(W, H, W'[, C]), y as engine.dataset labels it. A group holds one episode's decoded frames, so a worker
needs memory for the longest session (one hour of 160x120 gray: 2 GB).

Needs ``engine[scale]`` (ray[data], pyarrow, pillow).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.lerobot import IMAGE_KEY
from engine.dataset.spec import DatasetError


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im)


def read_windows(export_dir: str | os.PathLike[str], part: str = "all") -> Any:
    """A ``ray.data.Dataset`` of the windows of ``part`` in the LeRobot export ``export_dir``, one row per
    window: {"window_index": int64, "x": uint8 (W, H, W'[, C]), "y": label}, and with axis targets "a":
    float32 (K,), the window's encoded axis targets (spec.json's "axes"). Rows come in no set order;
    window_index is the window's index in the exported engine.dataset Windows part."""
    try:
        import pyarrow.parquet as pq
        import ray
    except ImportError:
        raise DatasetError("reading an export with Ray needs ray[data] and pyarrow: pip install 'engine[scale]'") \
            from None
    root = Path(export_dir)
    spec_file, table_file = root / "meta" / "engine" / "spec.json", root / "meta" / "engine" / f"windows-{part}.parquet"
    if not spec_file.is_file():
        raise DatasetError(f"{root} is not a LeRobot export of engine-dataset (no meta/engine/spec.json)")
    spec = json.loads(spec_file.read_text())
    if not table_file.is_file():
        raise DatasetError(f"{root} has no part {part!r}; it has {', '.join(spec['parts'])}")
    table = pq.read_table(table_file)
    window, skip = int(spec["window"]), int(spec["skip"])
    w_ep = table.column("episode_index").to_numpy()
    w_end = table.column("frame_index").to_numpy()
    w_idx = table.column("window_index").to_numpy()
    label = table.column("label")
    multihot = spec["encoding"] == "multihot"
    w_y = (np.asarray(label.combine_chunks().flatten().to_numpy(zero_copy_only=False), np.uint8)
           .reshape(len(table), -1) if multihot else label.to_numpy().astype(np.int64))
    w_a = (np.asarray(table.column("axes").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
           .reshape(len(table), -1) if spec.get("axes") else None)
    back = (window - 1 - np.arange(window, dtype=np.int64)) * skip  # frame j of a window is end - back[j]

    def episode_windows(batch: Any) -> dict[str, np.ndarray]:
        fi = batch.column("frame_index").to_numpy()
        ep = int(batch.column("episode_index")[0].as_py())
        images = batch.column(IMAGE_KEY).combine_chunks().field("bytes").to_pylist()
        first = _decode(images[0])
        frames = np.empty((int(fi.max()) + 1, *first.shape), np.uint8)
        for f, png in zip(fi.tolist(), images, strict=True):
            frames[f] = _decode(png)
        sel = np.flatnonzero(w_ep == ep)
        x = frames[w_end[sel][:, None] - back[None, :]]
        out = {"window_index": w_idx[sel], "x": x, "y": w_y[sel]}
        if w_a is not None:
            out["a"] = w_a[sel]
        return out

    frames_ds = ray.data.read_parquet(str(root / "data"), columns=["episode_index", "frame_index", IMAGE_KEY])
    # One shuffle partition per episode at most: Ray's default (200) costs a task each on a small dataset.
    episodes = int(json.loads((root / "meta" / "info.json").read_text())["total_episodes"])
    grouped = frames_ds.groupby("episode_index", num_partitions=max(1, min(episodes, 200)))
    return grouped.map_groups(episode_windows, batch_format="pyarrow")


__all__ = ["read_windows"]
