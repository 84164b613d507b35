"""Reading an export back, whichever its format and store (engine.dataset.files has the layout): its spec,
one part as (x, y), and a description for people (engine-dataset info).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset import kernels
from engine.dataset.files import FORMAT_NAME, Format
from engine.dataset.labels import combo_name
from engine.dataset.spec import DatasetError


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


def load_axes(path: str | os.PathLike[str], part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(targets, values) of one part's axes, as :attr:`Windows.axis_targets` and :attr:`Windows.axis_values`
    give them: float32 (N, K) each, K = len(spec["axes"]) ((N, 0) for a file without axes)."""
    with _Reader(path) as r:
        spec = r.spec
        if part not in spec.get("parts", {}):
            raise DatasetError(f"{r.path} has no part {part!r}; it holds {', '.join(spec.get('parts', {}))}")
        if not spec.get("axes"):
            n = int(spec["parts"][part]["windows"])
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.float32)
        return r.array(f"{part}/axes"), r.array(f"{part}/axis_values")


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
        for a in s.get("axes") or ():
            params = ", ".join(f"{k} {v:g}" for k, v in a.items() if k not in ("name", "encoding"))
            lines.append(f"axis      {a['name']}: {a['encoding']}" + (f" ({params})" if params else ""))
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
            for axis, hist in (p.get("axis_counts") or {}).items():
                lines.append(f"          {axis}: " + ", ".join(f"{k} {v}" for k, v in hist.items()))
        names = [src["name"] for src in s["sources"]]
        more = f", ... ({len(names)} in all)" if len(names) > 5 else ""
        lines.append(f"sources   {', '.join(names[:5])}{more}")
        return "\n".join(lines)


__all__ = ["describe", "load", "load_axes", "read_spec"]
