"""SessionWriter: one new session, written at capture rate (see engine.session for the format).

Imports no capture, play or compiled module (the engine's clock is loaded by create(), when first used).
Over 400 lines because it is one class kept whole: every method keeps the commit order (actions, then
timestamps, then at most once a second the counts) that crash recovery relies on.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import EngineError
from engine.session import fileio
from engine.session.compressed import ChunkCompressor
from engine.session.layout import (
    ACTIONS,
    AXES,
    AXIS_EVENT_DTYPE,
    AXIS_EVENTS,
    CHUNK_BYTES,
    EVENT_DTYPE,
    EVENTS,
    FLUSH_INTERVAL_NS,
    FORMAT_VERSION,
    FRAMES,
    LOCK,
    META,
    TIMESTAMPS,
    StorageError,
    _check_new_session,
    _disk_usage,
    _duration_s,
    _engine_version,
    _make_session_dir,
)
from engine.session.npy import HEADER_BYTES, _npy_header
from engine.sidecar import Color

_log = logging.getLogger("engine.session")

class SessionWriter:
    """Writes one new session. Use :meth:`create`. Not thread-safe: call it from one thread (the writer).

    Per batch of frames::

        buf = writer.frames_buffer(n)           # writable view into frames.npy, len(buf) <= n
        k = fill(buf)                           # e.g. FrameQueue.pop_into(buf, ...): no extra copy
        writer.commit(k, t_ns[:k], actions)     # the k frames are final (+ axes=(k, K) with axes)

    A buffer is valid until the next frames_buffer(), commit() or close(); do not keep it.

    A disk error (full, size limit, ...) raises StorageError after closing the session with what was
    committed (status "recovered", the message in meta["error"]); every later write raises it again,
    and close() returns that final meta.
    """

    def __init__(
        self, path: Path, meta: dict[str, Any], chunk_frames: int, prefault: bool = True, compress: bool = False,
    ) -> None:
        """Open the files of the new, empty session directory ``path`` (made by :meth:`create`)."""
        self._path = path
        self._static = meta  # the meta.json fields that never change (but for those annotate() adds)
        self._annotated: set[str] = set()
        self._frame_shape: tuple[int, ...] = tuple(meta["frame_shape"])
        self._frame_bytes = math.prod(self._frame_shape)
        self._n_actions = len(meta["actions"])
        self._n_axes = len(meta.get("axes") or [])  # 0: no axes.npy / axis_events.npy
        self._fps = float(meta["fps"])
        self._chunk_frames = chunk_frames
        self._prefault = prefault
        self._chunk: np.ndarray | None = None  # the mapped chunk: frames [_chunk_start, _chunk_end)
        self._chunk_start = 0
        self._chunk_end = 0
        self._pending = 0  # frames in the last buffer handed out
        self._t = 0  # committed frames
        self._e = 0  # events written
        self._ae = 0  # axis events written
        self._dropped = 0
        self._t_first = 0
        self._t_last = 0  # 0 = none yet; timestamps are positive
        self._last_flush_ns = time.monotonic_ns()  # flush pacing: any monotonic clock does
        self._flushed: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._final: dict[str, Any] | None = None  # the meta written by close()
        self._error: StorageError | None = None  # what stopped the writer, raised again by later writes
        self._fds: dict[str, int] = {}
        self._lock_fd = -1
        self._compressor: ChunkCompressor | None = None  # compress=True: see create()
        try:
            # The lock first: from the moment meta.json exists, a reader can tell the writer is alive.
            self._lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | fileio._O_BINARY, 0o644)
            fileio._lock_nb(self._lock_fd)
            os.write(self._lock_fd, f"{os.getpid()}\n".encode())
            for name in (FRAMES, TIMESTAMPS, ACTIONS, EVENTS, *((AXES, AXIS_EVENTS) if self._n_axes else ())):
                self._fds[name] = os.open(path / name, os.O_RDWR | os.O_CREAT | os.O_EXCL | fileio._O_BINARY, 0o644)
            self._write_headers()
            fileio._write_json_atomic(path / META, self.meta, sync_dir=True)
            if compress:
                self._compressor = ChunkCompressor(path, self._frame_shape)
        except BaseException:
            self._release()
            raise

    @classmethod
    def create(
        cls,
        data_dir: str | Path | None,
        *,
        name: str | None,
        game: str,
        fps: float,
        frame_shape: tuple[int, ...],
        color: Color,
        actions: Sequence[str],
        resize: tuple[int, int] | None,
        source: dict[str, Any],
        chunk_frames: int | None = None,
        prefault: bool = True,
        compress: bool = False,
        axes: Sequence[str] = (),
    ) -> SessionWriter:
        """Start a new session in ``<data_dir>/sessions/<name>`` (data_dir as :func:`data_dir` resolves it).

        name: defaults to ``<game>_<UTC time>`` (a suffix is added if that exists); an existing name is
        refused. frame_shape: (H, W) for gray, (H, W, 3) for rgb. actions: names in column order.
        source: {"backend", "region": [x, y, w, h], "window"}. chunk_frames: frames per file chunk
        (default: about CHUNK_BYTES of frames); the writer maps one chunk at a time.
        prefault: fault in each new chunk's pages when it is mapped (see fileio.prefault); False only to
        measure what that saves.
        compress: also compress each full chunk into frames.b2nd.partial as the recording goes, and at
        close() swap it in for frames.npy once verified (engine.session.compressed.ChunkCompressor):
        a compacted session without a compact afterwards. A compression failure keeps the raw session.
        axes: axis names (mouse_dx, pad_lx, ...) in column order of axes.npy, float32 (T, K); each commit
        then takes the frames' axis values and append_axis_events() logs every raw axis event.
        Raises EngineError for bad arguments, StorageError when the data dir is unusable.
        """
        game, name, shape, names, axis = _check_new_session(game, name, fps, color, frame_shape, actions, axes)
        if chunk_frames is None:
            chunk_frames = max(1, CHUNK_BYTES // math.prod(shape))
        elif chunk_frames < 1:
            raise EngineError(f"chunk_frames must be at least 1, got {chunk_frames}")

        now = datetime.now(UTC)
        path = _make_session_dir(data_dir, game, name, now)
        name = path.name
        # start_monotonic_ns is on the frames' clock, the engine's (native/common/clock.hpp): on Windows
        # that is QueryPerformanceCounter, which time.monotonic_ns() reads only from Python 3.13.
        from engine._pacer import monotonic_ns

        meta = {
            "format_version": FORMAT_VERSION,
            "engine_version": _engine_version(),
            "name": name,
            "game": game,
            "created": now.isoformat(timespec="milliseconds"),
            "fps": float(fps),
            "frame_shape": list(shape),
            "color": color,
            "resize": list(resize) if resize is not None else None,
            "source": dict(source),
            "actions": names,
            "axes": axis,
            "clock": "monotonic_ns",
            "start_unix_ns": time.time_ns(),  # with start_monotonic_ns: wall time of any timestamp
            "start_monotonic_ns": monotonic_ns(),
        }
        try:
            return cls(path, meta, chunk_frames, prefault, compress)
        except OSError as e:
            shutil.rmtree(path, ignore_errors=True)  # ours alone: mkdir above made it
            raise StorageError(fileio._storage_message(e, path)) from e
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    # -- properties ---------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def frames_written(self) -> int:
        """Committed frames."""
        return self._t

    @property
    def bytes_on_disk(self) -> int:
        """Bytes allocated to the session's files, preallocated chunk included."""
        return _disk_usage(self._path)

    @property
    def meta(self) -> dict[str, Any]:
        """meta.json as it is now (as close() wrote it, once closed). A new dict each time."""
        if self._final is not None:
            return dict(self._final)
        return {
            **self._static,
            "frames": self._t,
            "events": self._e,
            **({"axis_events": self._ae} if self._n_axes else {}),
            "dropped": self._dropped,
            "duration_s": _duration_s(self._t_first, self._t_last, self._t, self._fps),
            "status": "recording",
        }

    # -- writing ------------------------------------------------------------------------------------

    def frames_buffer(self, max_n: int) -> np.ndarray:
        """A writable C-contiguous uint8 view (k, *frame_shape), 1 <= k <= max_n, of frames.npy at the
        next free frame. It never crosses a chunk boundary, so k may be less than max_n."""
        self._check_open()
        if max_n < 1:
            raise ValueError(f"frames_buffer needs max_n >= 1, got {max_n}")
        if self._t == self._chunk_end:
            self._next_chunk()
        assert self._chunk is not None
        i = self._t - self._chunk_start
        k = min(max_n, self._chunk_end - self._t)
        self._pending = k
        return self._chunk[i : i + k]

    def commit(self, k: int, t_ns: np.ndarray, actions: np.ndarray, axes: np.ndarray | None = None) -> None:
        """Make the first k frames of the last buffer final, with their capture times t_ns (k,) int64,
        positive and strictly increasing across commits, their actions (k, A) uint8 and, in a session
        with K axes, their axis values (k, K) float32 (None when K is 0)."""
        self._check_open()
        if not 0 <= k <= self._pending:
            raise ValueError(f"commit({k}) but the last frames_buffer() holds {self._pending} frames")
        t = np.ascontiguousarray(t_ns, dtype=np.int64)
        a = np.ascontiguousarray(actions, dtype=np.uint8)
        if t.shape != (k,) or a.shape != (k, self._n_actions):
            raise ValueError(
                f"commit({k}) needs t_ns of shape ({k},) and actions of shape ({k}, {self._n_actions}), "
                f"got {t.shape} and {a.shape}"
            )
        x = np.ascontiguousarray(axes, dtype=np.float32) if axes is not None else None
        if (x is None) != (self._n_axes == 0) or (x is not None and x.shape != (k, self._n_axes)):
            want = f"axes of shape ({k}, {self._n_axes})" if self._n_axes else "no axes (the session has none)"
            raise ValueError(f"commit({k}) needs {want}, got {None if x is None else x.shape}")
        if k == 0:
            self._pending = 0
            return
        if t[0] <= self._t_last or (k > 1 and not (t[1:] > t[:-1]).all()):
            raise ValueError("frame timestamps must be positive and strictly increasing")
        fds = self._fds
        try:
            # Timestamps last: a valid timestamp is what makes crash recovery count the frame.
            fileio._pwrite_all(fds[ACTIONS], a, HEADER_BYTES + self._t * self._n_actions)
            if x is not None:
                fileio._pwrite_all(fds[AXES], x, HEADER_BYTES + self._t * self._n_axes * 4)
            fileio._pwrite_all(fds[TIMESTAMPS], t, HEADER_BYTES + self._t * 8)
        except OSError as e:
            raise self._fail(e) from e
        if self._t == 0:
            self._t_first = int(t[0])
        self._t += k
        self._t_last = int(t[-1])
        self._pending = 0
        self.flush()

    def append_events(self, t_ns: np.ndarray, action: np.ndarray, value: np.ndarray) -> None:
        """Append raw input events (any length, 0 included): t_ns > 0, action in [0, A), value 1 press
        or 0 release."""
        rec = self._log_records("events", EVENT_DTYPE, t_ns, action, value, self._n_actions,
                                lambda v: bool(((v == 0) | (v == 1)).all()), "value 0 or 1")
        self._e += self._append_log(EVENTS, rec, self._e)

    def append_axis_events(self, t_ns: np.ndarray, axis: np.ndarray, value: np.ndarray) -> None:
        """Append raw axis events (any length, 0 included): t_ns > 0, axis in [0, K), value float32 (a
        relative axis' delta, or an absolute axis' new value)."""
        rec = self._log_records("axis events", AXIS_EVENT_DTYPE, t_ns, axis, value, self._n_axes,
                                lambda v: bool(np.isfinite(v).all()), "finite values")
        self._ae += self._append_log(AXIS_EVENTS, rec, self._ae)

    def append_axis_records(self, records: np.ndarray) -> int:
        """Append axis log records as an AxisFramer hands them over (Listener.pop_axes_into, add_events):
        uint8, 14 bytes each, already checked there (t_ns > 0, axis in [0, K), finite values), written as
        they are. Returns how many."""
        self._check_open()
        raw = np.asarray(records)
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size % AXIS_EVENT_DTYPE.itemsize:
            raise ValueError(f"axis records need 1-D uint8 in {AXIS_EVENT_DTYPE.itemsize}-byte records, got "
                             f"{raw.dtype} {raw.shape}")
        if not raw.size:
            return 0
        n = self._append_log(AXIS_EVENTS, raw.view(AXIS_EVENT_DTYPE), self._ae)
        self._ae += n
        return n

    def _log_records(self, what: str, dtype: np.dtype, t_ns: np.ndarray, index: np.ndarray, value: np.ndarray,
                     n_index: int, valid: Callable[[np.ndarray], bool], valid_says: str) -> np.ndarray | None:
        """The records of one append to events.npy or axis_events.npy (fields t_ns, the index, value),
        checked (``valid`` on the values as given): None when there are none."""
        self._check_open()
        t = np.asarray(t_ns, dtype=np.int64)
        idx = np.asarray(index)
        val = np.asarray(value)
        n = t.shape[0] if t.ndim == 1 else -1
        if n < 0 or idx.shape != (n,) or val.shape != (n,):
            raise ValueError(f"{what} need 1-D arrays of one length, got {t.shape}, {idx.shape}, {val.shape}")
        if n == 0:
            return None
        kind = str(dtype.names[1])  # type: ignore[index]
        if (t <= 0).any() or (idx < 0).any() or (idx >= n_index).any() or not valid(val):
            raise ValueError(f"{what} need t_ns > 0, {kind} in [0, {n_index}) and {valid_says}")
        rec = np.empty(n, dtype)
        rec["t_ns"], rec[kind], rec["value"] = t, idx, val
        return rec

    def _append_log(self, name: str, rec: np.ndarray | None, count: int) -> int:
        """Write ``rec`` after the ``count`` records already in the log file ``name``; returns how many."""
        if rec is None:
            return 0
        try:
            fileio._pwrite_all(self._fds[name], rec, HEADER_BYTES + count * rec.dtype.itemsize)
        except OSError as e:
            raise self._fail(e) from e
        return len(rec)

    def annotate(self, key: str, value: Any) -> None:
        """Add or replace a JSON-able field of meta.json (written at the next flush and by close()): what a
        producer of extra per-frame files (engine-play --takeover --record) names them by. Core fields are
        refused."""
        self._check_open()
        own = key in self._static and key not in self._annotated
        if own or key in ("frames", "events", "dropped", "duration_s", "status"):
            raise ValueError(f"meta.json field {key!r} is the writer's own")
        self._annotated.add(key)
        self._static = {**self._static, key: value}

    def note_dropped(self, n: int) -> None:
        """Count n frames the capture dropped (recorded in meta.json as "dropped")."""
        if n < 0:
            raise ValueError(f"dropped frames cannot be negative, got {n}")
        self._dropped += n

    def flush(self, force: bool = False) -> None:
        """Bring the headers' counts and meta.json up to date, at most once a second unless forced.
        commit() calls it, so a reader is never more than about a second behind."""
        if self._final is not None:
            return
        now = time.monotonic_ns()
        if not force and now - self._last_flush_ns < FLUSH_INTERVAL_NS:
            return
        self._last_flush_ns = now
        state = (self._t, self._e, self._dropped, self._ae)
        if state == self._flushed:
            return
        try:
            self._write_headers()
            fileio._write_json_atomic(self._path / META, self.meta)
        except OSError as e:
            raise self._fail(e) from e
        self._flushed = state

    def close(self, status: Literal["complete", "recovered"] = "complete") -> dict[str, Any]:
        """Finish: truncate the files to exactly the committed frames, fsync, write the final meta.json
        with ``status``, release the lock. Returns that meta. Idempotent."""
        if self._final is not None:
            return dict(self._final)
        if status not in ("complete", "recovered"):
            raise ValueError(f"close status must be 'complete' or 'recovered', not {status!r}")
        tail = self._t - self._chunk_start if self._chunk is not None else 0
        if self._compressor is not None and self._chunk is not None and tail > 0:
            self._compress(self._chunk[:tail])
        try:
            self._finish(status)
        except OSError as e:
            raise self._fail(e) from e
        assert self._final is not None
        if self._compressor is not None:
            compressor, self._compressor = self._compressor, None
            try:
                self._final = compressor.finish()
            except StorageError as e:
                compressor.abort()
                _log.warning("session %s stays raw: %s", self._path.name, e)
        return dict(self._final)

    def _compress(self, frames: np.ndarray) -> None:
        """Hand frames to the compressor; if it fails, log once and record raw only from then on."""
        assert self._compressor is not None
        try:
            self._compressor.append(frames)
        except Exception as e:  # blosc2 raises RuntimeError/ValueError; the recording must go on raw
            _log.warning("session %s: compression stopped (%s); recording raw", self._path.name, e)
            self._compressor.abort()
            self._compressor = None

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SessionWriter {self._path} frames={self._t}{' closed' if self._final else ''}>"

    # -- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._error is not None:
            raise StorageError(str(self._error))
        if self._final is not None:
            raise ValueError(f"session {self._path.name!r} is closed")

    def _next_chunk(self) -> None:
        start, n, fb = self._chunk_end, self._chunk_frames, self._frame_bytes
        if self._compressor is not None and self._chunk is not None:
            self._compress(self._chunk)  # full: every frame of it is committed
        self._chunk = None  # unmap the full chunk first: only one chunk is ever mapped
        try:
            fileio._preallocate(self._fds[FRAMES], HEADER_BYTES + start * fb, n * fb)
            fileio._preallocate(self._fds[TIMESTAMPS], HEADER_BYTES + start * 8, n * 8)
            fileio._preallocate(self._fds[ACTIONS], HEADER_BYTES + start * self._n_actions, n * self._n_actions)
            if self._n_axes:
                row = self._n_axes * 4
                fileio._preallocate(self._fds[AXES], HEADER_BYTES + start * row, n * row)
            offset = HEADER_BYTES + start * fb
            base = offset - offset % mmap.ALLOCATIONGRANULARITY  # mmap offsets are page-aligned
            mm = mmap.mmap(self._fds[FRAMES], offset - base + n * fb, offset=base)
        except OSError as e:
            raise self._fail(e) from e
        if self._prefault:
            fileio.prefault(mm)
        # The array holds the only reference to mm: dropping it unmaps the chunk.
        arr = np.frombuffer(mm, np.uint8, count=n * fb, offset=offset - base)
        self._chunk = arr.reshape(n, *self._frame_shape)
        self._chunk_start, self._chunk_end = start, start + n

    def _write_headers(self) -> None:
        t, fds = self._t, self._fds
        fileio._pwrite(fds[FRAMES], _npy_header(np.dtype(np.uint8), (t, *self._frame_shape)), 0)
        fileio._pwrite(fds[TIMESTAMPS], _npy_header(np.dtype(np.int64), (t,)), 0)
        fileio._pwrite(fds[ACTIONS], _npy_header(np.dtype(np.uint8), (t, self._n_actions)), 0)
        fileio._pwrite(fds[EVENTS], _npy_header(EVENT_DTYPE, (self._e,)), 0)
        if self._n_axes:
            fileio._pwrite(fds[AXES], _npy_header(np.dtype(np.float32), (t, self._n_axes)), 0)
            fileio._pwrite(fds[AXIS_EVENTS], _npy_header(AXIS_EVENT_DTYPE, (self._ae,)), 0)

    def _finish(self, status: str, error: str = "") -> None:
        # Unmap before truncating: a store to a mapped page past the end of the file is a SIGBUS.
        self._chunk = None
        self._pending = 0
        t, fds = self._t, self._fds
        fileio._truncate(fds[FRAMES], HEADER_BYTES + t * self._frame_bytes)
        fileio._truncate(fds[TIMESTAMPS], HEADER_BYTES + t * 8)
        fileio._truncate(fds[ACTIONS], HEADER_BYTES + t * self._n_actions)
        fileio._truncate(fds[EVENTS], HEADER_BYTES + self._e * EVENT_DTYPE.itemsize)
        if self._n_axes:
            fileio._truncate(fds[AXES], HEADER_BYTES + t * self._n_axes * 4)
            fileio._truncate(fds[AXIS_EVENTS], HEADER_BYTES + self._ae * AXIS_EVENT_DTYPE.itemsize)
        self._write_headers()
        for fd in fds.values():
            os.fsync(fd)
        meta = self.meta
        meta["status"] = status
        if error:
            meta["error"] = error
        fileio._write_json_atomic(self._path / META, meta, sync_dir=True)
        self._final = meta
        self._release()

    def _fail(self, e: OSError) -> StorageError:
        """Turn an OS error into a StorageError after keeping what was committed: the files are cut to
        the committed frames and the session closed as "recovered" with the error in meta.json. If even
        that fails, meta.json still says "recording" and the lock is released, so the next open
        recovers the session from its timestamps. Later writes raise the same StorageError; close()
        returns the meta as it was left."""
        kept = f"session {self._path.name!r} stopped, its {self._t} committed frames are kept"
        err = self._error = StorageError(fileio._storage_message(e, self._path, kept))
        if self._final is None:
            try:
                self._finish("recovered", error=str(err))
            except OSError:
                self._final = {**self.meta, "error": str(err)}
                self._release()
        return err

    def _release(self) -> None:
        """Close every file; unlink and unlock writer.lock (fileio._release_lock; on POSIX in that order,
        see _settle)."""
        self._chunk = None
        if self._compressor is not None and (self._error is not None or self._final is None):
            self._compressor.abort()  # a failed (or never started) recording stays raw
            self._compressor = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            fileio._release_lock(fd, self._path / LOCK)
