"""Session storage: one recording on disk, written at capture rate and readable at any time.

Layout (DESIGN.md, "Contracts")::

    <data_dir>/sessions/<name>/
      meta.json  frames.npy  timestamps.npy  actions.npy  events.npy   (+ writer.lock while recording)

Every .npy file is valid at all times. Its header is a version 1.0 header of exactly ``HEADER_BYTES``
whose first dimension is right-aligned in a fixed-width field, so the writer rewrites the count in
place (no data moves) and a concurrent reader never sees the header change length. Data starts at
byte ``HEADER_BYTES``; a file may extend past ``HEADER_BYTES + T * row`` (preallocation) while recording.

Writing (:class:`SessionWriter`, one thread): frames.npy, timestamps.npy and actions.npy grow together
in chunks of ``chunk_frames`` frames, preallocated with posix_fallocate, so a full disk is an error from
fallocate and never a SIGBUS from a mapped page. Only the current chunk of frames.npy is mapped, so
memory stays flat however long the session. A frame is committed by writing its actions, then its
timestamp: in the preallocated area (zeros) a nonzero, strictly increasing timestamp marks a valid
frame. At most once a second the headers' counts and meta.json are brought up to date.

Crash recovery: while recording, the writer holds an exclusive flock(2) on writer.lock (which holds
its pid, for people). The kernel drops that lock when the writer's process dies, even on kill -9.
:meth:`Session.open` of a session whose meta.json says "recording" tries the lock: held means a live
writer (the session is read as of its last flush and left alone); free means the writer is gone, so
the valid frames past the header's count are counted back in, the files truncated and the status set
to "recovered".

Durability: committed data is in the page cache at once, so a process crash loses only uncommitted
frames; close() fsyncs everything. An OS crash or power cut can lose what the kernel had not yet
written back.

Windows has none of flock(2), pwrite(2) or posix_fallocate(3); there the same scheme runs on:
- the lock: msvcrt.locking of one byte of writer.lock (past the pid, which stays readable). Windows
  drops a dead process's byte-range locks itself (LockFileEx docs), so kill -9's counterpart,
  TerminateProcess, frees it too, though possibly a moment later. An open file cannot be deleted, so
  the lock is released and closed before writer.lock is unlinked; a writer.lock that a reader holds
  open at that moment stays behind, harmlessly (only a "recording" status makes anyone look at it).
- preallocation: os.ftruncate grows the file (the CRT's _chsize_s writes zeros up to the new end),
  so the blocks are allocated and a full disk is an error there, never an in-page error on a store
  to a mapped page. It costs one write of the chunk's size.
- writes at an offset: seek then write on the writer's own descriptor (one thread, and the mapped
  chunk does not use the file position).
- files open in binary mode (O_BINARY; text mode would turn every 0x0A byte written into 0D 0A).
- meta.json is replaced with a short retry: Windows refuses to replace a file another process is
  reading at that instant.
- a file mapped by anyone (a reader's np.memmap, a frames_buffer() still referenced) cannot be
  shortened, so the final truncation then keeps the preallocated tail, which the format allows (the
  headers count the rows).
- directories cannot be fsynced: a power cut right after close() can lose the last replace of
  meta.json, and the next open then recovers the session from its timestamps.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import math
import mmap
import os
import shutil
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

from engine._native import __version__ as _ENGINE_VERSION
from engine._pacer import monotonic_ns
from engine.capture import Color
from engine.errors import EngineError

Status = Literal["recording", "complete", "recovered"]

FORMAT_VERSION = 1
HEADER_BYTES = 256  # every .npy of a session: data starts here
CHUNK_BYTES = 4 << 20  # default frames per chunk = CHUNK_BYTES // frame bytes (RSS varies by at most this)
FLUSH_INTERVAL_NS = 1_000_000_000
EVENT_DTYPE = np.dtype([("t_ns", "<i8"), ("action", "<i2"), ("value", "i1")])

FRAMES, TIMESTAMPS, ACTIONS, EVENTS = "frames.npy", "timestamps.npy", "actions.npy", "events.npy"
META, LOCK = "meta.json", "writer.lock"

_T_WIDTH = 20  # digits reserved for the first dimension: any int64 fits
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_REQUIRED_META = ("name", "game", "created", "fps", "frame_shape", "color", "actions", "frames", "status")
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation; 0 on POSIX
_log = logging.getLogger("engine.session")


class StorageError(EngineError):
    """The data dir or a session cannot be written or read (disk full, size limit, not a directory...)."""


def data_dir(arg: str | Path | None = None) -> Path:
    """The data dir: ``arg`` if given, else $ENGINE_DATA_DIR, else ./data. Sessions live in its sessions/."""
    return _data_dir(arg)


def _data_dir(arg: str | Path | None) -> Path:
    # SessionWriter.create and sessions() take a parameter named data_dir, which shadows the function.
    if arg is None:
        arg = os.environ.get("ENGINE_DATA_DIR") or "data"
    return Path(arg).expanduser()


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


# ---------------------------------------------------------------------------------------------------
# OS helpers


def _storage_message(e: OSError, where: Path | str, kept: str = "") -> str:
    """One line: what is wrong with ``where``, what happened to the data (``kept``), what to do."""
    code = e.errno
    if code == errno.ENOSPC:
        what, todo = f"disk full writing {where}", "free some space or pass --data-dir on another disk"
    elif code == errno.EDQUOT:
        what, todo = f"disk quota exceeded writing {where}", "free some space or raise the quota"
    elif code == errno.EFBIG:
        what = f"file size limit reached writing {where}"
        todo = "raise the limit (ulimit -f unlimited) or record shorter sessions"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = f"{where} is not writable ({e.strerror})"
        todo = "pick a writable data dir with --data-dir or ENGINE_DATA_DIR"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        what = f"{where} is not a directory"
        todo = "pick a directory with --data-dir or ENGINE_DATA_DIR"
    else:
        what = f"cannot write {where} ({e.strerror})"
        todo = "check the data dir (--data-dir or ENGINE_DATA_DIR)"
    return f"{what}; {kept}; {todo}" if kept else f"{what}; {todo}"


if sys.platform == "win32":
    _WIN_LOCK_BYTE = 1 << 20  # the byte of writer.lock that is locked: past the pid, which stays readable
    _REPLACE_TRIES = 50  # x 10 ms: how long another process may keep meta.json open

    def _pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        """os.pwrite for Windows, which has none: seek, then write (the caller is the fd's only user)."""
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)

    def _preallocate(fd: int, offset: int, length: int) -> None:
        # No posix_fallocate: growing the file with ftruncate (_chsize_s) writes zeros up to the new
        # end, which allocates the blocks now, so a full disk is an error here as on Linux.
        end = offset + length
        if length > 0 and os.fstat(fd).st_size < end:
            os.ftruncate(fd, end)

    def _truncate(fd: int, size: int) -> None:
        """os.ftruncate, but a shortening that Windows refuses because the file is mapped (by a reader,
        or by a frames buffer still referenced) keeps the tail past ``size``, as the format allows."""
        try:
            os.ftruncate(fd, size)
        except OSError as e:
            extra = os.fstat(fd).st_size - size
            if extra <= 0:
                raise
            _log.info("kept %d preallocated bytes past the data: the file is mapped elsewhere (%s)", extra, e)

    def _replace(src: Path, dst: Path) -> None:
        """os.replace, retried while another process has ``dst`` open (Windows refuses then)."""
        for attempt in range(_REPLACE_TRIES):
            try:
                os.replace(src, dst)
                return
            except PermissionError:
                if attempt == _REPLACE_TRIES - 1:
                    raise
                time.sleep(0.01)

    def _fsync_dir(path: Path) -> None:
        pass  # a directory cannot be opened as a file descriptor on Windows (see the module docs)

    def _lock_nb(fd: int) -> None:
        """Lock writer.lock exclusively without waiting; BlockingIOError if another handle holds it."""
        os.lseek(fd, _WIN_LOCK_BYTE, os.SEEK_SET)  # msvcrt.locking locks from the file position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as e:
            raise BlockingIOError(errno.EAGAIN, f"writer.lock is locked ({e})") from e
        finally:
            os.lseek(fd, 0, os.SEEK_SET)

    def _release_lock(fd: int, lock: Path | None) -> None:
        """Unlock and close fd, then delete ``lock`` if given (an open file cannot be deleted; a
        writer.lock someone else still has open stays behind, see the module docs)."""
        try:
            os.lseek(fd, _WIN_LOCK_BYTE, os.SEEK_SET)
            with contextlib.suppress(OSError):  # not locked by this handle: nothing to unlock
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)
        if lock is not None:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.unlink(lock)

    def _allocated_bytes(st: os.stat_result) -> int:
        return st.st_size  # no st_blocks; preallocation writes its zeros, so the size is allocated

