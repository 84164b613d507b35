"""Recording: frames at an exact rate, action labels that match them, in constant memory.

Threads (shared/DESIGN.md): the native capture thread grabs, converts and stamps frames into a
FrameQueue; the input listener (native XI2 thread, or evdev) stamps key events on the same clock; the
calling thread is the writer: it drains both, labels each frame from the events, and copies frames
from the queue straight into the session's memory-mapped frames file (one copy, no Python per pixel).

Frames are labelled a short holdback after their capture instant, so events stamped before a frame
but delivered a moment later by the X server still count for it.

Axes (mouse_dx, pad_lx, ... in --actions) come from the same listener only when configured, go through
an AxisFramer beside the Labeler (relative: motion summed over (t[i-1], t[i]], frame 0 from the capture
start; absolute: the value at t[i]) into axes.npy, and every axis event into axis_events.npy. Motion
before capture starts, and from the last frame before a pause until the resume, belongs to no frame;
while no frame can come (waiting for the start hotkey, paused) queued axis events are folded into the
state, so memory stays flat whatever the mouse rate.

Recorder.run is a list of steps: open and prepare; per wake-up take input (events, hotkeys), start
capture when due, stop on a failed thread, drain ready frames once a batch is due, check --duration,
report, sleep; finish.
Over 400 lines on purpose: the steps share one _Run state; what stands alone is already apart (config,
labeler, the input listeners, the blank-frame guard).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine._pacer import monotonic_ns
from engine.actions.inputs import Events, InputSource, open_input
from engine.capture import CaptureSource, CaptureStream, open_source
from engine.capture.blank import BlankGuard
from engine.errors import EngineError
from engine.record.config import DEFAULT_HOTKEYS, RecordConfig, auto_size
from engine.record.labeler import AxisFramer, Labeler
from engine.session import SessionWriter, StorageError
from engine.signals import stop_on_signals

HOLDBACK_NS = 30_000_000
# Frames are drained once the oldest queued one is this much older than the holdback, so each drain moves
# a batch (15 frames at 60 fps) and its fixed Python and kernel cost is paid 4 times a second instead of
# 15 (50 ms). The writer still wakes every 100 ms for hotkeys and status; see _input_due for what those
# wake-ups do. Writer-thread CPU per 60 fps frame (800x600 -> 160x120 gray, idle 2-vCPU EPYC VM): 0.13-0.15 ms
# -> 0.11 ms (0.07 with 300 ms wake-ups, which would make hotkeys slow). Never more than an eighth of
# the queue (big frames at a high rate). A crash loses only frames not yet committed (still queued): at
# most holdback + batch + 100 ms, 0.38 s, inside DESIGN's "at most the last second".
BATCH_NS = 250_000_000
QUEUE_BYTES = 512 << 20
# The capture thread sleeps to each tick and does not spin before it (engine-play's does, 60 us): a frame is
# stamped when its grab starts and labelled with the keys held then, so starting ~20 us late (the
# clock_nanosleep wake-up, p50) costs no accuracy, while the spin cost CPU at every frame. Per 60 fps frame
# (800x600 -> 160x120 gray, keys tapped, 2-vCPU Intel Xeon VM, 3 interleaved runs each): 0.308-0.324 ->
# 0.254-0.270 ms idle, 0.280-0.291 -> 0.252-0.264 ms with both cores busy; tick lateness p99 27-268 us.
# A 20 us spin cost more than either (0.317-0.341 ms loaded: more context switches).
SPIN_NS = 0
# With stderr not a terminal (a log file, a pipe), the status goes out as whole lines this often, the
# first one this long after recording starts (at once it would only say 0 frames).
STATUS_LINE_INTERVAL_S = 5.0
STATUS_LINE_FIRST_S = 1.0
STATUS_EVERY_S = 0.5  # how often run() refreshes the status (a terminal line, or on_status)
_ROLES = tuple(DEFAULT_HOTKEYS)  # hotkey index i (as the listener reports it) -> its role


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
    axes: tuple[str, ...] = ()
    axis_events: int = 0  # raw axis events logged (axis_events.npy)

    def lines(self) -> list[str]:
        out = [
            f"recorded {self.frames} frames in {self.duration_s:.1f} s: {self.fps_achieved:.2f} fps "
            f"(target {self.fps_target:g}), {self.dropped} dropped "
            f"({self.late_ticks} late ticks, {self.queue_drops} queue full), "
            f"{self.bytes_on_disk / 1e6:.1f} MB, stopped by {self.stop_reason}",
            f"session: {self.path} ({self.status})",
        ]
        if self.axes:
            out.insert(1, f"axes {', '.join(self.axes)}: {self.axis_events} events logged")
        return out + [f"warning: {w}" for w in self.warnings]


@dataclass
class _Run:
    """The state of one Recorder.run(), shared by its steps. Only the writer thread touches it."""

    source: CaptureSource
    stream: CaptureStream
    inputs: InputSource
    writer: SessionWriter
    signals: contextlib.ExitStack
    labeler: Labeler
    blank: BlankGuard  # says at once when the frames stay one uniform value
    queue: Any  # stream.sink: the native FrameQueue
    t_scratch: np.ndarray  # capture instants of a popped batch
    tick_scratch: np.ndarray  # pacer tick indices of a popped batch (not stored)
    batch_ns: int  # drain once the oldest queued frame is this much past the holdback (BATCH_NS at most)
    framer: AxisFramer | None = None  # None: no axes configured
    axis_events: int = 0  # axis events logged
    # Axis log records taken since the last drain, written after its frames: a wake-up's first write costs
    # ~50 us of cold kernel path on a 2-vCPU VM, and the axis log's write took 70 us first, 40 us after them
    axis_pending: list[np.ndarray] = field(default_factory=list)
    paused_at: int = 0  # monotonic_ns() of the last pause
    hotkeys_taken: int = -1  # inputs.hotkey_presses when input was last taken (-1: never)
    started: bool = False  # capture was started (at once, or by the start hotkey with --wait)
    paused: bool = False
    active_ns: int = 0  # recording time before active_since, pauses excluded
    active_since: int = 0  # monotonic_ns() of the last start or resume
    t_begin: float = 0.0  # time.monotonic() of the capture start: the status line's clock
    last_status: float = 0.0
    error: str = ""  # why recording stopped early ("" when it did not)
    storage_failed: bool = False
    uncommitted: int = 0  # frames popped from the queue whose commit failed
    unwritten: int = 0  # frames captured but never written: still queued when storage failed

    def active_s(self) -> float:
        """Seconds recorded so far, pauses excluded."""
        running = self.started and not self.paused
        return (self.active_ns + (monotonic_ns() - self.active_since if running else 0)) / 1e9


class Recorder:
    """One recording session. run() blocks until stopped (duration, stop hotkey, stop(), SIGINT/SIGTERM)."""

    def __init__(self, config: RecordConfig, *, out: TextIO | None = None) -> None:
        config.validate()
        self.config = config
        self.out = out if out is not None else sys.stderr
        self._stop = threading.Event()
        self._stop_reason = ""
        self._next_status_line = 0.0  # time.monotonic() of the next status line when out is not a tty

    def stop(self, reason: str = "request") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()

    def run(self, *, install_signals: bool = True, on_status: Callable[[str], None] | None = None) -> RecordSummary:
        """Record until stopped; the summary says what was kept. Raises RecordingStopped (with the summary)
        when capture, input or storage failed; whatever was written before is kept either way."""
        run = self._start(install_signals)
        status = on_status or self._print_status
        try:
            self._prepare(run)
            while not self._stop.is_set():
                due = self._batch_due_in(run)
                drain = due is not None and due <= 0  # decided once: the input taken below is what it labels
                if drain or self._input_due(run):
                    self._take_input(run)
                self._start_capture_when_due(run)
                if self._failed(run):
                    break
                if drain:
                    self._drain(run, monotonic_ns() - HOLDBACK_NS)
                    self._write_axis_log(run)
                run.writer.flush()
                self._check_duration(run)
                self._report_status(run, status)
                self._sleep_until_work(run)
        except StorageError as e:
            run.error = str(e)
            run.storage_failed = True
            self._stop_reason = self._stop_reason or "storage error"
        finally:
            stats, meta = self._finish(run)
        if self._stop_reason == "":
            self._stop_reason = "end"
        summary = self._summary(meta, run, stats)
        if run.error:
            raise RecordingStopped(run.error, summary)
        return summary

    # -- start -----------------------------------------------------------------------------------
    def _open(self) -> tuple[CaptureSource, CaptureStream, InputSource, SessionWriter]:
        """Open the capture source, its stream, the input listener and the new session (nothing started)."""
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
            stream = CaptureStream(source, fps=c.fps, size=size, color=c.color, mode="queue", capacity=capacity,
                                   spin_ns=SPIN_NS)
            inputs = open_input(c.input, c.keys, c.hotkey_list(), c.display or "", axes=c.axes,
                                region=list(source.rect), pad=c.pad)
            writer = SessionWriter.create(
                c.data_dir, name=c.name, game=c.game, fps=c.fps, frame_shape=stream.frame_shape, color=c.color,
                actions=c.keys, axes=c.axes, resize=size,
                source={"backend": f"{source.backend}/{source.path}", "region": list(source.rect),
                        "window": c.window, "fallback_reason": source.fallback_reason, "input": c.input},
                compress=c.compress,
            )
        except BaseException:
            if inputs is not None:
                inputs.stop()
            source.close()
            raise
        return source, stream, inputs, writer

    def _start(self, install_signals: bool) -> _Run:
        """Open everything and take over SIGINT/SIGTERM (they stop the recording, keeping the session)."""
        source, stream, inputs, writer = self._open()
        signals = contextlib.ExitStack()
        signals.enter_context(stop_on_signals(self.stop, install_signals))
        capacity = stream.sink.capacity
        self._next_status_line = 0.0
        return _Run(source=source, stream=stream, inputs=inputs, writer=writer, signals=signals,
                    labeler=Labeler(len(self.config.keys)), queue=stream.sink,
                    framer=AxisFramer(self.config.axes) if self.config.axes else None,
                    blank=BlankGuard(self.config.fps, what="engine-record"),
                    t_scratch=np.empty(capacity, np.int64), tick_scratch=np.empty(capacity, np.uint64),
                    batch_ns=int(min(BATCH_NS, capacity / 8 / self.config.fps * 1e9)))

    def _prepare(self, run: _Run) -> None:
        """Start listening, then count down (or say which hotkey starts)."""
        c = self.config
        run.inputs.start()
        if c.wait_for_start:
            self._say(f"press {c.hotkeys['start'].upper()} to start recording {run.source!r} "
                      f"({c.hotkeys['stop'].upper()} stops)")
        else:
            self._countdown()
        run.t_begin = time.monotonic()

    # -- each wake-up ------------------------------------------------------------------------------
    def _log_events(self, run: _Run, events: Events) -> None:
        """Queue action events for labelling and append them to the session's raw log."""
        if len(events[0]):
            run.labeler.add_events(*events)
            run.writer.append_events(*events)

    def _log_axis_events(self, run: _Run) -> None:
        """Axis events since the last wake-up into the framer (one native call from a native listener); their
        log records wait for _write_axis_log, after the next drain's frames."""
        if run.framer is not None:
            run.axis_pending.append(run.inputs.poll_axes_into(run.framer))

    def _write_axis_log(self, run: _Run) -> None:
        """Every axis event taken since the last drain into the session's axis log."""
        for rec in run.axis_pending:
            run.axis_events += run.writer.append_axis_records(rec)
        run.axis_pending.clear()

    def _input_due(self, run: _Run) -> bool:
        """Whether a wake-up with no drain due takes input. While keys alone are recorded, events are taken
        only before a drain (run() takes them then: the labels need them) or when a hotkey was pressed (the
        listener counts those apart, a cheap check), not at every 100 ms wake-up: each take costs Python
        calls that, with keys pressed 10 times a second, made the writer's CPU per 60 fps frame 0.173 ms
        against 0.133 ms without them (means of 4 interleaved runs each, both cores busy, 2-vCPU EPYC). Axes
        are taken every time: an X11 motion axis leaves its events in the X connection until taken, and
        waiting for the start hotkey or a pause keeps the framer settled. The event log is written as often
        as frames are: a crash loses the same span."""
        if run.framer is not None or not run.started or run.paused:
            return True
        return run.inputs.hotkey_presses != run.hotkeys_taken

    def _take_input(self, run: _Run) -> None:
        """Action and axis events since the last wake-up to the labeler, the framer and the logs; hotkeys
        to their roles."""
        run.hotkeys_taken = run.inputs.hotkey_presses  # before the poll: a press after it is taken next time
        events, hot = run.inputs.poll()
        self._log_events(run, events)
        if run.framer is not None:
            self._log_axis_events(run)
            if (not run.started or run.paused) and not run.queue.available():
                run.framer.settle(monotonic_ns())  # no frame can come before now: keep memory flat
        c = self.config
        for h in hot:
            role = _ROLES[h]
            if role == "stop":
                self.stop(f"{c.hotkeys['stop'].upper()} (stop hotkey)")
            elif role == "start" and not run.started:
                run.started = True
            elif role == "pause" and run.started:
                self._toggle_pause(run)

    def _toggle_pause(self, run: _Run) -> None:
        """Pause or resume capture; paused time counts neither toward --duration nor the achieved rate."""
        if run.paused:
            now = monotonic_ns()
            if run.framer is not None:
                run.framer.skip(run.paused_at, now)  # motion while paused is in no frame
            run.stream.resume()
            run.active_since = now
        else:
            run.stream.pause()
            run.paused_at = monotonic_ns()
            run.active_ns += run.paused_at - run.active_since
        run.paused = not run.paused
        self._say("paused" if run.paused else "resumed")

    def _start_capture_when_due(self, run: _Run) -> None:
        """Start the capture thread at the first wake-up (or once the start hotkey came, with --wait)."""
        if not self.config.wait_for_start:
            run.started = True
        if run.started and not run.stream.running and not run.stream.error:
            if run.framer is not None:
                run.framer.skip(np.iinfo(np.int64).min, monotonic_ns())  # frame 0 sums from here
            run.stream.start()
            run.active_since = monotonic_ns()
            run.t_begin = time.monotonic()

    def _failed(self, run: _Run) -> bool:
        """Whether the capture or input thread stopped on an error (then recording stops, keeping all)."""
        for error, reason in ((run.stream.error, "capture error"), (run.inputs.error, "input error")):
            if error:
                run.error = error
                self.stop(reason)
                return True
        return False

    def _batch_due_in(self, run: _Run) -> float | None:
        """Seconds until the oldest queued frame is a batch past the holdback (<= 0: drain now); None while
        the queue is empty."""
        queue = run.queue
        if not queue.available():
            return None
        return (queue.t_ns(0) + HOLDBACK_NS + run.batch_ns - monotonic_ns()) / 1e9

    def _drain(self, run: _Run, older_than: int | None) -> int:
        """Move ready frames (captured before older_than, or all) from the queue into the session."""
        queue, writer = run.queue, run.writer
        n = queue.available()
        if older_than is not None:
            k = 0
            while k < n and queue.t_ns(k) <= older_than:
                k += 1
            n = k
        done = 0
        while done < n:
            buf = writer.frames_buffer(n - done)
            k = queue.pop_into(buf, run.t_scratch[: len(buf)], run.tick_scratch[: len(buf)])
            t = run.t_scratch[:k]
            try:
                writer.commit(k, t, run.labeler.label(t), run.framer.frame(t) if run.framer is not None else None)
            except StorageError:
                run.uncommitted += k  # popped from the queue, never written
                raise
            self._watch_blank(run, buf[:k], t, writer.frames_written - k)
            done += k
        return done

    def _watch_blank(self, run: _Run, frames: np.ndarray, t: np.ndarray, first: int) -> None:
        """Feed committed frames to the blank guard; say it at once (stderr) when it fires."""
        for message in run.blank.feed_many(frames, first, t):
            if self.out.isatty():  # a status line is being rewritten in place: end it first
                print(file=self.out, flush=True)
            print(message, file=sys.stderr, flush=True)
        if run.blank.spans:  # meta.json says which frames saw nothing, so every reader can leave them out
            run.writer.annotate("blank_frames", run.blank.blank_frames)
            run.writer.annotate("blank_spans", [list(s) for s in run.blank.spans])

    def _check_duration(self, run: _Run) -> None:
        c = self.config
        if run.started and c.duration is not None and not run.paused and run.active_s() >= c.duration:
            self.stop(f"--duration {c.duration:g}")

    def _report_status(self, run: _Run, status: Callable[[str], None]) -> None:
        now = time.monotonic()
        if now - run.last_status >= STATUS_EVERY_S:
            run.last_status = now
            if run.started:
                axes = f" | {run.axis_events} axis events" if run.framer is not None else ""
                status(self._status_text(run.writer, run.stream, run.paused, now - run.t_begin) + axes)

    def _sleep_until_work(self, run: _Run) -> None:
        """Sleep (without the GIL) until the oldest queued frame is a batch past the holdback.

        queue.wait() returns at once while any frame is queued, and the holdback keeps the newest frames
        queued on purpose: waiting on the queue would spin a core. At most 100 ms, for status and hotkeys.
        """
        due = self._batch_due_in(run)
        if due is not None:
            self._stop.wait(min(0.1, max(due, 0.0005)))
        else:
            run.queue.wait(0.1)

    # -- finish ----------------------------------------------------------------------------------
    def _finish(self, run: _Run) -> tuple[dict[str, int], dict[str, Any]]:
        """Stop capture, write every frame still queued (no holdback: no event can come for them now),
        close the session and release everything. Returns the capture stats and the final meta."""
        run.stream.stop()
        if run.started and not run.paused:
            run.active_ns += monotonic_ns() - run.active_since
        try:
            events, _ = run.inputs.poll()
            self._log_events(run, events)
            if run.framer is not None:
                self._log_axis_events(run)
            self._drain(run, None)
            self._write_axis_log(run)
        except StorageError as e:
            run.error = run.error or str(e)
            run.storage_failed = True
        if run.storage_failed:
            run.unwritten = run.uncommitted + int(run.queue.available())
        run.inputs.stop()
        stats = run.stream.stats()
        run.writer.note_dropped(int(stats["late_ticks"] + stats["dropped"]))
        meta = run.writer.close("complete")
        run.signals.close()
        run.source.close()
        return stats, meta

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

    def _summary(self, meta: dict[str, Any], run: _Run, stats: dict[str, int]) -> RecordSummary:
        c = self.config
        frames = int(meta["frames"])
        dropped = int(stats["late_ticks"] + stats["dropped"])
        warnings = []
        if run.storage_failed:
            # The frames captured after the last write are lost with the disk, not because capture was
            # slow: the rate is that of the part actually recorded, and no rate warning is due.
            span = float(meta.get("duration_s", 0.0))
            achieved = frames / span if span > 0 else 0.0
            lost = f"; {run.unwritten} captured frames not yet written were lost" if run.unwritten else ""
            warnings.append(f"recording stopped on a storage error: {run.error}{lost}")
        else:
            active = run.active_ns / 1e9
            achieved = frames / active if active > 0 else 0.0
            if frames and achieved < 0.95 * c.fps:
                warnings.append(f"achieved {achieved:.2f} fps, below 95% of the target {c.fps:g}")
        if run.blank.summary():
            warnings.append(f"{run.blank.summary()}: the capture saw nothing there; see the line above")
        if dropped:
            warnings.append(f"{dropped} frames dropped: the machine could not keep up (lower --fps or --size)")
        if run.error and not run.storage_failed:
            warnings.append(f"stopped early: {run.error}; everything recorded so far is kept")
        if self.out.isatty():
            print(file=self.out)
        return RecordSummary(
            path=run.writer.path, frames=frames, duration_s=float(meta.get("duration_s", 0.0)), fps_target=c.fps,
            fps_achieved=achieved, dropped=dropped, late_ticks=int(stats["late_ticks"]),
            queue_drops=int(stats["dropped"]), bytes_on_disk=run.writer.bytes_on_disk, status=str(meta["status"]),
            stop_reason=self._stop_reason, warnings=warnings, axes=tuple(c.axes), axis_events=run.axis_events)


class RecordingStopped(EngineError):
    """Recording ended on an error (window lost, disk full); the summary says what was kept."""

    def __init__(self, message: str, summary: RecordSummary) -> None:
        super().__init__(message)
        self.summary = summary


__all__ = ["RecordSummary", "Recorder", "RecordingStopped"]
