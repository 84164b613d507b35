"""Session storage: one recording on disk, written at capture rate and readable at any time.

Layout (DESIGN.md, "Contracts")::

    <data_dir>/sessions/<name>/
      meta.json  frames.npy  timestamps.npy  actions.npy  events.npy   (+ writer.lock while recording)
      axes.npy  axis_events.npy   (format_version 2, only when meta["axes"] names any: mouse and pad axes)

Every .npy file is valid at all times. Its header is a version 1.0 header of exactly ``HEADER_BYTES``
whose first dimension is right-aligned in a fixed-width field, so the writer rewrites the count in
place (no data moves) and a concurrent reader never sees the header change length. Data starts at
byte ``HEADER_BYTES``; a file may extend past ``HEADER_BYTES + T * row`` (preallocation) while recording.

Writing (:class:`SessionWriter`, one thread): frames.npy, timestamps.npy and actions.npy grow together
in chunks of ``chunk_frames`` frames, preallocated with posix_fallocate, so a full disk is an error from
fallocate and never a SIGBUS from a mapped page. Only the current chunk of frames.npy is mapped, so
memory stays flat however long the session. A frame is committed by writing its actions, then its
timestamp: in the preallocated area (zeros) a nonzero, strictly increasing timestamp marks a valid
frame. axes.npy (T, K) float32 grows with them and is written before the timestamp too; axis_events.npy
logs every raw axis event like events.npy logs key transitions. At most once a second the headers'
counts and meta.json are brought up to date.

Compressed sessions: ``engine-sessions compact`` (:func:`compact`) replaces frames.npy by frames.b2nd,
losslessly compressed in chunks (engine.session.compressed); every reader reads both kinds alike.

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

from engine.session.compressed import CompressedFrames, compact, is_compressed
from engine.session.layout import (
    AXIS_EVENT_DTYPE,
    EVENT_DTYPE,
    FORMAT_VERSION,
    META,
    Status,
    StorageError,
    axis_names,
    data_dir,
)
from engine.session.npy import HEADER_BYTES
from engine.session.reader import Session, SessionInfo, sessions
from engine.session.writer import SessionWriter

__all__ = [
    "AXIS_EVENT_DTYPE",
    "EVENT_DTYPE",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "META",
    "CompressedFrames",
    "Session",
    "SessionInfo",
    "SessionWriter",
    "Status",
    "StorageError",
    "axis_names",
    "compact",
    "data_dir",
    "is_compressed",
    "sessions",
]