else:
    _pwrite = os.pwrite
    _truncate = os.ftruncate
    _replace = os.replace

    def _preallocate(fd: int, offset: int, length: int) -> None:
        # posix_fallocate reserves the blocks now, so running out of space is an error here and not a
        # SIGBUS on the first store to a mapped page (mmap(2), "SIGBUS"). Reads of the range return zeros.
        if length > 0:
            os.posix_fallocate(fd, offset, length)

    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _lock_nb(fd: int) -> None:
        """Lock writer.lock exclusively without waiting; BlockingIOError if another process holds it."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _release_lock(fd: int, lock: Path | None) -> None:
        """Unlink ``lock`` if given, then close fd, which unlocks it (in that order: see _settle)."""
        try:
            if lock is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
        finally:
            os.close(fd)

    def _allocated_bytes(st: os.stat_result) -> int:
        return st.st_blocks * 512


def _pwrite_all(fd: int, data: np.ndarray, offset: int) -> None:
    """Write a C-contiguous array at offset; a short write (signal, nearly full disk) is continued."""
    done = _pwrite(fd, data.data, offset)
    if done < data.nbytes:
        rest = data.reshape(-1).view(np.uint8).data
        while done < data.nbytes:
            done += _pwrite(fd, rest[done:], offset + done)


def _write_json_atomic(path: Path, obj: dict[str, Any], *, sync_dir: bool = False) -> None:
    """Replace ``path`` by obj: a reader sees the old or the new file, never a partial one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_BINARY, 0o644)
    try:
        os.write(fd, (json.dumps(obj, indent=2) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _replace(tmp, path)
    if sync_dir:
        _fsync_dir(path.parent)


def _read_meta(path: Path) -> dict[str, Any]:
    file = path / META
    try:
        meta = json.loads(file.read_text())
    except FileNotFoundError:
        raise StorageError(f"{path} is not a session (no {META}); see engine-sessions for the list") from None
    except OSError as e:
        raise StorageError(f"cannot read {file}: {e.strerror}") from e
    except ValueError as e:
        raise StorageError(f"{file} is not valid JSON ({e}); the session is damaged") from e
    missing = [k for k in _REQUIRED_META if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise StorageError(f"{file} lacks {', '.join(missing)}; the session is damaged")
    return meta


def _duration_s(t_first: int, t_last: int, frames: int, fps: float) -> float:
    """Span from the first to the last frame plus one period (each frame stands for one period)."""
    return round((t_last - t_first) / 1e9 + 1.0 / fps, 6) if frames else 0.0


def _disk_usage(path: Path) -> int:
    """Bytes allocated to the files of a session directory (like du)."""
    total = 0
    with os.scandir(path) as it:
        for entry in it:
            with contextlib.suppress(FileNotFoundError):
                total += _allocated_bytes(entry.stat(follow_symlinks=False))
    return total


def _check_component(kind: str, value: str) -> str:
    bad = not value or value in (".", "..") or "/" in value or "\0" in value or value != value.strip()
    if sys.platform == "win32":  # also what Windows refuses in a file name
        bad = bad or any(c in '<>:"\\|?*' for c in value) or value.endswith(".")
    if bad:
        raise EngineError(f"{kind} {value!r} cannot be a directory name; use letters, digits, '-' or '_'")
    return value


# ---------------------------------------------------------------------------------------------------
# Writing


class SessionWriter:
    """Writes one new session. Use :meth:`create`. Not thread-safe: call it from one thread (the writer).

    Per batch of frames::

        buf = writer.frames_buffer(n)           # writable view into frames.npy, len(buf) <= n
        k = fill(buf)                           # e.g. FrameQueue.pop_into(buf, ...): no extra copy
        writer.commit(k, t_ns[:k], actions)     # the k frames are final

    A buffer is valid until the next frames_buffer(), commit() or close(); do not keep it.

    A disk error (full, size limit, ...) raises StorageError after closing the session with what was
    committed (status "recovered", the message in meta["error"]); every later write raises it again,
    and close() returns that final meta.
    """

    def __init__(self, path: Path, meta: dict[str, Any], chunk_frames: int) -> None:
        """Open the files of the new, empty session directory ``path`` (made by :meth:`create`)."""
        self._path = path
        self._static = meta  # the meta.json fields that never change
        self._frame_shape: tuple[int, ...] = tuple(meta["frame_shape"])
        self._frame_bytes = math.prod(self._frame_shape)
        self._n_actions = len(meta["actions"])
        self._fps = float(meta["fps"])
        self._chunk_frames = chunk_frames
        self._chunk: np.ndarray | None = None  # the mapped chunk: frames [_chunk_start, _chunk_end)
        self._chunk_start = 0
        self._chunk_end = 0
        self._pending = 0  # frames in the last buffer handed out
        self._t = 0  # committed frames
        self._e = 0  # events written
        self._dropped = 0
        self._t_first = 0
        self._t_last = 0  # 0 = none yet; timestamps are positive
        self._last_flush_ns = monotonic_ns()
        self._flushed: tuple[int, int, int] = (0, 0, 0)
        self._final: dict[str, Any] | None = None  # the meta written by close()
        self._error: StorageError | None = None  # what stopped the writer, raised again by later writes
        self._fds: dict[str, int] = {}
        self._lock_fd = -1
        try:
            # The lock first: from the moment meta.json exists, a reader can tell the writer is alive.
            self._lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o644)
            _lock_nb(self._lock_fd)
            os.write(self._lock_fd, f"{os.getpid()}\n".encode())
            for name in (FRAMES, TIMESTAMPS, ACTIONS, EVENTS):
                self._fds[name] = os.open(path / name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
            self._write_headers()
            _write_json_atomic(path / META, self.meta, sync_dir=True)
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
    ) -> SessionWriter:
        """Start a new session in ``<data_dir>/sessions/<name>`` (data_dir as :func:`data_dir` resolves it).

        name: defaults to ``<game>_<UTC time>`` (a suffix is added if that exists); an existing name is
        refused. frame_shape: (H, W) for gray, (H, W, 3) for rgb. actions: names in column order.
        source: {"backend", "region": [x, y, w, h], "window"}. chunk_frames: frames per file chunk
        (default: about CHUNK_BYTES of frames); the writer maps one chunk at a time.
        Raises EngineError for bad arguments, StorageError when the data dir is unusable.
        """
        game = _check_component("game", game)
        if name is not None:
            name = _check_component("session name", name)
        if not fps > 0 or not math.isfinite(fps):
            raise EngineError(f"fps must be a positive number, got {fps}")
        if color not in ("gray", "rgb"):
            raise EngineError(f"color must be 'gray' or 'rgb', not {color!r}")
        shape = tuple(int(d) for d in frame_shape)
        fits = len(shape) == 2 if color == "gray" else len(shape) == 3 and shape[2] == 3
        if not fits or min(shape) < 1:
            want = "(H, W)" if color == "gray" else "(H, W, 3)"
            raise EngineError(f"frame_shape {shape} does not fit color {color!r}; expected {want}")
        names = [str(a) for a in actions]
        if len(set(names)) != len(names) or not all(names):
            raise EngineError(f"actions must be distinct non-empty names, got {names}")
        if len(names) > np.iinfo(np.int16).max:
            raise EngineError(f"{len(names)} actions is more than a session can index")
        if chunk_frames is None:
            chunk_frames = max(1, CHUNK_BYTES // math.prod(shape))
        elif chunk_frames < 1:
            raise EngineError(f"chunk_frames must be at least 1, got {chunk_frames}")

        root = _data_dir(data_dir)
        sessions_dir = root / "sessions"
        try:
            sessions_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(_storage_message(e, f"data dir {root}")) from e
        now = datetime.now(timezone.utc)
        if name is None:
            base = f"{game}_{now:%Y%m%dT%H%M%SZ}"
            name, n = base, 1
            while (sessions_dir / name).exists():
                n += 1
                name = f"{base}_{n}"
        path = sessions_dir / name
        try:
            path.mkdir()
        except FileExistsError:
            raise StorageError(
                f"session {name!r} already exists in {sessions_dir}; pick another name or delete it"
            ) from None
        except OSError as e:
            raise StorageError(_storage_message(e, f"data dir {root}")) from e
        meta = {
            "format_version": FORMAT_VERSION,
            "engine_version": _ENGINE_VERSION,
            "name": name,
            "game": game,
            "created": now.isoformat(timespec="milliseconds"),
            "fps": float(fps),
            "frame_shape": list(shape),
            "color": color,
            "resize": list(resize) if resize is not None else None,
            "source": dict(source),
            "actions": names,
            "clock": "monotonic_ns",
            "start_unix_ns": time.time_ns(),  # with start_monotonic_ns: wall time of any timestamp
            "start_monotonic_ns": monotonic_ns(),
        }
        try:
            return cls(path, meta, chunk_frames)
        except OSError as e:
            shutil.rmtree(path, ignore_errors=True)  # ours alone: mkdir above made it
            raise StorageError(_storage_message(e, path)) from e
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

    def commit(self, k: int, t_ns: np.ndarray, actions: np.ndarray) -> None:
        """Make the first k frames of the last buffer final, with their capture times t_ns (k,) int64,
        positive and strictly increasing across commits, and their actions (k, A) uint8."""
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
        if k == 0:
            self._pending = 0
            return
        if t[0] <= self._t_last or (k > 1 and not (t[1:] > t[:-1]).all()):
            raise ValueError("frame timestamps must be positive and strictly increasing")
        fds = self._fds
        try:
            # Timestamps last: a valid timestamp is what makes crash recovery count the frame.
            _pwrite_all(fds[ACTIONS], a, HEADER_BYTES + self._t * self._n_actions)
            _pwrite_all(fds[TIMESTAMPS], t, HEADER_BYTES + self._t * 8)
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
        self._check_open()
        t = np.asarray(t_ns, dtype=np.int64)
        act = np.asarray(action)
        val = np.asarray(value)
        n = t.shape[0] if t.ndim == 1 else -1
        if n < 0 or act.shape != (n,) or val.shape != (n,):
            raise ValueError(f"events need 1-D arrays of one length, got {t.shape}, {act.shape}, {val.shape}")
        if n == 0:
            return
        bad_action = (act < 0).any() or (act >= self._n_actions).any()
        if (t <= 0).any() or bad_action or ((val != 0) & (val != 1)).any():
            raise ValueError(f"events need t_ns > 0, action in [0, {self._n_actions}) and value 0 or 1")
        rec = np.empty(n, EVENT_DTYPE)
        rec["t_ns"], rec["action"], rec["value"] = t, act, val
        try:
            _pwrite_all(self._fds[EVENTS], rec, HEADER_BYTES + self._e * EVENT_DTYPE.itemsize)
        except OSError as e:
            raise self._fail(e) from e
        self._e += n

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
        now = monotonic_ns()
        if not force and now - self._last_flush_ns < FLUSH_INTERVAL_NS:
            return
        self._last_flush_ns = now
        state = (self._t, self._e, self._dropped)
        if state == self._flushed:
            return
        try:
            self._write_headers()
            _write_json_atomic(self._path / META, self.meta)
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
        try:
            self._finish(status)
        except OSError as e:
            raise self._fail(e) from e
        assert self._final is not None
        return dict(self._final)

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
        self._chunk = None  # unmap the full chunk first: only one chunk is ever mapped
        try:
            _preallocate(self._fds[FRAMES], HEADER_BYTES + start * fb, n * fb)
            _preallocate(self._fds[TIMESTAMPS], HEADER_BYTES + start * 8, n * 8)
            _preallocate(self._fds[ACTIONS], HEADER_BYTES + start * self._n_actions, n * self._n_actions)
            offset = HEADER_BYTES + start * fb
            base = offset - offset % mmap.ALLOCATIONGRANULARITY  # mmap offsets are page-aligned
            mm = mmap.mmap(self._fds[FRAMES], offset - base + n * fb, offset=base)
        except OSError as e:
            raise self._fail(e) from e
        # The array holds the only reference to mm: dropping it unmaps the chunk.
        arr = np.frombuffer(mm, np.uint8, count=n * fb, offset=offset - base)
        self._chunk = arr.reshape(n, *self._frame_shape)
        self._chunk_start, self._chunk_end = start, start + n

    def _write_headers(self) -> None:
        t, fds = self._t, self._fds
        _pwrite(fds[FRAMES], _npy_header(np.dtype(np.uint8), (t, *self._frame_shape)), 0)
        _pwrite(fds[TIMESTAMPS], _npy_header(np.dtype(np.int64), (t,)), 0)
        _pwrite(fds[ACTIONS], _npy_header(np.dtype(np.uint8), (t, self._n_actions)), 0)
        _pwrite(fds[EVENTS], _npy_header(EVENT_DTYPE, (self._e,)), 0)

    def _finish(self, status: str, error: str = "") -> None:
        # Unmap before truncating: a store to a mapped page past the end of the file is a SIGBUS.
        self._chunk = None
        self._pending = 0
        t, fds = self._t, self._fds
        _truncate(fds[FRAMES], HEADER_BYTES + t * self._frame_bytes)
        _truncate(fds[TIMESTAMPS], HEADER_BYTES + t * 8)
        _truncate(fds[ACTIONS], HEADER_BYTES + t * self._n_actions)
        _truncate(fds[EVENTS], HEADER_BYTES + self._e * EVENT_DTYPE.itemsize)
        self._write_headers()
        for fd in fds.values():
            os.fsync(fd)
        meta = self.meta
        meta["status"] = status
        if error:
            meta["error"] = error
        _write_json_atomic(self._path / META, meta, sync_dir=True)
        self._final = meta
        self._release()

    def _fail(self, e: OSError) -> StorageError:
        """Turn an OS error into a StorageError after keeping what was committed: the files are cut to
        the committed frames and the session closed as "recovered" with the error in meta.json. If even
        that fails, meta.json still says "recording" and the lock is released, so the next open
        recovers the session from its timestamps. Later writes raise the same StorageError; close()
        returns the meta as it was left."""
        kept = f"session {self._path.name!r} stopped, its {self._t} committed frames are kept"
        err = self._error = StorageError(_storage_message(e, self._path, kept))
        if self._final is None:
            try:
                self._finish("recovered", error=str(err))
            except OSError:
                self._final = {**self.meta, "error": str(err)}
                self._release()
        return err

    def _release(self) -> None:
        """Close every file; unlink and unlock writer.lock (_release_lock: in that order on POSIX, see _settle)."""
        self._chunk = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            _release_lock(fd, self._path / LOCK)


# ---------------------------------------------------------------------------------------------------
# Reading and recovery


def _settle(path: Path, meta: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """For a session whose meta says "recording": (meta, True) if its writer is alive, else recover it
    and return (its new meta, False). Any other status is returned as is.

    The writer holds flock(LOCK_EX) on writer.lock until it has written its final meta.json, then
    unlinks the file and closes it (Windows: a byte-range lock, unlocked and closed before the unlink).
    So a lock we get means no writer; meta.json is re-read under it, because the writer may have
    finished between our first read and the lock.
    """
    if meta["status"] != "recording":
        return meta, False
    lock = path / LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o644)
    except OSError as e:
        kept = f"session {path.name!r} was interrupted and cannot be recovered in place"
        raise StorageError(_storage_message(e, path, kept)) from e
    settled = False
    try:
        try:
            _lock_nb(fd)
        except BlockingIOError:
            return meta, True
        meta = _read_meta(path)
        if meta["status"] == "recording":
            meta = _recover(path, meta)
        settled = True
        return meta, False
    finally:
        _release_lock(fd, lock if settled else None)  # unlinks the lock file once settled


def _valid_prefix(t: np.ndarray, prev: int) -> int:
    """How many leading timestamps are positive and strictly increasing after ``prev``."""
    if t.size == 0:
        return 0
    ok = t > np.concatenate(([max(prev, 0)], t[:-1]))
    return int(t.size if ok.all() else np.argmin(ok))


def _recover(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Count back in the frames committed after the last flush of a dead writer; status "recovered"."""
    info = {name: _read_npy_info(path / name) for name in (FRAMES, TIMESTAMPS, ACTIONS, EVENTS)}
    ts = info[TIMESTAMPS]
    t_h = min(ts.shape[0], ts.capacity)  # a header past the end of its file would be damage
    all_ts = _npy_memmap(path / TIMESTAMPS, ts, ts.capacity)
    prev = int(all_ts[t_h - 1]) if t_h else 0
    t = t_h + _valid_prefix(np.asarray(all_ts[t_h:]), prev)
    t = min(t, info[FRAMES].capacity, info[ACTIONS].capacity)  # never past what was preallocated
    ev = info[EVENTS]
    tail = np.asarray(_npy_memmap(path / EVENTS, ev, ev.capacity)["t_ns"][ev.shape[0] :])
    e = ev.shape[0] + int(tail.size if (tail != 0).all() else np.argmin(tail != 0))
    first, last = (int(all_ts[0]), int(all_ts[t - 1])) if t else (0, 0)
    del all_ts, tail  # views of the maps: Windows cannot shorten a mapped file
    try:
        for name, n in ((FRAMES, t), (TIMESTAMPS, t), (ACTIONS, t), (EVENTS, e)):
            i = info[name]
            fd = os.open(path / name, os.O_RDWR | _O_BINARY)
            try:
                _truncate(fd, i.offset + n * i.row_bytes)
                _pwrite(fd, _npy_header(i.dtype, (n, *i.shape[1:])), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
        meta = {
            **meta,
            "frames": t,
            "events": e,
            "duration_s": _duration_s(first, last, t, float(meta["fps"])),
            "status": "recovered",
        }
        _write_json_atomic(path / META, meta, sync_dir=True)
    except OSError as err:
        kept = f"session {path.name!r} was interrupted and cannot be recovered in place"
        raise StorageError(_storage_message(err, path, kept)) from err
    _log.info("recovered session %s: %d frames, %d events", path.name, t, e)
    return meta


class Session:
    """A recorded session, read-only. Use :meth:`Session.open`.

    frames (T, H, W[, 3]) uint8, timestamps (T,) int64, actions (T, A) uint8 and events (E,) EVENT_DTYPE
    are read-only memory maps. For a session still being recorded they hold what the writer had
    flushed when it was opened (meta["status"] == "recording"); open it again to see more.
    """

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        frames: np.ndarray,
        timestamps: np.ndarray,
        actions: np.ndarray,
        events: np.ndarray,
    ) -> None:
        """Use :meth:`Session.open`."""
        self.path = path
        self.meta = meta
        self.frames = frames
        self.timestamps = timestamps
        self.actions = actions
        self.events = events

    @classmethod
    def open(cls, path: str | Path) -> Session:
        """Open the session directory ``path``. A session whose writer died while recording is recovered
        first (status "recovered", see the module docs); one with a live writer is left alone."""
        path = Path(path)
        meta, live = _settle(path, _read_meta(path))
        info = {name: _read_npy_info(path / name) for name in (FRAMES, TIMESTAMPS, ACTIONS, EVENTS)}
        counts = {info[name].shape[0] for name in (FRAMES, TIMESTAMPS, ACTIONS)}
        if live:
            # meta.json is replaced after the headers are rewritten, so its count is never ahead of them.
            t = min(int(meta["frames"]), *counts)
        elif len(counts) == 1:
            t = counts.pop()
        else:
            raise StorageError(f"the .npy files in {path} disagree on the frame count; it is damaged")
        shape = (t, *meta["frame_shape"])
        frames = _npy_memmap(path / FRAMES, info[FRAMES], t)
        if frames.shape != shape or frames.dtype != np.uint8:
            got = f"{frames.dtype} {frames.shape}"
            raise StorageError(f"{path / FRAMES} holds {got}, meta.json says uint8 {shape}; it is damaged")
        events = _npy_memmap(path / EVENTS, info[EVENTS], min(info[EVENTS].shape[0], info[EVENTS].capacity))
        return cls(
            path,
            meta,
            frames,
            _npy_memmap(path / TIMESTAMPS, info[TIMESTAMPS], t),
            _npy_memmap(path / ACTIONS, info[ACTIONS], t),
            events,
        )

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def actions_names(self) -> list[str]:
        return list(self.meta["actions"])

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        return f"<Session {self.name} frames={len(self)} status={self.meta['status']}>"


@dataclass(frozen=True)
class SessionInfo:
    """One line of :func:`sessions`, from meta.json."""

    name: str
    game: str
    path: Path
    created: str  # ISO 8601, UTC
    frames: int
    duration_s: float
    status: str
    fps: float
    bytes_on_disk: int


def sessions(data_dir: str | Path | None = None, game: str | None = None) -> list[SessionInfo]:
    """The sessions in ``<data_dir>/sessions`` (of one game if given), oldest first. A session whose
    writer died is recovered, as Session.open would; a directory that cannot be read is skipped with a
    logged warning. A data dir that does not exist has no sessions."""
    root = _data_dir(data_dir)
    if root.exists() and not root.is_dir():
        raise StorageError(f"data dir {root} is not a directory; pick one with --data-dir or ENGINE_DATA_DIR")
    sessions_dir = root / "sessions"
    try:
        children = sorted(sessions_dir.iterdir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StorageError(f"cannot list {sessions_dir}: {e.strerror}; check the data dir") from e
    infos = []
    for child in children:
        if not (child / META).is_file():
            continue  # not a session, or one whose writer has not yet written meta.json
        try:
            meta = _read_meta(child)
            if game is not None and meta["game"] != game:
                continue
            meta, _ = _settle(child, meta)
            size = _disk_usage(child)
        except (StorageError, OSError) as e:
            _log.warning("skipping %s: %s", child, e)
            continue
        infos.append(
            SessionInfo(
                name=str(meta["name"]),
                game=str(meta["game"]),
                path=child,
                created=str(meta["created"]),
                frames=int(meta["frames"]),
                duration_s=float(meta.get("duration_s", 0.0)),
                status=str(meta["status"]),
                fps=float(meta["fps"]),
                bytes_on_disk=size,
            )
        )
    infos.sort(key=lambda i: (i.created, i.name))
    return infos


__all__ = [
    "EVENT_DTYPE",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "Session",
    "SessionInfo",
    "SessionWriter",
    "Status",
    "StorageError",
    "data_dir",
    "sessions",
]
