"""Recording: frames at an exact rate, action labels that match them, in constant memory.

Threads (shared/DESIGN.md): the native capture thread grabs, converts and stamps frames into a
FrameQueue; the input listener (native XI2 thread, or evdev) stamps key events on the same clock; the
calling thread is the writer: it drains both, labels each frame from the events, and copies frames
from the queue straight into the session's memory-mapped frames file (one copy, no Python per pixel).

Frames are labelled a short holdback after their capture instant, so events stamped before a frame
but delivered a moment later by the X server still count for it.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine._pacer import monotonic_ns
from engine.capture import CaptureSource, CaptureStream, Color, open_source
from engine.errors import EngineError
from engine.inputs import InputSource, default_input, open_input
from engine.actions.names import parse_actions
from engine.labels import Labeler
from engine.session import SessionWriter, StorageError
from engine.signals import stop_on_signals

DEFAULT_ACTIONS = ("left", "right", "up", "down")
DEFAULT_HOTKEYS = {"start": "f9", "pause": "f10", "stop": "f12"}
HOLDBACK_NS = 30_000_000
# The writer wakes once frames are this much older than the holdback, so each wake-up moves a batch (a
# few frames at 60 fps, a dozen at 240): the per-wake Python cost is paid per batch, not per frame.
# Crash recovery keeps every frame older than a second, so batching costs nothing there.
BATCH_NS = 50_000_000
MAX_FPS = 1000.0
# Larger than any screen: a bound that keeps a typo (99999x99999) a clear error, not a failed allocation.
MAX_SIDE = 8192
QUEUE_BYTES = 512 << 20
# With stderr not a terminal (a log file, a pipe), the status goes out as whole lines this often, the
# first one this long after recording starts (at once it would only say 0 frames).
STATUS_LINE_INTERVAL_S = 5.0
STATUS_LINE_FIRST_S = 1.0


@dataclass
class RecordConfig:
    """Everything engine-record takes; see engine/cli/record.py for the flags and their defaults."""

    fps: float = 30.0
    window: str | int | None = None
    region: tuple[int, int, int, int] | None = None
    monitor: int | None = None
    size: tuple[int, int] | None = None  # None: auto_size() of the captured area
    color: Color = "gray"
    actions: list[str] = field(default_factory=lambda: list(DEFAULT_ACTIONS))
    game: str = "game"
    name: str | None = None
    data_dir: Path | None = None
    duration: float | None = None
    countdown: float = 3.0
    input: str = field(default_factory=default_input)  # x11 on Linux, rawinput on Windows
    hotkeys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOTKEYS))
    wait_for_start: bool = False
    backend: str = "default"
    display: str | None = None
    queue_seconds: float = 2.0

    def validate(self) -> None:
        if not (0 < self.fps <= MAX_FPS) or not math.isfinite(self.fps):
            raise EngineError(f"--fps must be in (0, {MAX_FPS:g}], got {self.fps:g}")
        if self.duration is not None and not self.duration > 0:
            raise EngineError(f"--duration must be positive, got {self.duration:g}")
        if self.countdown < 0:
            raise EngineError(f"--countdown must be >= 0, got {self.countdown:g}")
        if self.color not in ("gray", "rgb"):
            raise EngineError(f"--color must be gray or rgb, not {self.color!r}")
        if self.size is not None and (self.size[0] <= 0 or self.size[1] <= 0):
            raise EngineError(f"--size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.size is not None and max(self.size) > MAX_SIDE:
            raise EngineError(f"--size {self.size[0]}x{self.size[1]} is too large: each side must be at most "
                              f"{MAX_SIDE} (and at most the captured area)")
        if self.window is not None and self.monitor is not None:
            raise EngineError("give --window or --monitor, not both (--region may narrow a window)")
        self.actions = parse_actions(self.actions)
        unknown = set(self.hotkeys) - set(DEFAULT_HOTKEYS)
        if unknown:
            raise EngineError(f"unknown hotkey role(s) {', '.join(sorted(unknown))}; valid: start, pause, stop")
        keys = parse_actions(list(self.hotkeys.values()), what="hotkey")
        clash = sorted(set(keys) & set(self.actions))
        if clash:
            raise EngineError(f"hotkey {', '.join(clash)} is also a recorded action; pick another with --hotkeys")


def auto_size(width: int, height: int, max_width: int = 320) -> tuple[int, int]:
    """Default output size: the area divided by the smallest integer factor that fits max_width."""
    f = max(1, math.ceil(width / max_width))
    return max(1, round(width / f)), max(1, round(height / f))


@dataclass
class RecordSummary:
    path: Path
    frames: int
    duration_s: float
    fps_target: float
    fps_achieved: float
    dropped: int
    late_ticks: int
    queue_drops: int
    bytes_on_disk: int
    status: str
    stop_reason: str
    warnings: list[str]

    def lines(self) -> list[str]:
        out = [
            f"recorded {self.frames} frames in {self.duration_s:.1f} s: {self.fps_achieved:.2f} fps "
            f"(target {self.fps_target:g}), {self.dropped} dropped "
            f"({self.late_ticks} late ticks, {self.queue_drops} queue full), "
            f"{self.bytes_on_disk / 1e6:.1f} MB, stopped by {self.stop_reason}",
            f"session: {self.path} ({self.status})",
        ]
        return out + [f"warning: {w}" for w in self.warnings]


class Recorder:
    """One recording session. run() blocks until stopped (duration, stop hotkey, stop(), SIGINT/SIGTERM)."""

    def __init__(self, config: RecordConfig, *, out: TextIO | None = None) -> None:
        config.validate()
        self.config = config
        self.out = out if out is not None else sys.stderr
        self._stop = threading.Event()
        self._stop_reason = ""
        self._next_status_line = 0.0  # time.monotonic() of the next status line when out is not a tty
        self._uncommitted = 0  # frames taken from the queue whose commit failed

    def stop(self, reason: str = "request") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()

    # -- setup ---------------------------------------------------------------------------------
    def _open(self) -> tuple[CaptureSource, CaptureStream, InputSource, SessionWriter]:
        c = self.config
        source = open_source(region=c.region, window=c.window, monitor=c.monitor, backend=c.backend,
                             display=c.display)
        stream: CaptureStream | None = None
        inputs: InputSource | None = None
        try:
            size = c.size or auto_size(source.width, source.height)
            if size[0] > source.width or size[1] > source.height:
                # Upscaled frames hold no more information and cost memory and disk at every frame.
                raise EngineError(f"--size {size[0]}x{size[1]} is larger than the captured area "
                                  f"{source.width}x{source.height}; pick at most that")
            frame_bytes = size[0] * size[1] * (1 if c.color == "gray" else 3)
            capacity = int(max(16, min(c.fps * c.queue_seconds, QUEUE_BYTES // frame_bytes)))
            stream = CaptureStream(source, fps=c.fps, size=size, color=c.color, mode="queue", capacity=capacity)
            roles = list(DEFAULT_HOTKEYS)
            inputs = open_input(c.input, c.actions, [c.hotkeys.get(r, DEFAULT_HOTKEYS[r]) for r in roles],
                                c.display or "")
            writer = SessionWriter.create(
                c.data_dir, name=c.name, game=c.game, fps=c.fps, frame_shape=stream.frame_shape, color=c.color,
                actions=c.actions, resize=size,
                source={"backend": f"{source.backend}/{source.path}", "region": list(source.rect),
                        "window": c.window, "fallback_reason": source.fallback_reason, "input": c.input},
            )
        except BaseException:
            if inputs is not None:
                inputs.stop()
            source.close()
            raise
        return source, stream, inputs, writer

    # -- the writer loop -----------------------------------------------------------------------
    def run(self, *, install_signals: bool = True, on_status: Callable[[str], None] | None = None) -> RecordSummary:
        c = self.config
        source, stream, inputs, writer = self._open()
        signals = contextlib.ExitStack()
        signals.enter_context(stop_on_signals(self.stop, install_signals))
        labeler = Labeler(len(c.actions))
        queue = stream.sink
        t_scratch = np.empty(queue.capacity, np.int64)
        tick_scratch = np.empty(queue.capacity, np.uint64)
        roles = list(DEFAULT_HOTKEYS)
        status = on_status or self._print_status
        started = paused = False
        active_ns = 0
        active_since = 0
        error = ""
        storage_failed = False
        unwritten = 0  # frames captured but never written: still queued when storage failed
        self._uncommitted = 0
        self._next_status_line = 0.0
        try:
            inputs.start()
            if c.wait_for_start:
                self._say(f"press {c.hotkeys['start'].upper()} to start recording {source!r} "
                          f"({c.hotkeys['stop'].upper()} stops)")
            else:
                self._countdown()
            last_status = 0.0
            t_begin = time.monotonic()
            while not self._stop.is_set():
                events, hot = inputs.poll()
                if len(events[0]):
                    labeler.add_events(*events)
                    writer.append_events(*events)
                for h in hot:
                    role = roles[h]
                    if role == "stop":
                        self.stop(f"{c.hotkeys['stop'].upper()} (stop hotkey)")
                    elif role == "start" and not started:
                        started = True
                    elif role == "pause" and started:
                        if paused:
                            stream.resume()
                            active_since = monotonic_ns()
                        else:
                            stream.pause()
                            active_ns += monotonic_ns() - active_since
                        paused = not paused
                        self._say("paused" if paused else "resumed")
                if not c.wait_for_start:
                    started = True
                if started and not stream.running and not stream.error:
                    stream.start()
                    active_since = monotonic_ns()
                    t_begin = time.monotonic()
                if stream.error:
                    error = stream.error
                    self.stop("capture error")
                    break
                if inputs.error:
                    error = inputs.error
                    self.stop("input error")
                    break
                self._drain(queue, labeler, writer, t_scratch, tick_scratch, monotonic_ns() - HOLDBACK_NS)
                writer.flush()
                now = time.monotonic()
                if started and c.duration is not None and not paused and \
                        (active_ns + (monotonic_ns() - active_since)) / 1e9 >= c.duration:
                    self.stop(f"--duration {c.duration:g}")
                if now - last_status >= 0.5:
                    last_status = now
                    if started:
                        status(self._status_text(writer, stream, paused, now - t_begin))
                self._sleep_until_work(queue)
        except StorageError as e:
            error = str(e)
            storage_failed = True
            self._stop_reason = self._stop_reason or "storage error"
        finally:
            stream.stop()
            if not paused and started:
                active_ns += monotonic_ns() - active_since
            try:
                events, _ = inputs.poll()
                if len(events[0]):
                    labeler.add_events(*events)
                    writer.append_events(*events)
                self._drain(queue, labeler, writer, t_scratch, tick_scratch, None)
            except StorageError as e:
                error = error or str(e)
                storage_failed = True
            if storage_failed:
                unwritten = self._uncommitted + int(queue.available())
            inputs.stop()
            stats = stream.stats()
            writer.note_dropped(int(stats["late_ticks"] + stats["dropped"]))
            meta = writer.close("complete")
            signals.close()
            source.close()
        if self._stop_reason == "":
            self._stop_reason = "end"
        summary = self._summary(meta, writer, stats, active_ns, error, storage_failed, unwritten)
        if error:
            raise RecordingStopped(error, summary)
        return summary

    def _sleep_until_work(self, queue: Any) -> None:
        """Sleep (without the GIL) until the oldest queued frame is a batch past the holdback.

        queue.wait() returns at once while any frame is queued, and the holdback keeps the newest frames
        queued on purpose: waiting on the queue would spin a core. At most 100 ms, for status and hotkeys.
        """
        if queue.available():
            due = (queue.t_ns(0) + HOLDBACK_NS + BATCH_NS - monotonic_ns()) / 1e9
            self._stop.wait(min(0.1, max(due, 0.0005)))
        else:
            queue.wait(0.1)

    def _drain(self, queue: Any, labeler: Labeler, writer: SessionWriter, t_scratch: np.ndarray,
               tick_scratch: np.ndarray, older_than: int | None) -> int:
        """Move ready frames (captured before older_than, or all) from the queue into the session."""
        n = queue.available()
        if older_than is not None:
            k = 0
            while k < n and queue.t_ns(k) <= older_than:
                k += 1
            n = k
        done = 0
        while done < n:
            buf = writer.frames_buffer(n - done)
            k = queue.pop_into(buf, t_scratch[: len(buf)], tick_scratch[: len(buf)])
            t = t_scratch[:k]
            try:
                writer.commit(k, t, labeler.label(t))
            except StorageError:
                self._uncommitted += k  # popped from the queue, never written
                raise
            done += k
        return done

    # -- presentation ------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _countdown(self) -> None:
        secs = self.config.countdown
        whole = int(secs)
        for i in range(whole, 0, -1):
            if self._stop.wait(0):
                return
            self._say(f"recording in {i}...")
            self._stop.wait(1.0)
        self._stop.wait(secs - whole)

    def _status_text(self, writer: SessionWriter, stream: CaptureStream, paused: bool, elapsed: float) -> str:
        stats = stream.stats()
        frames = writer.frames_written
        fps = frames / elapsed if elapsed > 0 else 0.0
        drops = stats["late_ticks"] + stats["dropped"]
        state = "PAUSED " if paused else "rec "
        return (f"{state}{int(elapsed // 60):02d}:{elapsed % 60:04.1f} | {frames} frames | {fps:5.1f} fps | "
                f"{drops} dropped | {writer.bytes_on_disk / 1e6:.1f} MB")

    def _print_status(self, text: str) -> None:
        """On a terminal, rewrite one line in place; elsewhere (a log, a pipe) print whole lines on a
        steady deadline, STATUS_LINE_FIRST_S in and then every STATUS_LINE_INTERVAL_S, so a log is not
        flooded."""
        if self.out.isatty():
            print("\r" + text, end="", file=self.out, flush=True)
            return
        now = time.monotonic()
        if self._next_status_line == 0.0:
            self._next_status_line = now + STATUS_LINE_FIRST_S
        if now < self._next_status_line:
            return
        print(text, file=self.out, flush=True)
        self._next_status_line += STATUS_LINE_INTERVAL_S
        if self._next_status_line <= now:  # the writer was held up: skip the missed lines, no burst
            self._next_status_line = now + STATUS_LINE_INTERVAL_S

    def _summary(self, meta: dict[str, Any], writer: SessionWriter, stats: dict[str, int], active_ns: int,
                 error: str, storage_failed: bool = False, unwritten: int = 0) -> RecordSummary:
        c = self.config
        frames = int(meta["frames"])
        dropped = int(stats["late_ticks"] + stats["dropped"])
        warnings = []
        if storage_failed:
            # The frames captured after the last write are lost with the disk, not because capture was
            # slow: the rate is that of the part actually recorded, and no rate warning is due.
            span = float(meta.get("duration_s", 0.0))
            achieved = frames / span if span > 0 else 0.0
            lost = f"; {unwritten} captured frames not yet written were lost" if unwritten else ""
            warnings.append(f"recording stopped on a storage error: {error}{lost}")
        else:
            active = active_ns / 1e9
            achieved = frames / active if active > 0 else 0.0
            if frames and achieved < 0.95 * c.fps:
                warnings.append(f"achieved {achieved:.2f} fps, below 95% of the target {c.fps:g}")
        if dropped:
            warnings.append(f"{dropped} frames dropped: the machine could not keep up (lower --fps or --size)")
        if error and not storage_failed:
            warnings.append(f"stopped early: {error}; everything recorded so far is kept")
        if self.out.isatty():
            print(file=self.out)
        return RecordSummary(
            path=writer.path, frames=frames, duration_s=float(meta.get("duration_s", 0.0)), fps_target=c.fps,
            fps_achieved=achieved, dropped=dropped, late_ticks=int(stats["late_ticks"]),
            queue_drops=int(stats["dropped"]), bytes_on_disk=writer.bytes_on_disk, status=str(meta["status"]),
            stop_reason=self._stop_reason, warnings=warnings)


class RecordingStopped(EngineError):
    """Recording ended on an error (window lost, disk full); the summary says what was kept."""

    def __init__(self, message: str, summary: RecordSummary) -> None:
        super().__init__(message)
        self.summary = summary


__all__ = ["DEFAULT_ACTIONS", "DEFAULT_HOTKEYS", "RecordConfig", "RecordSummary", "Recorder", "RecordingStopped",
           "auto_size"]
