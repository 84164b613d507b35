"""Ctrl-C and SIGTERM as a request to finish cleanly, for the long-running loops (record, play)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None], enabled: bool = True) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``stop(signal name)`` instead of raising or killing, so the
    loop can end its session or release its keys; the previous handlers come back on exit. Python only
    lets the main thread install handlers: elsewhere (or with ``enabled`` False) this does nothing."""
    previous: dict[signal.Signals, Any] = {}
    if enabled and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda s, f: stop(signal.Signals(s).name))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
