""".npy headers of exactly HEADER_BYTES whose first dimension is rewritten in place as a session grows."""

from __future__ import annotations

import io
import math
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.session.layout import StorageError

HEADER_BYTES = 256  # every .npy of a session: data starts here
_T_WIDTH = 20  # digits reserved for the first dimension: any int64 fits
_NPY_MAGIC = b"\x93NUMPY\x01\x00"


# ---------------------------------------------------------------------------------------------------
# .npy headers with an in-place rewritable count


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header of exactly HEADER_BYTES; shape[0] right-aligned in a fixed width."""
    rest = "".join(f", {d}" for d in shape[1:]) if len(shape) > 1 else ","
    text = (
        f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, "
        f"'shape': ({shape[0]:>{_T_WIDTH}}{rest}), }}"
    )
    pad = HEADER_BYTES - len(_NPY_MAGIC) - 2 - len(text) - 1
    if pad < 0:
        raise ValueError(f"an .npy header for {dtype} {shape} does not fit in {HEADER_BYTES} bytes")
    return _NPY_MAGIC + struct.pack("<H", HEADER_BYTES - 10) + (text + " " * pad + "\n").encode("latin1")


@dataclass(frozen=True)
class _NpyInfo:
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int  # where the data starts
    size: int  # file size in bytes

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape[1:])

    @property
    def capacity(self) -> int:
        """Whole rows the file holds past its header (more than shape[0] while preallocated)."""
        if not self.row_bytes:
            return sys.maxsize  # zero-width rows (a session without actions): any count fits
        return (self.size - self.offset) // self.row_bytes


def _read_npy_info(path: Path) -> _NpyInfo:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror}; the session is incomplete or damaged") from e
    fp = io.BytesIO(head)
    try:
        major, _ = np.lib.format.read_magic(fp)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fp)
    except ValueError as e:
        raise StorageError(f"{path} is not a valid .npy file ({e}); the session is damaged") from e
    if fortran:
        raise StorageError(f"{path} is in Fortran order; sessions store C-ordered arrays")
    return _NpyInfo(dtype, tuple(shape), fp.tell(), size)


def _npy_memmap(path: Path, info: _NpyInfo, n: int) -> np.ndarray:
    """Read-only view of the first n rows."""
    if info.offset + n * info.row_bytes > info.size:
        raise StorageError(f"{path} is shorter than its {n} rows; the session is damaged")
    return np.memmap(path, dtype=info.dtype, mode="r", offset=info.offset, shape=(n, *info.shape[1:]))
