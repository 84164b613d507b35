"""What the directory exports (LeRobot, WebDataset) share: an atomic output directory, the parts to export,
and a small PNG encoder.

Atomic: everything is written under ``<DIR>.partial`` and renamed to ``DIR`` at the end, so ``DIR`` either
does not exist or is complete; an interrupted export leaves only the .partial directory, which the next
export to the same DIR removes first. An existing DIR is refused (never merged into or replaced).
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.dataset.spec import DatasetError
from engine.dataset.windows import Windows

Progress = Callable[[int, int], None]
BATCH_BYTES = 32 << 20  # frames gathered per step: bounds memory whatever the dataset size


def parts_of(data: Windows | Mapping[str, Windows]) -> dict[str, Windows]:
    """{part name: Windows}: one Windows is part "all" (or its split part's name)."""
    if isinstance(data, Windows):
        return {str(data.spec.split["part"]) if data.spec.split else "all": data}
    parts = dict(data)
    if not parts:
        raise DatasetError("nothing to export: no parts given")
    for name, w in parts.items():
        if not len(w):
            raise DatasetError(f"part {name!r} has no windows; nothing to export")
    return parts


def check_out_dir(out: str | os.PathLike[str]) -> Path:
    """The output directory, checked before anything is written: it must not exist yet."""
    path = Path(out)
    if path.exists():
        raise DatasetError(f"{path} already exists; remove it or pick another --out (a directory export never "
                           "merges into an existing one)")
    if not path.parent.is_dir():
        raise DatasetError(f"the directory of {path} does not exist; create {path.parent} first")
    return path


@contextmanager
def atomic_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield ``<out>.partial`` to write into; rename it to ``out`` when the block ends without an error,
    else remove it."""
    path = check_out_dir(out)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # what an interrupted export left
    try:
        tmp.mkdir()
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise DatasetError(f"cannot write {path}: {e.strerror or e}; check the disk and the directory") from None
        raise


def png(frame: np.ndarray, level: int = 1) -> bytes:
    """A PNG (8-bit gray or RGB) of ``frame`` (H, W) or (H, W, 3) uint8, lossless. Each row is stored with
    the Up filter (its difference from the row above), which game frames compress far better under than
    raw rows, and is one vectorised subtraction here."""
    a = np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = a.shape[:2]
    color = 0 if a.ndim == 2 else 2
    rows = a.reshape(h, -1)
    up = np.empty((h, rows.shape[1] + 1), np.uint8)
    up[:, 0] = 2  # filter type Up
    up[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=up[1:, 1:])  # uint8 arithmetic wraps mod 256, as PNG wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(up.tobytes(), level))
            + chunk(b"IEND", b""))


def window_batches(w: Windows, order: np.ndarray | None = None, batch_bytes: int = BATCH_BYTES
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(window indices, x, y) per batch of about ``batch_bytes`` of frames, in ``order`` (default: in
    order). x is reused between batches: copy what must outlive the step."""
    s = w.spec
    per = max(1, batch_bytes // (s.window * int(np.prod(s.frame_shape))))
    idx_all = np.arange(len(w), dtype=np.int64) if order is None else order
    buf = np.empty((min(per, len(w)), s.window, *s.frame_shape), np.uint8)
    for start in range(0, len(idx_all), per):
        idx = idx_all[start : start + per]
        x, y = w.gather(idx, out=buf[: len(idx)])
        yield idx, x, y


def describe_dir(path: str | os.PathLike[str]) -> str:
    """A few lines about a directory export (LeRobot or WebDataset), from its metadata files."""
    import json

    root = Path(path)
    info, index = root / "meta" / "info.json", root / "index.json"
    if info.is_file():
        i = json.loads(info.read_text())
        feats = i.get("features", {})
        image = next((k for k, f in feats.items() if f.get("dtype") in ("image", "video")), None)
        lines = [f"{root}: LeRobot dataset {i.get('codebase_version')}, {i.get('total_episodes')} episodes, "
                 f"{i.get('total_frames')} frames at {i.get('fps')} fps, {i.get('total_tasks')} task(s)",
                 f"  splits: {', '.join(f'{k} {v}' for k, v in i.get('splits', {}).items())}"]
        if image is not None:
            lines.append(f"  {image}: {feats[image]['dtype']} {feats[image]['shape']}")
        if "action" in feats:
            lines.append(f"  action: float32 {', '.join(feats['action'].get('names') or [])}")
        return "\n".join(lines)
    if index.is_file():
        x = json.loads(index.read_text())
        lines = [f"{root}: WebDataset shards"]
        for name, part in x.get("parts", {}).items():
            lines.append(f"  {name}: {part['windows']} windows in {len(part['shards'])} shard(s), "
                         f"{part['shards'][0]['file'] if part['shards'] else '-'} ...")
        return "\n".join(lines)
    raise DatasetError(f"{root} is a directory but not a LeRobot or WebDataset export of engine-dataset")


__all__ = ["BATCH_BYTES", "Progress", "atomic_dir", "check_out_dir", "describe_dir", "parts_of", "png",
           "window_batches"]
