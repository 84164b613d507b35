"""File operations the writer and reader need, per platform (see engine.session for the scheme).

Callers reach these as ``fileio.name`` so that tests can reload this module as on another platform."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import mmap
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation; 0 on POSIX

_log = logging.getLogger("engine.session")


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


# madvise(2) MADV_POPULATE_WRITE (Linux 5.14+): fault in every page of a mapping, writable, in one call,
# so the first store to each page of a new chunk costs no page fault in the writer's per-frame path.
# Python's mmap module exposes the constant from 3.13 on; the value is the kernel's ABI.
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform == "linux" else None)
_PAGE = mmap.PAGESIZE


def prefault(mm: mmap.mmap) -> None:
    """Fault in all pages of a new chunk now, at chunk start, instead of one fault per page while frames
    are stored: MADV_POPULATE_WRITE where the kernel has it, else a store of the (zero) byte already
    there at the start of every page (fallocate made the range read as zeros)."""
    if _MADV_POPULATE_WRITE is not None and hasattr(mm, "madvise"):
        try:
            mm.madvise(_MADV_POPULATE_WRITE)
            return
        except OSError:
            pass  # EINVAL: a kernel older than 5.14; touch the pages instead
    view = np.frombuffer(mm, np.uint8)
    view[::_PAGE] = view[::_PAGE]
    del view
