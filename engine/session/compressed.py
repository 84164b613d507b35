"""Compressed session frames: frames.b2nd (a blosc2 NDArray, zstd) in place of frames.npy.

Why blosc2 and not zarr v3: both wrap the same zstd and give the same ratio on our frames, but blosc2
does it in one file with a C call per chunk, while zarr v3 goes through its asyncio store for every read
and writes a file per chunk. bench/test_storage_scale.py measures both in one run: blosc2 compressed
5-11x and decompressed 2.5-28x more megabytes per CPU second than zarr, at the same ratio, on the demo
recording and on game-like frames. Level 1 because higher levels cost several times the CPU for a few
percent of size.

Layout: ``frames.b2nd`` holds (T, H, W[, 3]) uint8 in chunks of ``chunk_frames`` whole frames, each
chunk split in blocks of whole frames, so a decompressed chunk is the C-order bytes of its frames (the
last chunk is padded to a full chunk by blosc2; the padding is never read). meta.json gains
``"frames_file": "frames.b2nd"`` and ``"compression": {...}`` (codec, level, chunk_frames, raw and
compressed bytes). timestamps.npy, actions.npy, events.npy and the axis files stay raw .npy (they are
small).

Which file a reader uses: frames.npy when it exists, else frames.b2nd. So :func:`compact` is atomic:
it writes frames.b2nd.partial, verifies every chunk against the raw frames, renames it to frames.b2nd,
updates meta.json, and only then removes frames.npy; a crash at any step leaves a session that reads
the same frames (the raw ones until the last step), and the next compact finishes or restarts the job.

While recording: ``SessionWriter.create(..., compress=True)`` hands each full chunk of frames.npy to a
:class:`ChunkCompressor` on the writer thread (the capture thread never waits for it), and close()
verifies the copy and swaps it in as compact does. frames.npy is written as always until then, so a
crash loses what a raw recording loses (at most the last second) and the next open recovers the raw
session; the partial copy is discarded by the next compact.

Reading: :class:`CompressedFrames` is the array-like that :attr:`engine.session.Session.frames` is for a
compressed session: len, shape, dtype, ``frames[i]``, ``frames[a:b]``, ``frames[index_array]``,
iteration and ``np.asarray``. Decompressed chunks are kept in a small LRU cache (``cache_bytes``), so
reading the frames of a chunk in turn decompresses it once.

Just over 400 lines: compact, the recording-time compressor and the reader share the layout above and
its checks; split, each would restate it.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.session import fileio
from engine.session.layout import FRAMES, META, StorageError, _read_meta

COMPRESSED_FRAMES = "frames.b2nd"
PARTIAL_SUFFIX = ".partial"
CODEC = "zstd"
CLEVEL = 1
# Frames per chunk ~ this many raw bytes: the unit a random read decompresses. zstd works per block, so
# the chunk size hardly changes the ratio (demo recording: 128x at 256 KB, 131x at 1 MB, 132x at 4 MB),
# while a shuffled batch decompresses a chunk per window it touches: small chunks keep that near the
# bytes gathered (bench/test_storage_scale.py: 0.3x the raw gather at 1 MB, 0.5x at 256 KB).
CHUNK_BYTES = 256 << 10
BLOCK_BYTES = 256 << 10  # frames per block (blosc2's unit of parallelism inside a chunk)
CACHE_BYTES = 64 << 20  # decompressed chunks kept per open session


def _blosc2() -> Any:
    try:
        import blosc2
    except ImportError:  # pragma: no cover - blosc2 is a core dependency
        raise StorageError("compressed sessions need blosc2; pip install blosc2") from None
    return blosc2


def chunk_layout(frame_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """(frames per chunk, frames per block) for frames of ``frame_bytes``: blocks of whole frames of about
    BLOCK_BYTES, chunks a whole number of blocks of about ``chunk_bytes``."""
    block = max(1, BLOCK_BYTES // max(frame_bytes, 1))
    chunk = max(block, (chunk_bytes // max(frame_bytes, 1)) // block * block)
    return chunk, block


def is_compressed(path: str | os.PathLike[str]) -> bool:
    """Whether the session at ``path`` reads its frames from frames.b2nd (no frames.npy beside it)."""
    p = Path(path)
    return not (p / FRAMES).exists() and (p / COMPRESSED_FRAMES).exists()


class CompressedFrames:
    """Read-only (T, *frame_shape) uint8 frames of a compressed session, decompressed a chunk at a time.

    Thread-safe (one lock around the cache). ``chunk(c)`` returns chunk c as a read-only (k, *frame_shape)
    array from the cache; indexing copies out of it. Not a numpy array: code that needs one calls
    ``np.asarray(frames)`` (the whole session, decompressed) or slices what it needs.
    """

    def __init__(self, path: str | os.PathLike[str], cache_bytes: int = CACHE_BYTES) -> None:
        self.path = Path(path)
        self._array = self._open()
        self._pid = os.getpid()
        shape = tuple(int(d) for d in self._array.shape)
        if self._array.dtype != np.uint8 or len(shape) < 2:
            raise StorageError(f"{self.path} holds {self._array.dtype} {shape}, not uint8 frames; it is damaged")
        self.shape: tuple[int, ...] = shape
        self.frame_shape: tuple[int, ...] = shape[1:]
        self.frame_bytes = math.prod(self.frame_shape)
        self.chunk_frames = int(self._array.chunks[0])
        if tuple(self._array.chunks[1:]) != self.frame_shape or tuple(self._array.blocks[1:]) != self.frame_shape:
            raise StorageError(f"{self.path} is not chunked by whole frames; recompact the session")
        self.nchunks = -(-shape[0] // self.chunk_frames) if shape[0] else 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_chunks = max(1, cache_bytes // max(self.frame_bytes * self.chunk_frames, 1))
        self._lock = threading.Lock()
        self.decompressed_chunks = 0  # chunks decompressed so far (for tests and benchmarks)

    def _open(self) -> Any:
        try:
            return _blosc2().open(str(self.path), mode="r", dparams={"nthreads": 1})
        except StorageError:
            raise
        except Exception as e:  # blosc2 raises plain RuntimeError/ValueError for a bad file
            raise StorageError(f"cannot read {self.path}: {e}; the compressed frames are damaged") from e

    # ---- numpy-like surface -------------------------------------------------------------------------
    dtype = np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape)

    @property
    def compressed_bytes(self) -> int:
        return int(self._array.schunk.cbytes)

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        for c in range(self.nchunks):
            yield from (f.copy() for f in self.chunk(c))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        n = self.shape[0]
        lead = 1  # axes of the result that the first key made
        if isinstance(key, (int, np.integer)):
            lead = 0
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"frame {i} of {n}")
            i %= n
            c, r = divmod(i, self.chunk_frames)
            out = self.chunk(c)[r].copy()
        elif isinstance(key, slice):
            start, stop, step = key.indices(n)
            out = self._range(start, max(start, stop)) if step == 1 else self.take(np.arange(start, stop, step))
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            out = self.take(idx)
            lead = idx.ndim
        return out[(*(slice(None),) * lead, *rest)] if rest else out

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Frames ``indices`` (any shape of ints, negative counting from the end), each chunk
        decompressed at most once."""
        idx = np.asarray(indices, dtype=np.int64)
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"frame indices must lie in [-{n}, {n})")
        flat = idx.ravel() % max(n, 1)
        out = np.empty((flat.size, self.frame_bytes), np.uint8)
        self.take_into(flat, out)
        return out.reshape(*idx.shape, *self.frame_shape)

    def take_into(
        self, frames: np.ndarray, out: np.ndarray, lut: np.ndarray | None = None, at: np.ndarray | None = None,
    ) -> None:
        """out[at[k]] = frame frames[k] (flattened to frame_bytes), or lut[frame] when lut is given.
        frames: (m,) int64 in [0, T); at: (m,) rows of out (default 0..m-1); out: (M, frame_bytes) uint8
        or float32. Each chunk the frames touch is decompressed at most once (and kept in the cache)."""
        if not frames.size:
            return
        chunk_of = frames // self.chunk_frames
        order = np.argsort(chunk_of, kind="stable")
        sorted_chunks = chunk_of[order]
        cuts = np.flatnonzero(np.diff(sorted_chunks)) + 1
        for group in np.split(order, cuts):
            c = int(chunk_of[group[0]])
            data = self.chunk(c).reshape(-1, self.frame_bytes)
            dst = group if at is None else at[group]
            _scatter(data, frames[group] - c * self.chunk_frames, dst, out, lut)

    def _range(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.frame_shape), np.uint8)
        k = self.chunk_frames
        pos = start
        while pos < stop:
            c, r = divmod(pos, k)
            data = self.chunk(c)
            m = min(stop - pos, data.shape[0] - r)
            out[pos - start : pos - start + m] = data[r : r + m]
            pos += m
        return out

    def chunk(self, c: int) -> np.ndarray:
        """Chunk c: frames [c*chunk_frames, min(T, (c+1)*chunk_frames)), read-only, from the cache."""
        if os.getpid() != self._pid:
            # A forked child (a DataLoader worker): its own handle, its own lock (the parent's may
            # have been held at the fork), never the parent's file state.
            self._lock = threading.Lock()
            self._array, self._pid = self._open(), os.getpid()
        with self._lock:
            hit = self._cache.get(c)
            if hit is not None:
                self._cache.move_to_end(c)
                return hit
        if not 0 <= c < self.nchunks:
            raise IndexError(f"chunk {c} of {self.nchunks}")
        k = min(self.chunk_frames, self.shape[0] - c * self.chunk_frames)
        buf = np.empty(self.chunk_frames * self.frame_bytes, np.uint8)  # blosc2 pads the last chunk
        try:
            self._array.schunk.decompress_chunk(c, buf)
        except Exception as e:
            raise StorageError(f"cannot decompress chunk {c} of {self.path}: {e}; it is damaged") from e
        data = buf[: k * self.frame_bytes].reshape(k, *self.frame_shape)
        data.flags.writeable = False
        with self._lock:
            self.decompressed_chunks += 1
            self._cache[c] = data
            while len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)
        return data

    def __repr__(self) -> str:
        return f"<CompressedFrames {self.path} {self.shape} chunks of {self.chunk_frames}>"


