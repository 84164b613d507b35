"""The batch gather for sessions whose frames are not one memory map (compacted sessions).

:func:`frame_source` gives the Numba :class:`~engine.dataset.kernels.FrameSource` when every session's
frames are an ndarray (raw sessions: the zero-copy path, unchanged), else a :class:`ChunkedSource`.
:func:`gather` takes either and fills the same output layout as :func:`engine.dataset.kernels.gather`.

A ChunkedSource gathers per batch: it lists the (session, frame) pairs the batch's windows need, groups
them by compressed chunk, and decompresses each chunk once (through the session's chunk cache), so a
shuffled batch touching a chunk from many windows pays for that chunk once. Raw sessions in a mixed set
are read straight from their maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit

from engine.dataset import kernels
from engine.session import compressed as _compressed


@njit(cache=True)
def _scatter_u8(src, rows, dst, out):
    for k in range(rows.shape[0]):
        s, d = src[rows[k]], out[dst[k]]
        for b in range(d.shape[0]):
            d[b] = s[b]


@njit(cache=True)
def _scatter_f32(src, rows, dst, lut, out):
    for k in range(rows.shape[0]):
        s, d = src[rows[k]], out[dst[k]]
        for b in range(d.shape[0]):
            d[b] = lut[s[b]]


def _scatter(src: np.ndarray, rows: np.ndarray, dst: np.ndarray, out: np.ndarray, lut: np.ndarray | None) -> None:
    """out[dst[k]] = src[rows[k]] (lut applied for float32 out), one pass, no temporary."""
    r, d = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(dst, np.int64)
    if lut is None:
        _scatter_u8(src, r, d, out)
    else:
        _scatter_f32(src, r, d, lut, out)


_compressed._SCATTER = _scatter  # CompressedFrames.take_into copies through it from now on


class ChunkedSource:
    """Frames of several sessions, some of them compressed (anything with ``take_into``)."""

    def __init__(self, frames: Sequence[Any]) -> None:
        if not frames:
            raise ValueError("a frame source needs at least one frames array")
        shapes = {tuple(f.shape[1:]) for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"all sessions must share one frame shape, got {sorted(shapes)}")
        self.frame_shape: tuple[int, ...] = shapes.pop()
        self.frame_bytes = math.prod(self.frame_shape)
        self.frames = list(frames)
        self.lengths = np.array([len(f) for f in frames], np.int64)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])


Source = kernels.FrameSource | ChunkedSource


def frame_source(frames: Sequence[Any]) -> Source:
    """The Numba source when every item is an ndarray (raw sessions), else a ChunkedSource."""
    if all(isinstance(f, np.ndarray) for f in frames):
        return kernels.FrameSource(frames)
    return ChunkedSource(frames)


def gather(
    source: Source, sess: np.ndarray, ends: np.ndarray, window: int, skip: int, out: np.ndarray, *,
    lut: np.ndarray | None = None, parallel: bool | None = None,
) -> np.ndarray:
    """As :func:`engine.dataset.kernels.gather`, for either kind of source."""
    if isinstance(source, kernels.FrameSource):
        return kernels.gather(source, sess, ends, window, skip, out, lut=lut, parallel=parallel)
    s, e = kernels.check_gather(source, sess, ends, window, skip, out)
    n = e.shape[0]
    if not n:
        return out
    table = None
    if out.dtype == np.float32:
        table = kernels.scale_lut() if lut is None else np.ascontiguousarray(lut, dtype=np.float32)
        if table.shape != (256,):
            raise ValueError(f"lut must have 256 entries, got {table.shape}")
    # Item p = (window i, position j) reads frame ends[i] - (window-1-j)*skip of session sess[i].
    frame = (e[:, None] - (window - 1 - np.arange(window, dtype=np.int64))[None, :] * skip).ravel()
    owner = np.repeat(s, window)
    flat = out.reshape(n * window, source.frame_bytes)
    order = np.argsort(owner, kind="stable")
    cuts = np.flatnonzero(np.diff(owner[order])) + 1
    for group in np.split(order, cuts):
        frames = source.frames[int(owner[group[0]])]
        if isinstance(frames, np.ndarray):
            rows = frames.reshape(frames.shape[0], source.frame_bytes)[frame[group]]
            flat[group] = rows if table is None else table[rows]
        else:
            frames.take_into(frame[group], flat, table, at=group)
    return out


__all__ = ["ChunkedSource", "Source", "frame_source", "gather"]
