"""Export windows to .npz or HDF5 files that describe themselves, plus the model sidecar skeleton.

File layout (the same names in both formats; in .npz a name is a member ``<name>.npy``, in HDF5 a dataset):

    spec                  the dataset spec as JSON (npz: a 0-d unicode array; HDF5: root attribute "spec")
    <part>/y              labels: (N, A) uint8 multi-hot rows, or (N,) int64 indices into spec["classes"]
    <part>/source         (N,) int64: the window's session, an index into spec["sources"]
    <part>/t              (N,) int64: the window's last frame in that session
  store "windows" (default; what training code reads directly):
    <part>/x              (N, W, H, W'[, C]) uint8, frame 0 the oldest
  store "frames" (compact: each frame once, windows overlap):
    <part>/frames         (F, H, W'[, C]) uint8: every frame some window of the part uses, in session order
    <part>/ends           (N,) int64: window i = frames[ends[i] - (W-1-j)*skip for j in 0..W-1]

``<part>`` is train / val / test (or "all" for an unsplit export). The spec (see
:mod:`engine.dataset.spec`) adds: format "engine-dataset", store, layout, labels and scale (how to turn
the uint8 pixels into the model input), engine_version, created, and per part: windows, split
assignment, balancing report and class counts. :func:`load` reads either store back.

HDF5 datasets are chunked (about 1 MiB per chunk, whole windows or frames) and compressed (gzip level 1
by default, readable by any HDF5 tool; "lzf" is faster but h5py-only). .npz members are written
uncompressed by default, like numpy.savez, and streamed: memory stays at one batch whatever the size.
Both files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from engine.dataset import kernels
from engine.dataset.labels import combo_name
from engine.dataset.spec import DatasetError, DatasetSpec
from engine.dataset.windows import Windows
from engine.sidecar import InputScale, SidecarError

Format = Literal["npz", "hdf5"]
Store = Literal["windows", "frames"]
Progress = Callable[[int, int], None]

FORMAT_NAME = "engine-dataset"
SUFFIXES: dict[str, Format] = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}
BATCH_BYTES = 64 << 20  # frames gathered per write: bounds memory, amortises the kernel call
CHUNK_BYTES = 1 << 20  # target HDF5 chunk size


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


def format_for(path: str | os.PathLike[str], format: str | None = None) -> Format:
    """The format to write: ``format`` if given, else from the suffix (.npz, .h5/.hdf5). A given format
    that the suffix contradicts (hdf5 into x.npz) is refused rather than guessed: whichever one won, a
    file named like one format holding the other would mislead every later reader."""
    suffix = Path(path).suffix.lower()
    if format is not None:
        if format not in ("npz", "hdf5"):
            raise DatasetError(f"format must be npz or hdf5, not {format!r}")
        if suffix in SUFFIXES and SUFFIXES[suffix] != format:
            right = ".npz" if format == "npz" else ".h5"
            raise DatasetError(f"{str(path)!r} has the suffix {suffix} but the format is {format}; "
                               f"name it {Path(path).stem}{right}, or drop --format")
        return format  # type: ignore[return-value]
    if suffix not in SUFFIXES:
        raise DatasetError(
            f"cannot tell the format of {str(path)!r} from its suffix; use .npz or .h5, or give --format"
        )
    return SUFFIXES[suffix]


def output_paths(
    path: str | os.PathLike[str], format: str | None = None, sidecar: bool | str | os.PathLike[str] = True
) -> tuple[Format, Path, Path | None]:
    """(format, export path, sidecar path or None) that :func:`export` writes, checked before anything
    is written: the format agrees with the suffix, the sidecar is not the export itself, and both
    directories take a new file. So a bad path fails first and no export is left without its sidecar.
    Raises DatasetError (one line)."""
    out = Path(path)
    _check_target(out, "")
    fmt = format_for(out, format)
    side = None if sidecar is False else out.with_suffix(".json") if sidecar is True else Path(sidecar)
    if side is not None:
        if _same_file(side, out):
            # By default the sidecar is the export's name with .json: only an export named .json meets it.
            right = ".npz" if fmt == "npz" else ".h5"
            rename = f"name the export {out.stem}{right}, or " if sidecar is True else ""
            raise DatasetError(f"the model sidecar would overwrite the export {out}; {rename}give --sidecar "
                               "another path")
        _check_target(side, "model sidecar ")
    return fmt, out, side


def _same_file(a: Path, b: Path) -> bool:
    # resolve() sees through symlinks and "..", samefile through hard links to an existing file.
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _check_target(path: Path, what: str) -> None:
    """Refuse a path that cannot take a new file: a directory, a missing or unwritable parent. The parent
    is probed by creating a file in it, since os.access ignores read-only mounts, ACLs and (as root)
    permissions."""
    if path.is_dir():
        raise DatasetError(f"cannot write {what}{path}: it is a directory; give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise DatasetError(f"cannot write {what}{path}: directory {parent} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe", dir=parent)
    except OSError as e:
        raise DatasetError(f"cannot write {what}{path}: {e.strerror or e}; check the directory") from None
    os.close(fd)
    os.unlink(probe)


def file_spec(parts: Mapping[str, Windows], store: Store) -> dict[str, Any]:
    """The spec a file carries: the parts' shared spec, minus per-part fields, plus the file's own."""
    from engine import __version__

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
        "split": None,
        "parts": {},
        "engine_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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


class _NpzWriter:
    """A .npz (zip of .npy members) written member by member; a streamed member stays open until the next."""

    def __init__(self, path: Path, compression: str | None) -> None:
        if compression not in (None, "none", "default", "gzip"):
            raise DatasetError(f"npz files support compression gzip or none, not {compression!r}")
        mode = zipfile.ZIP_DEFLATED if compression == "gzip" else zipfile.ZIP_STORED
        self.zf = zipfile.ZipFile(path, "w", compression=mode, allowZip64=True)
        self.open: IO[bytes] | None = None

    def array(self, name: str, a: np.ndarray) -> None:
        self._end()
        with self.zf.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asarray(a), allow_pickle=False)

    def stream(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Callable[[np.ndarray], None]:
        self._end()
        f = self.zf.open(name + ".npy", "w", force_zip64=True)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        self.open = f

        def write(block: np.ndarray) -> None:
            f.write(np.ascontiguousarray(block).reshape(-1).data)

        return write

    def _end(self) -> None:
        if self.open is not None:
            self.open.close()
            self.open = None

    def close(self, spec_json: str) -> None:
        self._end()
        self.array("spec", np.array(spec_json))
        self.zf.close()

    def abort(self) -> None:
        self._end()
        self.zf.close()


class _H5Writer:
    """An HDF5 file with chunked, compressed datasets."""

    def __init__(self, path: Path, compression: str | None) -> None:
        import h5py

        if compression in ("default", "gzip"):
            self.filters: dict[str, Any] = {"compression": "gzip", "compression_opts": 1}
        elif compression == "lzf":
            self.filters = {"compression": "lzf"}
        elif compression in (None, "none"):
            self.filters = {}
        else:
            raise DatasetError(f"HDF5 compression must be gzip, lzf or none, not {compression!r}")
        self.f = h5py.File(path, "w")

    def array(self, name: str, a: np.ndarray) -> None:
        self.f.create_dataset(name, data=a, **(self.filters if a.size else {}))

    def stream(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Callable[[np.ndarray], None]:
        row = int(np.prod(shape[1:])) * dtype.itemsize
        chunk = (max(1, min(shape[0], CHUNK_BYTES // max(row, 1))), *shape[1:])
        ds = self.f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunk if shape[0] else None,
                                   **(self.filters if shape[0] else {}))
        at = [0]

        def write(block: np.ndarray) -> None:
            ds[at[0] : at[0] + len(block)] = block
            at[0] += len(block)

        return write

    def close(self, spec_json: str) -> None:
        self.f.attrs["format"] = FORMAT_NAME
        self.f.attrs["spec"] = spec_json
        self.f.close()

    def abort(self) -> None:
        self.f.close()


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
    if isinstance(data, Windows):  # one part: named after its split part if it is one
        parts = {str(data.spec.split["part"]) if data.spec.split else "all": data}
    else:
        parts = dict(data)
    if not parts:
        raise DatasetError("nothing to export: no parts given")
    for name, w in parts.items():
        if not len(w):
            raise DatasetError(f"part {name!r} has no windows; nothing to export")
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
        writer: _NpzWriter | _H5Writer = (_NpzWriter if fmt == "npz" else _H5Writer)(tmp, compression)
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


# ---- reading --------------------------------------------------------------------------------------------
def _kind(path: Path) -> Format:
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror}") from None
    if magic.startswith(b"PK"):
        return "npz"
    if magic == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    raise DatasetError(f"{path} is neither an .npz nor an HDF5 file")


class _Reader:
    """Arrays and spec of an exported file, whichever the format."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.kind = _kind(self.path)
        try:
            if self.kind == "npz":
                self._npz = np.load(self.path, allow_pickle=False)
                text = str(self._npz["spec"][()])
            else:
                import h5py

                self._h5 = h5py.File(self.path, "r")
                text = self._h5.attrs["spec"]
            self.spec: dict[str, Any] = json.loads(text)
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
            self.close()
            raise DatasetError(f"{self.path} is not an engine-dataset export ({type(e).__name__}: {e})") from None
        if self.spec.get("format") != FORMAT_NAME:
            self.close()
            raise DatasetError(f"{self.path} is not an engine-dataset export (format {self.spec.get('format')!r})")

    def array(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self._npz[name] if self.kind == "npz" else self._h5[name][()])
        except KeyError:
            raise DatasetError(f"{self.path} has no array {name!r}; it holds parts "
                               f"{', '.join(self.spec.get('parts', {}))}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of an array without reading it (an .npz member's .npy header only)."""
        if self.kind == "hdf5":
            return tuple(self._h5[name].shape)
        with self._npz.zip.open(name + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
            return tuple(read(f)[0])

    def close(self) -> None:
        if getattr(self, "_npz", None) is not None:
            self._npz.close()
        if getattr(self, "_h5", None) is not None:
            self._h5.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec an exported file carries (see the module docs)."""
    with _Reader(path) as r:
        return r.spec


def load(
    path: str | os.PathLike[str], part: str = "train", float32: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one part of an exported file, as :meth:`Windows.gather` gives them: x (N, W, H, W'[, C])
    uint8 (or float32, pixel / 255) with windows rebuilt from a "frames" store."""
    with _Reader(path) as r:
        spec = r.spec
        if part not in spec.get("parts", {}):
            raise DatasetError(f"{r.path} has no part {part!r}; it holds {', '.join(spec.get('parts', {}))}")
        y = r.array(f"{part}/y")
        if spec["store"] == "windows":
            x = r.array(f"{part}/x")
            return (kernels.scale_lut()[x] if float32 else x), y
        frames, ends = r.array(f"{part}/frames"), r.array(f"{part}/ends")
        out = np.empty((len(ends), spec["window"], *spec["frame_shape"]), np.float32 if float32 else np.uint8)
        kernels.gather(kernels.FrameSource([frames]), np.zeros(len(ends), np.int64), ends, spec["window"],
                       spec["skip"], out)
        return out, y


def describe(path: str | os.PathLike[str]) -> str:
    """A few lines for people: what the file holds and how it was cut (engine-dataset info)."""
    with _Reader(path) as r:
        s = r.spec
        size = r.path.stat().st_size
        shape = s["frame_shape"]
        lines = [
            f"file      {r.path} ({r.kind}, store {s['store']}, {size / 1e6:.1f} MB)",
            f"windows   {s['window']} frames, skip {s['skip']} (span {s['span']}), stride {s['stride']}, "
            f"label offset {s['offset']}; a step over {s['max_gap']:g} frame periods is a gap",
            f"frames    {shape[1]}x{shape[0]} {s['color']} at {s['fps']:g} fps",
            f"actions   {', '.join(s['actions'])}",
        ]
        if s["encoding"] == "combo":
            names = [combo_name(c) for c in s["classes"]]
            extra = f"; {s['unlisted']} windows with other combinations dropped" if s.get("unlisted") else ""
            lines.append(f"labels    combo, {len(names)} classes: {', '.join(names)}{extra}")
        else:
            lines.append("labels    multihot, one column per action")
        split = s.get("split")
        if split:
            fr = ",".join(f"{f:g}" for f in split["fractions"])
            lines.append(f"split     by {split['by']} {fr} (seed {split['seed']})")
        for name, p in s["parts"].items():
            key = f"{name}/x" if s["store"] == "windows" else f"{name}/frames"
            line = f"  {name:<6}  {p['windows']} windows, {key} {r.shape(key)}, y {r.shape(name + '/y')}"
            bal = p.get("balance")
            if bal:
                line += (f"; balanced ({bal['mode']}) {sum(bal['before'].values())} -> "
                         f"{sum(bal['after'].values())}")
            lines.append(line)
            counts = ", ".join(f"{k} {v}" for k, v in p["class_counts"].items())
            lines.append(f"          classes: {counts}")
        names = [src["name"] for src in s["sources"]]
        more = f", ... ({len(names)} in all)" if len(names) > 5 else ""
        lines.append(f"sources   {', '.join(names[:5])}{more}")
        return "\n".join(lines)


__all__ = ["FORMAT_NAME", "ExportResult", "Format", "Progress", "Store", "describe", "export", "format_for",
           "load", "output_paths", "read_spec"]
