"""The play loop: the model watches the screen at the rate it was trained at and presses keys.

Threads and data flow (shared/DESIGN.md): the native capture thread runs at the model's fps into a
latest-N ring; this loop waits for each new frame (without the GIL), has the native feed write the
newest window straight into the interpreter's input tensor (one copy, through the input LUT), invokes,
decodes, and sends only the press/release changes, then (a model with axes, issue 14) the decision's axis
values through ``Output.apply_axes`` (relative motion spread over the frame period by the output).
When invoke is slower than the frame period, capture keeps the trained spacing and the loop takes the
newest window: frames are skipped and counted, nothing queues.

Tails (issue #19): the capture thread (priority CAPTURE_PRIORITY) and this loop (PLAY_PRIORITY, below it)
run under SCHED_FIFO where the system allows it, so a busy machine does not delay their wake-ups; the
summary says whether it was granted. A long invoke (over LONG_INVOKE_NS) runs at the ordinary priority so
a slow model does not hold a core against the game. Every decision's stages are stamped (engine.telemetry).

Every exit path (Ctrl-C, SIGTERM, an exception in invoke or decode, the window disappearing, the
kill-switch hotkey, the end of --duration) releases every key the output holds, stops the motion in
flight and leaves a virtual pad neutral (Output.release_all).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import numpy as np

from engine import _native
from engine._pacer import Realtime, monotonic_ns, sleep_until_ns
from engine.actions.inputs import hotkey_listener
from engine.actions.outputs import Output
from engine.capture import CaptureSource, CaptureStream
from engine.capture.blank import BlankGuard
from engine.capture.stream import CAPTURE_PRIORITY
from engine.errors import EngineError
from engine.model.model import Model
from engine.signals import stop_on_signals
from engine.telemetry import Telemetry, breakdown_line

if TYPE_CHECKING:
    from engine.play.takeover import Takeover, TakeoverRecording


@dataclass
class PlaySummary:
    decisions: int
    elapsed_s: float
    fps_target: float
    captured: int
    skipped: int
    torn_retries: int
    invoke_ms: tuple[float, float]  # p50, p99
    latency_ms: tuple[float, float]  # capture -> keys sent, p50, p99
    latency_minus_invoke_ms: tuple[float, float]
    stop_reason: str
    runtime: str
    output: str
    warnings: list[str]
    takeover: str = ""  # "takeovers N, person in control X% ..." with --takeover
    stages: str = ""  # where capture->keys goes, per stage (engine.telemetry.breakdown_line)
    scheduling: str = ""  # whether SCHED_FIFO was granted to the capture thread and the loop

    def lines(self) -> list[str]:
        rate = self.decisions / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return [
            f"played {self.decisions} decisions in {self.elapsed_s:.1f} s: {rate:.2f}/s (model fps "
            f"{self.fps_target:g}), {self.captured} frames captured, {self.skipped} skipped, "
            f"stopped by {self.stop_reason}",
            f"invoke p50 {self.invoke_ms[0]:.2f} ms p99 {self.invoke_ms[1]:.2f} ms | capture->keys p50 "
            f"{self.latency_ms[0]:.2f} ms p99 {self.latency_ms[1]:.2f} ms (minus invoke p50 "
            f"{self.latency_minus_invoke_ms[0]:.3f} p99 {self.latency_minus_invoke_ms[1]:.3f} ms) | "
            f"{self.runtime}, output {self.output}",
            *([self.stages] if self.stages else []),
            *([f"scheduling: {self.scheduling}"] if self.scheduling else []),
            *([self.takeover] if self.takeover else []),
            *(f"warning: {w}" for w in self.warnings),
        ]


def _ordinal(n: int) -> str:
    """2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _p(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q) / 1e6) if len(values) else 0.0


PLAY_PRIORITY = 10  # SCHED_FIFO priority of the loop: below the capture thread's ticks (CAPTURE_PRIORITY)
LONG_INVOKE_NS = 1_000_000  # an invoke longer than this runs at the ordinary priority