def _scatter(src: np.ndarray, rows: np.ndarray, dst: np.ndarray, out: np.ndarray, lut: np.ndarray | None) -> None:
    """out[dst[k]] = src[rows[k]] (or lut of it): one copy per frame, in a Numba kernel when the dataset
    layer has loaded it (engine.dataset.chunked registers it), else in NumPy."""
    if _SCATTER is not None:
        _SCATTER(src, rows, dst, out, lut)
    else:
        out[dst] = src[rows] if lut is None else lut[src[rows]]


_SCATTER: Callable[..., None] | None = None  # set by engine.dataset.chunked (the session layer has no Numba)


# ---------------------------------------------------------------------------------------------------
# Compaction


def write_compressed(
    frames: Any, out: Path, *, chunk_frames: int | None = None, clevel: int = CLEVEL,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``frames`` (T, *frame_shape) uint8, anything sliceable, to ``out`` (a new .b2nd file), one
    chunk at a time (memory: one chunk). Returns the compressed size in bytes."""
    blosc2 = _blosc2()
    shape = tuple(int(d) for d in frames.shape)
    fb = math.prod(shape[1:])
    k, b = chunk_layout(fb) if chunk_frames is None else (chunk_frames, _block_for(chunk_frames, fb))
    cparams = {"codec": blosc2.Codec.ZSTD, "clevel": clevel, "nthreads": max(1, min(4, os.cpu_count() or 1))}
    arr = blosc2.empty(shape, dtype=np.uint8, chunks=(k, *shape[1:]), blocks=(b, *shape[1:]),
                       urlpath=str(out), mode="w", cparams=cparams)
    n = shape[0]
    for start in range(0, n, k):
        stop = min(n, start + k)
        arr[start:stop] = np.ascontiguousarray(frames[start:stop])
        if progress is not None:
            progress(stop, n)
    size = int(arr.schunk.cbytes)
    del arr
    return size


def _block_for(chunk_frames: int, frame_bytes: int) -> int:
    want = max(1, BLOCK_BYTES // max(frame_bytes, 1))
    return max(d for d in range(1, min(want, chunk_frames) + 1) if chunk_frames % d == 0)


def _verify(raw: Any, path: Path) -> None:
    """Every chunk of the compressed copy equals the raw frames, byte for byte."""
    comp = CompressedFrames(path, cache_bytes=0)
    if comp.shape != tuple(raw.shape):
        raise StorageError(f"{path} holds {comp.shape}, the raw frames {tuple(raw.shape)}; not removing them")
    for c in range(comp.nchunks):
        a = c * comp.chunk_frames
        got = comp.chunk(c)
        if not np.array_equal(got, raw[a : a + got.shape[0]]):
            raise StorageError(f"the compressed copy {path} differs from the raw frames in chunk {c}; "
                               "the raw frames are kept")


def compact(
    path: str | os.PathLike[str], *, clevel: int = CLEVEL, chunk_frames: int | None = None,
    progress: Callable[[int, int], None] | None = None, _written: bool = False,
) -> dict[str, Any]:
    """Compress the frames of the finished session at ``path`` in place (see the module docs for the
    steps and why a crash at any of them is safe). Returns the new meta.json. A session already compact
    is left as it is. chunk_frames: frames per chunk (default: about CHUNK_BYTES of frames).
    Raises StorageError (one line) for a session being recorded or a failed step."""
    from engine.session.reader import Session  # the reader imports this module

    path = Path(path)
    partial = path / (COMPRESSED_FRAMES + PARTIAL_SUFFIX)
    if not _written:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()  # what an interrupted compact (or recording) left
    session = Session.open(path)  # settles a dead writer's session first
    if session.meta["status"] == "recording":
        raise StorageError(f"session {path.name!r} is being recorded; compact it after the recording stops")
    target = path / COMPRESSED_FRAMES
    raw_file = path / FRAMES
    if not raw_file.exists():
        return dict(session.meta)  # already compact
    raw = session.frames
    try:
        if target.exists():  # a compact that stopped after the rename: check the copy, then finish
            _verify(raw, target)
            size = target.stat().st_size
        else:
            if _written:  # by the SessionWriter while recording (ChunkCompressor): verified like any other
                size = int(CompressedFrames(partial, cache_bytes=0).compressed_bytes)
            else:
                size = write_compressed(raw, partial, clevel=clevel, chunk_frames=chunk_frames, progress=progress)
            _fsync(partial)
            _verify(raw, partial)
            fileio._replace(partial, target)
            fileio._fsync_dir(path)
        comp = CompressedFrames(target, cache_bytes=0)
        meta = {**_read_meta(path), "frames_file": COMPRESSED_FRAMES,
                "compression": {"library": "blosc2", "codec": CODEC, "clevel": clevel,
                                "chunk_frames": comp.chunk_frames, "raw_bytes": int(raw.nbytes),
                                "compressed_bytes": int(size)}}
        fileio._write_json_atomic(path / META, meta, sync_dir=True)
        del raw, session, comp  # the raw map must be gone before the file is (Windows)
        raw_file.unlink()
        fileio._fsync_dir(path)
    except (OSError, StorageError) as e:
        with contextlib.suppress(OSError):
            partial.unlink()
        if isinstance(e, StorageError):
            raise
        raise StorageError(fileio._storage_message(e, path, f"session {path.name!r} keeps its raw frames")) from e
    return meta


class ChunkCompressor:
    """Compresses a session's frames while it is recorded: SessionWriter(compress=True) hands it each
    chunk of frames.npy once the chunk is full (on the writer thread; the capture thread never waits
    for it), and at close() the tail; :meth:`finish` then verifies the copy and swaps it in as
    :func:`compact` does. The raw frames.npy is written as always until then, so a crash loses no more
    than a raw recording would: the session is recovered from its raw files, and the partial copy is
    thrown away by the next compact. Peak disk use while recording is raw + compressed."""

    def __init__(self, path: Path, frame_shape: tuple[int, ...], clevel: int = CLEVEL) -> None:
        blosc2 = _blosc2()
        self.path = path
        self.partial = path / (COMPRESSED_FRAMES + PARTIAL_SUFFIX)
        self.clevel = clevel
        self._shape = tuple(frame_shape)
        k, b = chunk_layout(math.prod(frame_shape))
        cparams = {"codec": blosc2.Codec.ZSTD, "clevel": clevel, "nthreads": 1}
        self._arr: Any = blosc2.empty((0, *self._shape), dtype=np.uint8, chunks=(k, *self._shape),
                                      blocks=(b, *self._shape), urlpath=str(self.partial), mode="w", cparams=cparams)
        self.frames = 0

    def append(self, frames: np.ndarray) -> None:
        """Append frames (m, *frame_shape) uint8."""
        m = int(frames.shape[0])
        if m == 0 or self._arr is None:
            return
        self._arr.resize((self.frames + m, *self._shape))
        self._arr[self.frames : self.frames + m] = frames
        self.frames += m

    def finish(self) -> dict[str, Any]:
        """Verify the copy against the closed session's raw frames and swap it in (see compact)."""
        self._arr = None  # flushed and closed
        return compact(self.path, clevel=self.clevel, _written=True)

    def abort(self) -> None:
        """Drop the partial copy (the raw session stays as it is)."""
        self._arr = None
        with contextlib.suppress(OSError):
            self.partial.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | fileio._O_BINARY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["COMPRESSED_FRAMES", "ChunkCompressor", "CompressedFrames", "chunk_layout", "compact", "is_compressed",
           "write_compressed"]
