"""Reading sessions: Session.open (with crash recovery), SessionInfo and the sessions() listing."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.session import fileio
from engine.session.compressed import COMPRESSED_FRAMES, CompressedFrames, is_compressed
from engine.session.layout import (
    ACTIONS,
    AXES,
    AXIS_EVENT_DTYPE,
    AXIS_EVENTS,
    EVENTS,
    FRAMES,
    LOCK,
    META,
    TIMESTAMPS,
    StorageError,
    _data_dir,
    _disk_usage,
    _duration_s,
    _read_meta,
    axis_names,
)
from engine.session.npy import _npy_header, _npy_memmap, _read_npy_info

_log = logging.getLogger("engine.session")


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
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | fileio._O_BINARY, 0o644)
    except OSError as e:
        kept = f"session {path.name!r} was interrupted and cannot be recovered in place"
        raise StorageError(fileio._storage_message(e, path, kept)) from e
    settled = False
    try:
        try:
            fileio._lock_nb(fd)
        except BlockingIOError:
            return meta, True
        meta = _read_meta(path)
        if meta["status"] == "recording":
            meta = _recover(path, meta)
        settled = True
        return meta, False
    finally:
        fileio._release_lock(fd, lock if settled else None)  # unlinks the lock file once settled


def _valid_prefix(t: np.ndarray, prev: int) -> int:
    """How many leading timestamps are positive and strictly increasing after ``prev``."""
    if t.size == 0:
        return 0
    ok = t > np.concatenate(([max(prev, 0)], t[:-1]))
    return int(t.size if ok.all() else np.argmin(ok))


def _recover(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Count back in the frames committed after the last flush of a dead writer; status "recovered"."""
    with_axes = bool(axis_names(meta))
    kinds = (FRAMES, TIMESTAMPS, ACTIONS, EVENTS, *((AXES, AXIS_EVENTS) if with_axes else ()))
    info = {name: _read_npy_info(path / name) for name in kinds}
    ts = info[TIMESTAMPS]
    t_h = min(ts.shape[0], ts.capacity)  # a header past the end of its file would be damage
    all_ts = _npy_memmap(path / TIMESTAMPS, ts, ts.capacity)
    prev = int(all_ts[t_h - 1]) if t_h else 0
    t = t_h + _valid_prefix(np.asarray(all_ts[t_h:]), prev)
    # never past what was preallocated
    t = min(t, *(info[name].capacity for name in (FRAMES, ACTIONS, *((AXES,) if with_axes else ()))))
    counts = {FRAMES: t, TIMESTAMPS: t, ACTIONS: t, AXES: t}
    for name in (EVENTS, AXIS_EVENTS) if with_axes else (EVENTS,):
        ev = info[name]
        tail = np.asarray(_npy_memmap(path / name, ev, ev.capacity)["t_ns"][ev.shape[0] :])
        counts[name] = ev.shape[0] + int(tail.size if (tail != 0).all() else np.argmin(tail != 0))
        del tail  # a view of the map: Windows cannot shorten a mapped file
    e = counts[EVENTS]
    first, last = (int(all_ts[0]), int(all_ts[t - 1])) if t else (0, 0)
    del all_ts
    try:
        for name in kinds:
            n = counts[name]
            i = info[name]
            fd = os.open(path / name, os.O_RDWR | fileio._O_BINARY)
            try:
                fileio._truncate(fd, i.offset + n * i.row_bytes)
                fileio._pwrite(fd, _npy_header(i.dtype, (n, *i.shape[1:])), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
        meta = {
            **meta,
            "frames": t,
            "events": e,
            **({"axis_events": counts[AXIS_EVENTS]} if with_axes else {}),
            "duration_s": _duration_s(first, last, t, float(meta["fps"])),
            "status": "recovered",
        }
        fileio._write_json_atomic(path / META, meta, sync_dir=True)
    except OSError as err:
        kept = f"session {path.name!r} was interrupted and cannot be recovered in place"
        raise StorageError(fileio._storage_message(err, path, kept)) from err
    _log.info("recovered session %s: %d frames, %d events", path.name, t, e)
    return meta


class Session:
    """A recorded session, read-only. Use :meth:`Session.open`.

    A compacted session (``engine-sessions compact``) has its frames in frames.b2nd: then ``frames`` is
    an :class:`engine.session.compressed.CompressedFrames`, which reads like the array (len, shape,
    ``frames[i]``, slices, index arrays, ``np.asarray``) and decompresses a chunk at a time.

    frames (T, H, W[, 3]) uint8, timestamps (T,) int64, actions (T, A) uint8, events (E,) EVENT_DTYPE,
    axes (T, K) float32 (K = len(axis_names); (T, 0) for a session without axes) and axis_events (N,)
    AXIS_EVENT_DTYPE are read-only memory maps. For a session still being recorded they hold what the writer had
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
        axes: np.ndarray | None = None,
        axis_events: np.ndarray | None = None,
    ) -> None:
        """Use :meth:`Session.open`."""
        self.path = path
        self.meta = meta
        self.frames = frames
        self.timestamps = timestamps
        self.actions = actions
        self.events = events
        self.axes = axes if axes is not None else np.zeros((len(timestamps), 0), np.float32)
        self.axis_events = axis_events if axis_events is not None else np.zeros(0, AXIS_EVENT_DTYPE)

    @classmethod
    def open(cls, path: str | Path) -> Session:
        """Open the session directory ``path``. A session whose writer died while recording is recovered
        first (status "recovered", see the module docs); one with a live writer is left alone."""
        path = Path(path)
        meta, live = _settle(path, _read_meta(path))
        compressed = not live and is_compressed(path)  # frames.b2nd, see engine.session.compressed
        with_axes = bool(axis_names(meta))
        kinds = (*(() if compressed else (FRAMES,)), TIMESTAMPS, ACTIONS, EVENTS,
                 *((AXES, AXIS_EVENTS) if with_axes else ()))
        info = {name: _read_npy_info(path / name) for name in kinds}
        packed = CompressedFrames(path / COMPRESSED_FRAMES) if compressed else None
        counts = {info[name].shape[0] for name in kinds if name not in (EVENTS, AXIS_EVENTS)}
        if packed is not None:
            counts.add(len(packed))
        if live:
            # meta.json is replaced after the headers are rewritten, so its count is never ahead of them.
            t = min(int(meta["frames"]), *counts)
        elif len(counts) == 1:
            t = counts.pop()
        else:
            raise StorageError(f"the .npy files in {path} disagree on the frame count; it is damaged")
        shape = (t, *meta["frame_shape"])
        # A compressed session's frames are an array-like (CompressedFrames), not an ndarray: every
        # reader indexes, slices or np.asarray()s them, which both kinds support.
        frames = cast(np.ndarray, packed) if packed is not None else _npy_memmap(path / FRAMES, info[FRAMES], t)
        if frames.shape != shape or frames.dtype != np.uint8:
            got = f"{frames.dtype} {frames.shape}"
            raise StorageError(f"{path / FRAMES} holds {got}, meta.json says uint8 {shape}; it is damaged")
        def log(name: str) -> np.ndarray:
            return _npy_memmap(path / name, info[name], min(info[name].shape[0], info[name].capacity))

        return cls(
            path,
            meta,
            frames,
            _npy_memmap(path / TIMESTAMPS, info[TIMESTAMPS], t),
            _npy_memmap(path / ACTIONS, info[ACTIONS], t),
            log(EVENTS),
            _npy_memmap(path / AXES, info[AXES], t) if with_axes else None,
            log(AXIS_EVENTS) if with_axes else None,
        )

    @property
    def control(self) -> np.ndarray | None:
        """engine-play --takeover --record: uint8 (T,), 1 where the person had control at the frame's
        capture instant (the file meta["takeover"]["control"] names); None for other sessions."""
        return self._takeover_file("control", (len(self),))

    @property
    def model_actions(self) -> np.ndarray | None:
        """engine-play --takeover --record: uint8 (T, A), what the model proposed for each frame, sent or
        not (meta["takeover"]["model_actions"]); None for other sessions."""
        return self._takeover_file("model_actions", self.actions.shape)

    @property
    def model_axes(self) -> np.ndarray | None:
        """engine-play --takeover --record with a model that has axes: float32 (T, K), columns as ``axes``, the
        model's decision on each frame in natural units, sent or not (meta["takeover"]["model_axes"]); None
        for other sessions."""
        return self._takeover_file("model_axes", self.axes.shape)

    def _takeover_file(self, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
        name = (self.meta.get("takeover") or {}).get(key)
        if not name:
            return None
        if not (self.path / str(name)).is_file():  # written when play ends: this run was killed
            _log.warning("%s has no %s (the run ended without closing it)%s", self.path, name,
                         ": no frame counts as the person's" if key == "control" else "")
            return np.zeros(shape[:1], np.uint8) if key == "control" else None
        arr = np.load(self.path / str(name), mmap_mode="r")
        if arr.shape != shape:  # a crash before close leaves none; a mismatch is damage, said plainly
            raise StorageError(f"{self.path / str(name)} holds {arr.shape}, the session has {shape}; it is damaged")
        return arr

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def actions_names(self) -> list[str]:
        return list(self.meta["actions"])

    @property
    def axis_names(self) -> list[str]:
        """Column names of ``axes`` ([] for a session without axes)."""
        return axis_names(self.meta)

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
