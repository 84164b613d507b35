"""Session directory layout and meta.json: names, constants, the data dir, meta reading."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import EngineError
from engine.session import fileio

Status = Literal["recording", "complete", "recovered"]

FORMAT_VERSION = 1
CHUNK_BYTES = 4 << 20  # default frames per chunk = CHUNK_BYTES // frame bytes (RSS varies by at most this)
FLUSH_INTERVAL_NS = 1_000_000_000
EVENT_DTYPE = np.dtype([("t_ns", "<i8"), ("action", "<i2"), ("value", "i1")])

FRAMES, TIMESTAMPS, ACTIONS, EVENTS = "frames.npy", "timestamps.npy", "actions.npy", "events.npy"
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
                total += fileio._allocated_bytes(entry.stat(follow_symlinks=False))
    return total


def _check_component(kind: str, value: str) -> str:
    bad = not value or value in (".", "..") or "/" in value or "\0" in value or value != value.strip()
    if sys.platform == "win32":  # also what Windows refuses in a file name
        bad = bad or any(c in '<>:"\\|?*' for c in value) or value.endswith(".")
    if bad:
        raise EngineError(f"{kind} {value!r} cannot be a directory name; use letters, digits, '-' or '_'")
    return value
