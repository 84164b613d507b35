"""Session directory layout and meta.json: names, constants, the data dir, meta reading."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import EngineError
from engine.session import fileio

Status = Literal["recording", "complete", "recovered"]

# 2: mouse and pad axes (meta "axes", axes.npy, axis_events.npy). Version 1 sessions have no axes and open
# as sessions with zero axes; a session from a newer engine is refused (one line) rather than misread.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CHUNK_BYTES = 4 << 20  # default frames per chunk = CHUNK_BYTES // frame bytes (RSS varies by at most this)
FLUSH_INTERVAL_NS = 1_000_000_000
EVENT_DTYPE = np.dtype([("t_ns", "<i8"), ("action", "<i2"), ("value", "i1")])
# Every raw motion or axis event (mouse_dx counts, wheel notches, a normalised pad axis value), on the
# frames' clock; axis indexes meta["axes"].
AXIS_EVENT_DTYPE = np.dtype([("t_ns", "<i8"), ("axis", "<i2"), ("value", "<f4")])

FRAMES, TIMESTAMPS, ACTIONS, EVENTS = "frames.npy", "timestamps.npy", "actions.npy", "events.npy"
AXES, AXIS_EVENTS = "axes.npy", "axis_events.npy"  # only in sessions with axes
META, LOCK = "meta.json", "writer.lock"

_REQUIRED_META = ("name", "game", "created", "fps", "frame_shape", "color", "actions", "frames", "status")

_log = logging.getLogger("engine.session")


def _engine_version() -> str:
    """meta.json's engine_version: the installed package's, from its metadata (pyproject.toml's version, which
    the compiled module is built with too), so that storage loads no compiled module."""
    try:
        return importlib.metadata.version("engine")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        return "unknown"


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
    version = meta.get("format_version", 1)
    if version not in READABLE_VERSIONS:
        raise StorageError(
            f"{path.name} has session format_version {version!r}; this engine reads {list(READABLE_VERSIONS)}: "
            "upgrade the engine to read it"
        )
    return meta


def axis_names(meta: dict[str, Any]) -> list[str]:
    """The session's axes in axes.npy column order ([] for sessions without, version 1 included)."""
    return [str(a) for a in meta.get("axes") or []]


def _duration_s(t_first: int, t_last: int, frames: int, fps: float) -> float:
    """Span from the first to the last frame plus one period (each frame stands for one period)."""
    return round((t_last - t_first) / 1e9 + 1.0 / fps, 6) if frames else 0.0


def _disk_usage(path: Path) -> int:
    """Bytes allocated to the files of a session directory (like du)."""
    total = 0
    with os.scandir(path) as it:
        for entry in it:
            with contextlib.suppress(FileNotFoundError):
                total += fileio._allocated_bytes(entry.stat(follow_symlinks=False))
    return total


def _check_component(kind: str, value: str) -> str:
    bad = not value or value in (".", "..") or "/" in value or "\0" in value or value != value.strip()
    if sys.platform == "win32":  # also what Windows refuses in a file name
        bad = bad or any(c in '<>:"\\|?*' for c in value) or value.endswith(".")
    if bad:
        raise EngineError(f"{kind} {value!r} cannot be a directory name; use letters, digits, '-' or '_'")
    return value


def _check_new_session(game: str, name: str | None, fps: float, color: str, frame_shape: Sequence[int],
                       actions: Sequence[str], axes: Sequence[str] = ()
                       ) -> tuple[str, str | None, tuple[int, ...], list[str], list[str]]:
    """SessionWriter.create's arguments checked (EngineError, one line each): (game, name, shape, action
    names, axis names)."""
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
    axis = [str(a) for a in axes]
    if len(set(axis)) != len(axis) or not all(axis) or set(axis) & set(names):
        raise EngineError(f"axes must be distinct non-empty names, none of them an action, got {axis}")
    if len(axis) > np.iinfo(np.int16).max:
        raise EngineError(f"{len(axis)} axes is more than a session can index")
    return game, name, shape, names, axis


def _make_session_dir(data_dir: str | Path | None, game: str, name: str | None, now: datetime) -> Path:
    """Create <data dir>/sessions/<name> (name default: <game>_<UTC time>, with _2, _3... if taken); an
    existing name is refused. StorageError (one line) when the data dir cannot be used."""
    root = _data_dir(data_dir)
    sessions_dir = root / "sessions"
    try:
        sessions_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(fileio._storage_message(e, f"data dir {root}")) from e
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
        raise StorageError(fileio._storage_message(e, f"data dir {root}")) from e
    return path

