"""Export windows to .npz or HDF5 files that describe themselves, plus the model sidecar skeleton.

The file layout is in engine.dataset.files; the writers in engine.dataset.writers; reading back in
engine.dataset.reader. The spec (see :mod:`engine.dataset.spec`) a file carries adds: format
"engine-dataset", store, layout, labels and scale (how to turn the uint8 pixels into the model input),
engine_version, created, and per part: windows, split assignment, balancing report and class counts.

HDF5 datasets are chunked (about 1 MiB per chunk, whole windows or frames) and compressed (gzip level 1
by default, readable by any HDF5 tool; "lzf" is faster but h5py-only). .npz members are written
uncompressed by default, like numpy.savez, and streamed: memory stays at one batch whatever the size.
Both files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.balance import axis_counts
from engine.dataset.files import FORMAT_NAME, Format, Store, output_paths
from engine.dataset.outdir import parts_of
from engine.dataset.spec import DatasetError, DatasetSpec
from engine.dataset.windows import Windows
from engine.dataset.writers import H5Writer, NpzWriter, Writer
from engine.sidecar import InputScale, SidecarError

Progress = Callable[[int, int], None]

BATCH_BYTES = 64 << 20  # frames gathered per write: bounds memory, amortises the kernel call


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote."""

    path: Path
    format: Format
    store: Store
    parts: dict[str, int]  # windows per part
    frame_bytes: int  # bytes of frames written (before compression)
    sidecar: Path | None
    spec: dict[str, Any] = field(repr=False)


def engine_version() -> str:
    """The installed engine's version, from its package metadata: reading it loads no compiled module (a
    training server without X can export). "unknown" when the package is not installed (a bare checkout)."""
    try:
        return metadata.version("engine")
    except metadata.PackageNotFoundError:
        return "unknown"


