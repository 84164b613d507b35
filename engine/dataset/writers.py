"""The two export writers (engine.dataset.files has the layout): .npz and HDF5, each written array by array,
a large array streamed in blocks so memory stays at one block whatever the size.

Both take the path of a temporary file; engine.dataset.export renames it when complete.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.dataset.files import FORMAT_NAME
from engine.dataset.spec import DatasetError

CHUNK_BYTES = 1 << 20  # target HDF5 chunk size


class NpzWriter:
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


class H5Writer:
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


Writer = NpzWriter | H5Writer

__all__ = ["CHUNK_BYTES", "H5Writer", "NpzWriter", "Writer"]