@dataclass
class _Replay:
    """Progress of the replay producer thread (written by it, read by the loop)."""

    pushed: int = 0
    error: str = ""
    done: bool = False


class PlayStopped(EngineError):
    """Play ended on an error (window lost, model failure); every key was released first."""

    def __init__(self, message: str, summary: PlaySummary) -> None:
        super().__init__(message)
        self.summary = summary


class Player:
    """Runs a model against a frame ring and an output. Use :meth:`live` or :meth:`replay` to build one."""

    def __init__(self, model: Model, output: Output, *, duration: float | None = None, kill_key: str | None = "f12",
                 display: str = "", out: TextIO | None = None, takeover: Takeover | None = None,
                 recording: TakeoverRecording | None = None, realtime: bool = True) -> None:
        self.model = model
        self.spec = model.spec
        self.output = output
        self.duration = duration
        self.kill_key = kill_key
        self.display = display
        self.out = out if out is not None else sys.stderr
        self.telemetry = Telemetry(len(self.spec.actions))
        self.blank = BlankGuard(self.spec.fps, what="engine-play")  # the model watching nothing is said at once
        self.takeover = takeover  # engine-play --takeover: the person may take control (engine.play.takeover)
        self.recording = recording  # with --record: the run written as a session
        self.realtime = realtime  # SCHED_FIFO for the capture thread and the loop, when allowed
        self._stop = threading.Event()
        self._stop_reason = ""

    def stop(self, reason: str = "request") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()

    @property
    def stop_reason(self) -> str:
        """Why play stopped (the first :meth:`stop` reason, e.g. "SIGINT"), "" while it has not."""
        return self._stop_reason

    def countdown(self, seconds: float) -> bool:
        """Wait ``seconds`` before play starts (time to focus the game); returns False if :meth:`stop` was
        called meanwhile. The wait is on the stop event, so a signal handler calling :meth:`stop` (wrap this
        in engine.signals.stop_on_signals) ends it at once instead of raising out of a sleep."""
        self._stop.wait(seconds)
        return not self._stop.is_set()

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, ring: _native.LatestRing, *, producer_error: Callable[[], str],
            producer_done: Callable[[], bool] = lambda: False, captured: Callable[[], int],
            install_signals: bool = True, capture_scheduling: Callable[[], str] = lambda: "") -> PlaySummary:
        spec = self.spec
        lut = self.model.input_lut()
        decoder = self.model.decoder()
        axes = tuple(getattr(decoder, "axes", ()))
        if axes and tuple(getattr(self.output, "axes", ())) != axes:
            raise EngineError(f"the model decides {', '.join(axes)} but the {self.output.name} output was opened "
                              f"for {', '.join(getattr(self.output, 'axes', ())) or 'no axes'}")
        self.telemetry.axis_names = axes
        history = np.zeros(self.model.history_shape, np.uint8) if self.model.history_shape else None
        if history is not None:
            self.model.set_history(history)
        kill = None
        signals = contextlib.ExitStack()
        signals.enter_context(stop_on_signals(self.stop, install_signals))
        error = ""
        last_end = spec.span - 2  # the first usable window ends at frame span - 1
        first = True
        skipped = torn = 0
        t_start = time.monotonic()
        rt = Realtime(PLAY_PRIORITY if self.realtime else 0)
        inv_ns = 0
        try:
            if self.kill_key:
                kill = hotkey_listener([self.kill_key], self.display)
                kill.start()
            if self.takeover is not None:
                self.takeover.start()
            while not self._stop.is_set():
                # Checks first: after the wake-up nothing but the invoke should stand between frame and keys.
                if kill is not None and len(kill.pop(16)[0]):
                    self.stop(f"{str(self.kill_key).upper()} (kill switch)")
                    break
                if err := producer_error():
                    error = err
                    self.stop("capture error")
                    break
                if self.duration is not None and time.monotonic() - t_start >= self.duration:
                    self.stop(f"--duration {self.duration:g}")
                    break
                # Wait for a newer frame and feed the newest window into the input tensor, in one native call
                # without the GIL (one copy, through the input LUT): always the newest, never queued.
                buf = self.model.input_buffer()
                published, fed, t_cap, tick, t_grab, t_pub, t_woken, t_fed = _native.wait_feed(
                    ring, last_end + 1, 0.1, spec.window, spec.skip, lut, spec.layout, buf)
                del buf  # the runtime refuses invoke() while a view of its input is alive
                if published - 1 <= last_end:  # no new frame yet (timeout)
                    if producer_done():
                        self.stop("end of replay")
                    continue
                end = published - 1
                if not fed:
                    torn += 1  # overwritten while copying: take the next newest
                    continue
                missed = 0 if first else end - last_end - 1
                skipped += missed
                if inv_ns > LONG_INVOKE_NS:
                    rt.relax()
                t_inv = monotonic_ns()
                out = self.model.invoke()
                t_done = monotonic_ns()
                inv_ns = t_done - t_inv
                rt.boost()
                state = decoder.decode(out).astype(np.uint8)
                t_dec = monotonic_ns()
                send = state if self.takeover is None else self.takeover.gate(state)
                events = self.output.apply(send) if send is not None else 0
                values = decoder.decode_axes(out) if axes else None  # type: ignore[attr-defined,unused-ignore]
                if values is not None and send is not None:  # the person in control (takeover): nothing sent
                    events += self.output.apply_axes(values)
                t_sent = monotonic_ns()
                if history is not None:  # the actions actually sent, newest row last
                    history[:-1] = history[1:]
                    history[-1] = state
                    self.model.set_history(history)
                self.telemetry.add(int(tick), int(t_cap), t_inv, inv_ns, t_sent, missed, events, state, values,
                                   (t_grab, t_pub, t_woken, t_fed, t_dec))
                self._watch_blank(int(tick), int(t_cap))  # after the keys went out: off the latency path
                if self.recording is not None and self.takeover is not None:
                    self.recording.add(ring, end, state, self.takeover.take_events(), proposed_axes=values,
                                       axis_events=self.takeover.take_axis_events())
                last_end = end
                first = False
        except Exception as e:  # invoke/decode/output failures: keys are released below, then reported
            error = f"{type(e).__name__}: {e}"
            self._stop_reason = self._stop_reason or "error"
        finally:
            rt.close()
            self.output.release_all()
            if kill is not None:
                kill.stop()
            if self.takeover is not None:
                self.takeover.stop()
                self.takeover.finish()
            signals.close()
        summary = self._summary(time.monotonic() - t_start, captured(), skipped, torn, error)
        cap = capture_scheduling()
        summary.scheduling = (f"capture thread {cap}; " if cap else "") + f"play loop {rt.detail}" \
            if self.realtime else "ordinary (realtime off)"
        if self.takeover is not None:
            summary.takeover = self.takeover.stats.line(summary.elapsed_s, monotonic_ns())
        if error:
            raise PlayStopped(error, summary)
        return summary

    # -- sources ----------------------------------------------------------------------------------
    def live(self, source: CaptureSource, *, install_signals: bool = True) -> PlaySummary:
        """Play on the screen: the native capture thread at the model's fps feeds a latest-N ring."""
        spec = self.spec
        stream = CaptureStream(source, fps=spec.fps, size=spec.frame_size, color=spec.color, mode="latest",
                               window=spec.span, slack=4, realtime=CAPTURE_PRIORITY if self.realtime else 0)
        stream.start()
        try:
            return self.run(stream.sink, producer_error=lambda: stream.error,
                            captured=lambda: int(stream.stats()["frames"]), install_signals=install_signals,
                            capture_scheduling=lambda: stream.scheduling)
        finally:
            stream.stop()
            self.output.release_all()

    def replay(self, frames: np.ndarray, timestamps: np.ndarray, *, install_signals: bool = True) -> PlaySummary:
        """Replay recorded frames at their recorded timing into the same ring the live loop reads."""
        spec = self.spec
        shape = tuple(frames.shape[1:])
        want = (spec.height, spec.width) if spec.color == "gray" else (spec.height, spec.width, 3)
        if shape != want:
            raise EngineError(f"the session's frames are {shape} but the model wants {want} "
                              f"({spec.width}x{spec.height} {spec.color}); record with --size "
                              f"{spec.width}x{spec.height} --color {spec.color}")
        ring = _native.LatestRing(spec.span, shape, 4)
        state = _Replay()

        def produce() -> None:
            try:
                t0 = monotonic_ns() + 50_000_000
                for i in range(len(frames)):
                    if self._stop.is_set():
                        break
                    due = t0 + int(timestamps[i] - timestamps[0])
                    sleep_until_ns(due)
                    _native.push_frame(ring, np.ascontiguousarray(frames[i]), due, i)
                    state.pushed = i + 1
            except Exception as e:
                state.error = str(e)
            state.done = True

        producer = threading.Thread(target=produce, name="engine-replay", daemon=True)
        producer.start()
        try:
            return self.run(ring, producer_error=lambda: state.error,
                            producer_done=lambda: state.done and ring.published == state.pushed,
                            captured=lambda: state.pushed, install_signals=install_signals)
        finally:
            self.stop(self._stop_reason or "end of replay")
            producer.join()

    # -- reporting --------------------------------------------------------------------------------
    def _watch_blank(self, tick: int, t_cap: int) -> None:
        """The window the model just saw (its input tensor, scaled: a uniform frame stays uniform)."""
        buf = self.model.input_buffer()
        try:
            message = self.blank.feed(buf, tick, t_cap)
        finally:
            del buf  # the runtime refuses invoke() while a view of its input is alive
        if message:
            print(message, file=self.out, flush=True)

    def _summary(self, elapsed: float, captured: int, skipped: int, torn: int, error: str) -> PlaySummary:
        data = self.telemetry.arrays()
        inv = data["invoke_ns"]
        lat = data["latency_ns"]
        warnings = []
        if error:
            warnings.append(f"stopped early: {error}; all keys were released")
        if len(inv) and np.percentile(inv, 50) > 1e9 / self.spec.fps:
            # Frames captured per decision: every frame either got a decision or was skipped (or was warm-up).
            every = round(captured / len(inv))
            sees = f"about every {_ordinal(every)} frame" if every >= 2 else "nearly every frame, late"
            warnings.append(f"invoke (p50 {np.percentile(inv, 50) / 1e6:.1f} ms) is slower than the frame period "
                            f"({1e3 / self.spec.fps:.1f} ms): the model sees {sees} ({len(inv)} decisions over "
                            f"{captured} frames captured)")
        warnings += [f"{f} was not given by m.json or flags; assumed the default" for f in self.model.assumed]
        if self.blank.summary():
            warnings.append(f"{self.blank.summary()}: the model was shown nothing there")
        return PlaySummary(
            decisions=len(inv), elapsed_s=elapsed, fps_target=self.spec.fps, captured=captured, skipped=skipped,
            torn_retries=torn, invoke_ms=(_p(inv, 50), _p(inv, 99)), latency_ms=(_p(lat, 50), _p(lat, 99)),
            latency_minus_invoke_ms=(_p(lat - inv, 50), _p(lat - inv, 99)),
            stop_reason=self._stop_reason or "end", runtime=self.model.runtime, output=self.output.name,
            warnings=warnings, stages=breakdown_line(data))


def agreement(decisions: np.ndarray, ticks: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Per action, the fraction of decisions equal to the recorded label of the frame they were made on."""
    if not len(ticks):
        return np.zeros(actions.shape[1])
    return (decisions.astype(bool) == actions[ticks].astype(bool)).mean(axis=0)


def axis_error(values: np.ndarray, ticks: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Per axis, the mean absolute difference between the values decided and the recorded values of the
    frames they were decided on (relative axes: motion per frame; absolute: the value)."""
    if not len(ticks):
        return np.zeros(axes.shape[1])
    return np.abs(values.astype(np.float64) - axes[ticks].astype(np.float64)).mean(axis=0)


__all__ = ["PlayStopped", "PlaySummary", "Player", "agreement", "axis_error"]