def file_spec(parts: Mapping[str, Windows], store: Store) -> dict[str, Any]:
    """The spec a file carries: the parts' shared spec, minus per-part fields, plus the file's own."""
    specs = {name: w.spec for name, w in parts.items()}
    first = next(iter(specs.values()))
    shared = first.with_(split=None, balance=None, unlisted=0).to_dict()
    for name, s in specs.items():
        if s.with_(split=None, balance=None, unlisted=0).to_dict() != shared:
            raise DatasetError(f"part {name!r} was cut differently from the others; export parts of one Windows")
    shared.pop("split")
    shared.pop("balance")
    shared["unlisted"] = first.unlisted
    window_shape = ", ".join(map(str, (first.window, *first.frame_shape)))
    scale = InputScale()
    out: dict[str, Any] = {
        "format": FORMAT_NAME,
        **shared,
        "store": store,
        "layout": (f"x: uint8 (N, {window_shape}), frame 0 the oldest" if store == "windows" else
                   "frames: uint8 (F, ...); window i = frames[ends[i] - (window-1-j)*skip], j = 0..window-1")
        # The sidecar's "frames" layout is (1, W, H, W', C): gray frames are stored without the C axis.
        + ("; gray: no channel axis, add one (x[..., None]) for a model input (W, H, W', 1)"
           if first.color == "gray" else ""),
        "labels": ("y: uint8 (N, A), 1 = action held at the label frame" if first.encoding == "multihot" else
                   "y: int64 (N,), class index into classes"),
        "scale": {"multiply": scale.multiply, "add": scale.add},
        **({"axis_targets": "axes: float32 (N, K), column k = axes[k] encoded (regression target, or bin "
                            "index); axis_values: float32 (N, K), the same in natural units"}
           if first.axes else {}),
        "split": None,
        "parts": {},
        "engine_version": engine_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for name, w in parts.items():
        s = specs[name]
        if s.split is not None and out["split"] is None:
            out["split"] = {k: v for k, v in s.split.items() if k not in ("part", "assignment")}
        out["parts"][name] = {
            "windows": len(w),
            "split": dict(s.split) if s.split is not None else None,
            "balance": dict(s.balance) if s.balance is not None else None,
            "class_counts": w.class_counts(),
            **({"axis_counts": axis_counts(s.axes, np.asarray(w.axis_targets))} if s.axes else {}),
        }
    return out


def _batches(w: Windows, batch: int) -> Iterator[np.ndarray]:
    for start in range(0, len(w), batch):
        yield np.arange(start, min(len(w), start + batch), dtype=np.int64)


def _compact(w: Windows) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """For store "frames": the runs (session, start, stop) of frames the windows use, in session order,
    and each window's last frame as an index into their concatenation."""
    sess, ends = w.index
    span = w.spec.span
    runs: list[tuple[int, int, int]] = []
    new_ends = np.empty(len(w), np.int64)
    base = 0
    for s in np.unique(sess).tolist():
        sel = np.flatnonzero(sess == s)
        length = int(ends[sel].max()) + 2
        # Frames used = union of [end-span+1, end] over the windows: a difference array, then runs.
        diff = np.zeros(length, np.int64)
        np.add.at(diff, ends[sel] - span + 1, 1)
        np.add.at(diff, ends[sel] + 1, -1)
        used = np.cumsum(diff)[:-1] > 0
        pos = np.cumsum(used) - 1  # position of each used frame among the used ones
        new_ends[sel] = base + pos[ends[sel]]
        edges = np.flatnonzero(np.diff(np.concatenate(([0], used.view(np.int8), [0]))))
        runs.extend((s, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))
        base += int(used.sum())
    return runs, new_ends


def export(
    data: Windows | Mapping[str, Windows],
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    store: Store = "windows",
    compression: str | None = "default",
    sidecar: bool | str | os.PathLike[str] = True,
    progress: Progress | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ExportResult:
    """Write ``data`` (one Windows, stored as part "all" or as its split part, or {part name: Windows},
    e.g. from :meth:`Windows.split`) to ``path`` in the layout of the module docs; return what was written.

    format: "npz" or "hdf5" (default: from the suffix). compression: "default" (hdf5: gzip level 1, npz:
    none), "gzip", "lzf" (hdf5 only) or "none". sidecar: write the model sidecar skeleton (m.json) to
    ``path`` with the suffix .json (True), to the given path, or not (False). progress: called with
    (bytes done, bytes total) after each batch of frames. Raises DatasetError (one line).
    """
    parts = parts_of(data)  # one Windows: named after its split part if it is one
    if store not in ("windows", "frames"):
        raise DatasetError(f"store must be windows or frames, not {store!r}")
    fmt, out, side = output_paths(path, format, sidecar)
    spec = file_spec(parts, store)
    try:  # built before any write: an invalid sidecar must not leave an export behind either
        model_sidecar = DatasetSpec.from_dict(spec).sidecar() if side is not None else None
    except SidecarError as e:
        raise DatasetError(str(e)) from None
    first = next(iter(parts.values())).spec
    frame_bytes = int(np.prod(first.frame_shape))
    plans: dict[str, Any] = {name: _compact(w) for name, w in parts.items()} if store == "frames" else {}
    if store == "windows":
        total = sum(len(w) * first.window * frame_bytes for w in parts.values())
    else:
        total = sum(int(sum(b - a for _, a, b in runs)) * frame_bytes for runs, _ in plans.values())
    tmp = out.with_name(f".{out.name}.partial{os.getpid()}")
    try:
        writer: Writer = (NpzWriter if fmt == "npz" else H5Writer)(tmp, compression)
    except OSError as e:
        raise DatasetError(f"cannot write {out}: {e.strerror or e}; check the directory") from None
    done = 0
    if progress is not None:
        progress(0, total)
    try:
        for name, w in parts.items():
            sess, ends = w.index
            if store == "windows":
                per = max(1, batch_bytes // (first.window * frame_bytes))
                buf = np.empty((min(per, len(w)), first.window, *first.frame_shape), np.uint8)
                put = writer.stream(f"{name}/x", (len(w), first.window, *first.frame_shape), np.dtype(np.uint8))
                for idx in _batches(w, per):
                    x, _ = w.gather(idx, out=buf[: len(idx)])
                    put(x)
                    done += x.nbytes
                    if progress is not None:
                        progress(done, total)
            else:
                runs, new_ends = plans[name]
                n_frames = sum(b - a for _, a, b in runs)
                put = writer.stream(f"{name}/frames", (n_frames, *first.frame_shape), np.dtype(np.uint8))
                per = max(1, batch_bytes // frame_bytes)
                for s, a, b in runs:
                    frames = w.sessions[s].frames
                    for lo in range(a, b, per):
                        block = frames[lo : min(b, lo + per)]
                        put(block)
                        done += block.nbytes
                        if progress is not None:
                            progress(done, total)
                writer.array(f"{name}/ends", new_ends)
            writer.array(f"{name}/y", np.asarray(w.labels))
            writer.array(f"{name}/source", np.asarray(sess, np.int64))
            writer.array(f"{name}/t", np.asarray(ends, np.int64))
            if first.axes:
                writer.array(f"{name}/axes", np.asarray(w.axis_targets))
                writer.array(f"{name}/axis_values", np.asarray(w.axis_values))
        writer.close(json.dumps(spec))
        # The sidecar before the rename: if it cannot be written (disk full since the probe), the export
        # is dropped too, and an older file at ``out`` stays as it was.
        if model_sidecar is not None and side is not None:
            model_sidecar.save(side)
        os.replace(tmp, out)
    except BaseException as e:
        writer.abort()
        tmp.unlink(missing_ok=True)
        if isinstance(e, SidecarError):
            raise DatasetError(str(e)) from None
        if isinstance(e, OSError):
            raise DatasetError(f"cannot write {out}: {e.strerror or e}; check the disk and the directory") from None
        raise
    return ExportResult(out, fmt, store, {n: len(w) for n, w in parts.items()}, total, side, spec)


__all__ = ["BATCH_BYTES", "ExportResult", "Progress", "engine_version", "export", "file_spec"]
