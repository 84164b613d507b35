"""The export file format: what is in it, which suffix names which format, and where one may be written.

File layout (the same names in both formats; in .npz a name is a member ``<name>.npy``, in HDF5 a dataset):

    spec                  the dataset spec as JSON (npz: a 0-d unicode array; HDF5: root attribute "spec")
    <part>/y              labels: (N, A) uint8 multi-hot rows, or (N,) int64 indices into spec["classes"]
    <part>/source         (N,) int64: the window's session, an index into spec["sources"]
    <part>/t              (N,) int64: the window's last frame in that session
  with axis targets (spec["axes"], engine.axes_spec; :func:`engine.dataset.load_axes` reads them):
    <part>/axes           (N, K) float32: each axis encoded (regression target, or bin index)
    <part>/axis_values    (N, K) float32: the same, recorded values in natural units
  store "windows" (default; what training code reads directly):
    <part>/x              (N, W, H, W'[, C]) uint8, frame 0 the oldest
  store "frames" (compact: each frame once, windows overlap):
    <part>/frames         (F, H, W'[, C]) uint8: every frame some window of the part uses, in session order
    <part>/ends           (N,) int64: window i = frames[ends[i] - (W-1-j)*skip for j in 0..W-1]

``<part>`` is train / val / test (or "all" for an unsplit export). The spec (see
:mod:`engine.dataset.spec`) adds: format "engine-dataset", store, layout, labels and scale (how to turn
the uint8 pixels into the model input), engine_version, created, and per part: windows, split
assignment, balancing report and class counts (and with axes, axis_counts: a histogram per axis).
:func:`load` reads either store back.

HDF5 datasets are chunked (about 1 MiB per chunk, whole windows or frames) and compressed (gzip level 1
by default, readable by any HDF5 tool; "lzf" is faster but h5py-only). .npz members are written
uncompressed by default, like numpy.savez, and streamed: memory stays at one batch whatever the size.
Both files are written under a temporary name and renamed when complete.

:func:`output_paths` checks the paths of an export and its model sidecar before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from engine.dataset.spec import DatasetError

Format = Literal["npz", "hdf5"]
Store = Literal["windows", "frames"]

FORMAT_NAME = "engine-dataset"
SUFFIXES: dict[str, Format] = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}


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


__all__ = ["FORMAT_NAME", "SUFFIXES", "Format", "Store", "format_for", "output_paths"]
