"""CaptureStream: frames from a source at a fixed rate, converted and resized, into a ring.

There is one capture loop, the native one (native/capture/capture_loop.cpp): per pacer tick it reserves a
sink slot (a full sink drops the newest frame and counts it), grabs, converts+resizes into the slot, stamps
and publishes, and keeps the stats. Every backend runs in it: a native grabber without the GIL, a Python
backend (mss) through an adapter whose grab alone takes the GIL (``CaptureSource.loop_source``).
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any, Literal

import numpy as np

import engine._native as _native
from engine._pacer import DEFAULT_SPIN_NS
from engine.capture.base import CaptureSource, Color
from engine.errors import EngineError

StreamMode = Literal["queue", "latest"]

# SCHED_FIFO priority of the capture thread's pacer waits, when the system allows it (issue #19): above the
# play loop's (engine.play.loop.PLAY_PRIORITY), so the capture ticks land on their deadlines first.
CAPTURE_PRIORITY = 20

# Streams whose loop calls back into Python. Python stops them at exit, before the interpreter finalizes:
# a native thread that asks for the GIL after that is ended by CPython in the middle of its grab.
_calls_python: weakref.WeakSet[CaptureStream] = weakref.WeakSet()


@atexit.register
def _stop_streams_calling_python() -> None:
    for stream in list(_calls_python):
        stream.stop()


class CaptureStream:
    """Frames from a source at a fixed rate, converted and resized, into a ring.

    mode="queue" (recording): every frame goes to a FrameQueue the consumer drains; when it is full
    the newest frame is dropped and counted. mode="latest" (play): a LatestRing holding the newest
    ``window`` frames as one contiguous array.
    ``realtime`` > 0 asks for SCHED_FIFO at that priority for the capture thread's pacer waits, in "latest"
    mode for its grabs too, and the shortest ordinary time slice for the X server while it runs (0: ordinary
    scheduling, nothing asked); :attr:`scheduling` says what was granted.
    """

    def __init__(
        self,
        source: CaptureSource,
        *,
        fps: float,
        size: tuple[int, int] | None = None,
        color: Color = "gray",
        mode: StreamMode = "queue",
        capacity: int = 256,
        window: int = 1,
        slack: int = 4,
        kernel: str = "auto",
        spin_ns: int = DEFAULT_SPIN_NS,
        realtime: int = CAPTURE_PRIORITY,
    ) -> None:
        if not fps > 0:
            raise EngineError(f"fps must be positive, got {fps}")
        if color not in ("gray", "rgb"):
            raise EngineError(f"color must be 'gray' or 'rgb', not {color!r}")
        w, h = size or (source.width, source.height)
        self.source = source
        self.fps = float(fps)
        self.period_ns = round(1e9 / fps)
        self.color: Color = color
        self.size = (w, h)
        self.frame_shape: tuple[int, ...] = (h, w) if color == "gray" else (h, w, 3)
        self.mode: StreamMode = mode
        if mode == "queue":
            self.sink: Any = _native.FrameQueue(capacity, self.frame_shape)
        elif mode == "latest":
            self.sink = _native.LatestRing(window, self.frame_shape, slack)
        else:
            raise EngineError(f"mode must be 'queue' or 'latest', not {mode!r}")
        loop_source = source.loop_source()
        self._loop: Any = _native.CaptureLoop(loop_source, self.sink, w, h, color, self.period_ns, kernel, spin_ns)
        if realtime > 0:  # the capture thread's ticks under SCHED_FIFO when allowed
            # Neither pinning the thread to a CPU nor mlocking the ring helped on the loaded bench (issue #19):
            # pinned, the grab's p99 doubled; locked, nothing changed (the ring is touched every frame).
            # mode="latest" (play, env): the newest frame's latency counts, so the grab is real-time too (its
            # wait for the X server kicked); mode="queue" (recording): CPU per frame counts, the grab runs at
            # ordinary priority (see native/capture/capture_loop.cpp).
            self._loop.set_realtime(realtime, -1, mode == "latest")
        if isinstance(loop_source, _native.CallableSource):
            _calls_python.add(self)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        """Stop and join the capture thread (at most a period and a grab later). Idempotent."""
        self._loop.stop()

    def pause(self) -> None:
        self._loop.pause()

    def resume(self) -> None:
        self._loop.resume()

    @property
    def running(self) -> bool:
        return bool(self._loop.running)

    @property
    def error(self) -> str:
        """Why the capture thread stopped on its own ("" while healthy)."""
        return str(self._loop.error)

    @property
    def scheduling(self) -> str:
        """What the capture thread was granted: "SCHED_FIFO 20 granted", "SCHED_FIFO refused (...)", "off"."""
        return str(self._loop.scheduling)

    @property
    def window_lost(self) -> bool:
        return bool(self._loop.window_lost)

    def stats(self) -> dict[str, int]:
        return dict(self._loop.stats())

    def lateness_log(self) -> np.ndarray:
        return np.asarray(self._loop.lateness_log())

    def __enter__(self) -> CaptureStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["CaptureStream", "StreamMode"]
