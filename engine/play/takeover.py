"""Take over while the model plays (engine-play --takeover): the person's corrections, and who had control.

The model plays. The moment the person presses any configured action, or moves a configured axis past its
dead zone (:class:`AxisWatch`), the engine releases every key it holds, stops the motion in flight and
leaves a pad neutral (Output.release_all), and the person has control: the model keeps deciding on every
frame, but nothing is sent. Control returns to the model when the person has held nothing (no key, no
stick past its dead zone) and moved nothing past a dead zone for ``handback_s`` seconds, or at once on the
hand-back hotkey. The listener is read once per decision (every frame the model sees), so the engine lets
go within a frame period and an invoke of the person's first press or motion.

Whose input an event is, is decided by its source device only, never by timing (engine.actions.inputs.
human_mask): on X11 everything except the engine's own XTest slaves (XTestOutput.devices: keyboard and
pointer, so the engine's own XTest relative motion and warps are never the person's), on Windows
everything not flagged injected, on evdev everything but the engine's own uinput keyboard.

Dead zones (:data:`DEFAULT_DEADZONE`, engine-play --takeover-deadzone AXIS=VALUE,...; they do not come from
the model's sidecar: they describe the person's devices, not the model):
- relative axes (mouse_dx, mouse_dy in counts, wheel in notches): the person's net motion along the axis
  within :data:`MOTION_WINDOW_NS` reaches the value (a resting mouse's one-count jitter is not a takeover);
- the pointer (mouse_x, mouse_y, fractions of the captured area): the same, over the person's changes of
  position (the engine's own warps move the pointer too, but only the person's moves count);
- pad sticks and triggers: |value - neutral| reaches the value; a stick held there is held like a key.

With a :class:`TakeoverRecording` the run is written as an ordinary session (engine.session.SessionWriter:
the frames as the capture stored them, their timestamps, the person's actions labelled as engine-record
labels them, the person's axes framed as engine-record frames them (engine.record.labeler.AxisFramer), the
person's raw key and axis events) plus per-frame files named in meta.json["takeover"]: control.npy (uint8
(T,), 1 where the person had control at the frame's capture instant), model_actions.npy (uint8 (T, A), what
the model proposed for that frame, sent or not) and, for a model with axes, model_axes.npy (float32 (T, K),
columns as the session's axes: the model's decision on that frame in natural units; a frame the model
skipped (invoke slower than a frame) proposes no relative motion and keeps the last absolute value).
Frame 0's relative motion counts from the start of play (when the listener started). Frames are written
HOLDBACK_NS after their capture, as engine-record writes them, so late-delivered events land in their frame.

Over 400 lines on purpose: the dead zones, the control state machine and the recording are the three halves
of one feature that share its event types and its files; each is a class of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine._pacer import monotonic_ns
from engine.actions.inputs import AxisEvents, InputSource, SourcedEvents, human_mask
from engine.actions.motion import MOUSE_ABSOLUTE
from engine.actions.names import AXIS_NAMES, AXIS_NEUTRAL, is_relative
from engine.actions.outputs import Output
from engine.errors import EngineError
from engine.record.labeler import AxisFramer, Labeler
from engine.record.recorder import HOLDBACK_NS
from engine.session import SessionWriter

CONTROL_FILE = "control.npy"
MODEL_ACTIONS_FILE = "model_actions.npy"
MODEL_AXES_FILE = "model_axes.npy"

# How far an axis must move before it is the person taking over (see the module doc for the units).
DEFAULT_DEADZONE: dict[str, float] = {
    "mouse_dx": 4.0, "mouse_dy": 4.0, "wheel": 1.0, "mouse_x": 0.02, "mouse_y": 0.02,
    "pad_lx": 0.15, "pad_ly": 0.15, "pad_rx": 0.15, "pad_ry": 0.15, "pad_lt": 0.15, "pad_rt": 0.15,
}
# Relative motion and pointer moves are summed over this long: a deliberate move of a few counts comes in
# well under it (a 1000 Hz mouse sends a count a millisecond), a sensor's jitter nets out.
MOTION_WINDOW_NS = 100_000_000


def parse_deadzone(text: str | None, axes: Sequence[str]) -> dict[str, float]:
    """engine-play --takeover-deadzone 'mouse_dx=8,pad_lx=0.3': the dead zone of each of ``axes`` (the
    defaults for those not named). One clear error for a name that is not one of the axes or a bad value."""
    out = {name: DEFAULT_DEADZONE[name] for name in axes}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in AXIS_NAMES:
            raise EngineError(f"--takeover-deadzone wants AXIS=VALUE,... (e.g. mouse_dx=8), not {part.strip()!r}")
        if name not in out:
            raise EngineError(f"--takeover-deadzone {name}: the model has no such axis (its axes: "
                              f"{', '.join(axes) or 'none'})")
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        if not v > 0 or v == float("inf"):
            raise EngineError(f"--takeover-deadzone {name}={value.strip()}: the dead zone must be a positive number")
        out[name] = v
    return out


class AxisWatch:
    """Which of the person's axis events are past a dead zone (see the module doc). Feed every axis event of
    the listener, in arrival order, with the human mask; keeps at most a window of the person's motion."""

    def __init__(self, names: Sequence[str], deadzone: Mapping[str, float] | None = None,
                 window_ns: int = MOTION_WINDOW_NS) -> None:
        self.names = list(names)
        dz = {**DEFAULT_DEADZONE, **(deadzone or {})}
        self.threshold = np.array([dz[n] for n in self.names], np.float64)
        self.neutral = np.array([AXIS_NEUTRAL[n] for n in self.names], np.float64)
        self.pointer = np.array([n in MOUSE_ABSOLUTE for n in self.names], bool)
        self.moving = np.array([is_relative(n) for n in self.names], bool) | self.pointer  # summed over a window
        self.window_ns = int(window_ns)
        self.position = np.full(len(self.names), np.nan)  # the pointer's last position, whoever moved it
        self.deflected = np.zeros(len(self.names), bool)  # a pad axis the person holds past its dead zone
        self._t = np.empty(0, np.int64)  # the person's recent motion: (t, axis, delta)
        self._a = np.empty(0, np.int16)
        self._d = np.empty(0, np.float64)

    @property
    def held(self) -> bool:
        return bool(self.deflected.any())

    def feed(self, t: np.ndarray, axis: np.ndarray, value: np.ndarray, human: np.ndarray) -> tuple[int, int]:
        """(t_ns of the first of these events past a dead zone, t_ns of the last one past it or letting a stick
        back into it), 0 for none."""
        a = axis.astype(np.intp)
        v = value.astype(np.float64)
        d = v.copy()
        for i in np.flatnonzero(self.pointer[a]).tolist():  # positions -> moves, in arrival order
            before = self.position[a[i]]
            d[i] = 0.0 if np.isnan(before) else v[i] - before
            self.position[a[i]] = v[i]
        active = np.zeros(len(t), bool)
        mine = human & ~self.moving[a]  # pad axes: past the dead zone now
        active[mine] = np.abs(v[mine] - self.neutral[a[mine]]) >= self.threshold[a[mine]]
        released = np.zeros(len(t), bool)  # a stick let back into its dead zone: the person's act, as a key release
        for i in np.flatnonzero(mine).tolist():
            released[i] = self.deflected[a[i]] and not active[i]
            self.deflected[a[i]] = active[i]
        new = np.flatnonzero(human & self.moving[a])
        if len(new):
            old = len(self._t)
            ts = np.concatenate([self._t, t[new].astype(np.int64)])
            ax = np.concatenate([self._a, a[new].astype(np.int16)])
            ds = np.concatenate([self._d, d[new]])
            for k in np.unique(ax[old:]).tolist():
                sel = np.flatnonzero(ax == k)
                tk, cs = ts[sel], np.concatenate([[0.0], np.cumsum(ds[sel])])
                lo = np.searchsorted(tk, tk - self.window_ns, side="right")  # net motion over (t - W, t]
                net = np.abs(cs[1:] - cs[lo])
                crossed = sel[net >= self.threshold[k]]
                active[new[crossed[crossed >= old] - old]] = True
            keep = ts > ts[-1] - self.window_ns
            self._t, self._a, self._d = ts[keep], ax[keep], ds[keep]
        hits, acts = np.flatnonzero(active), np.flatnonzero(active | released)
        return int(t[hits[0]]) if len(hits) else 0, int(t[acts[-1]]) if len(acts) else 0


@dataclass
class TakeoverStats:
    count: int = 0  # takeovers started
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, end) t_ns, closed ones
    active_since: int = 0  # t_ns of the running takeover's first press or motion, 0 when the model drives

    def person_s(self, now_ns: int) -> float:
        total = sum(e - s for s, e in self.spans)
        if self.active_since:
            total += now_ns - self.active_since
        return total / 1e9

    def line(self, elapsed_s: float, now_ns: int) -> str:
        share = self.person_s(now_ns) / elapsed_s if elapsed_s > 0 else 0.0
        return f"takeovers {self.count}, person in control {share:.0%} of the time ({self.person_s(now_ns):.1f} s)"


def _no_axis_events() -> AxisEvents:
    empty = np.empty(0, np.int64)
    return empty, empty.astype(np.int16), empty.astype(np.float32), empty.astype(np.int32), empty.astype(np.uint8)


class Takeover:
    """The control state machine between a listener of the configured actions and axes and the engine's output.

    axes: the model's axes the listener reads (open_input(..., axes=...)), in the listener's order;
    deadzone: per axis, see the module doc (default :data:`DEFAULT_DEADZONE`).
    Thread contract: every method from the play loop's thread.
    """

    def __init__(self, inputs: InputSource, output: Output, engine_devices: list[int] | None, *,
                 n_actions: int, handback_s: float = 1.0, keep_events: bool = False,
                 say: Callable[[str], None] | None = None, axes: Sequence[str] = (),
                 deadzone: Mapping[str, float] | None = None) -> None:
        if not handback_s > 0:
            raise ValueError(f"--handback must be positive, got {handback_s:g}")
        self.inputs = inputs
        self.output = output
        self.engine_devices = set(engine_devices) if engine_devices else None
        self.handback_ns = int(handback_s * 1e9)
        self.stats = TakeoverStats()
        self.held = np.zeros(n_actions, np.uint8)  # what the person holds now
        self.watch = AxisWatch(axes, deadzone) if axes else None
        self.last_human_ns = 0
        self.say = say  # one status line at each switch of control (engine-play: stderr), off the send path
        self.keep_events = keep_events  # keep the person's events for take_events() (when recording)
        self.events: list[SourcedEvents] = []  # the person's events since the last take_events()
        self.axis_events: list[AxisEvents] = []  # the person's axis events since the last take_axis_events()

    @property
    def active(self) -> bool:
        return self.stats.active_since != 0

    def start(self) -> None:
        self.inputs.start()

    def stop(self) -> None:
        self.inputs.stop()

    def gate(self, state: np.ndarray, now_ns: int | None = None) -> np.ndarray | None:
        """The keys to send for the model's ``state``: ``state`` while the model drives, None while the person
        does (send nothing, no axis either). A takeover releases every key the engine holds, stops its motion
        in flight and centres its pad before this returns."""
        (t, a, v, dev, inj), hotkeys = self.inputs.poll_sources()
        now = monotonic_ns() if now_ns is None else now_ns
        starts: list[int] = []
        why = ""
        if len(t):
            human = human_mask((t, a, v, dev, inj), self.engine_devices)
            if human.any():
                mine = (t[human], a[human], v[human], dev[human], inj[human])
                if self.keep_events:
                    self.events.append(mine)
                for act, val in zip(mine[1].tolist(), mine[2].tolist(), strict=True):
                    self.held[act] = val
                self.last_human_ns = max(self.last_human_ns, int(mine[0][-1]))
                presses = mine[2] == 1
                if presses.any():
                    starts.append(int(mine[0][presses][0]))
                    why = "a key"
        if self.watch is not None:
            ax = self.inputs.poll_axes()
            if len(ax[0]):
                human = human_mask(ax, self.engine_devices)
                if self.keep_events and human.any():
                    self.axis_events.append(tuple(x[human] for x in ax))
                first, last = self.watch.feed(ax[0], ax[1], ax[2], human)
                if last:
                    self.last_human_ns = max(self.last_human_ns, last)
                if first and (not starts or first < starts[0]):
                    why = self.watch.names[int(ax[1][ax[0] == first][0])]
                if first:
                    starts.append(first)
        if starts and not self.active:
            self.output.release_all()  # the engine lets go (keys, motion in flight, pad) before the person drives
            self.stats.count += 1
            self.stats.active_since = min(starts)
            if self.say is not None:
                self.say(f"takeover {self.stats.count}: the person has control ({why})")
        if self.active:
            held = self.held.any() or (self.watch is not None and self.watch.held)
            quiet = not held and now - self.last_human_ns >= self.handback_ns
            if hotkeys or quiet:
                self.stats.spans.append((self.stats.active_since, now))
                self.stats.active_since = 0
                if self.say is not None:
                    s, e = self.stats.spans[-1]
                    quiet_s = f"{self.handback_ns / 1e9:g} s without the person's input"
                    what = "the hand-back key" if hotkeys else quiet_s
                    self.say(f"control back to the model after {(e - s) / 1e9:.1f} s ({what})")
        return None if self.active else state

    def take_events(self) -> SourcedEvents:
        """The person's key events since the last call, in arrival order."""
        if not self.events:
            empty = np.empty(0, np.int64)
            return empty, empty.astype(np.int16), empty.astype(np.int8), empty.astype(np.int32), empty.astype(np.uint8)
        out = tuple(np.concatenate(parts) for parts in zip(*self.events, strict=True))
        self.events = []
        return out  # type: ignore[return-value]

    def take_axis_events(self) -> AxisEvents:
        """The person's axis events since the last call, in arrival order (t_ns, axis, value, device, injected)."""
        if not self.axis_events:
            return _no_axis_events()
        out = tuple(np.concatenate(parts) for parts in zip(*self.axis_events, strict=True))
        self.axis_events = []
        return out  # type: ignore[return-value]

    def finish(self, now_ns: int | None = None) -> None:
        """Close a running takeover (the run ended while the person drove)."""
        if self.active:
            self.stats.spans.append((self.stats.active_since, monotonic_ns() if now_ns is None else now_ns))
            self.stats.active_since = 0


def control_flags(t_frames: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """uint8 per frame: 1 where a takeover span [start, end) covers the frame's capture instant."""
    out = np.zeros(len(t_frames), np.uint8)
    for s, e in spans:
        out[(t_frames >= s) & (t_frames < e)] = 1
    return out


class TakeoverRecording:
    """Writes a play run with takeovers as a session: frames from the play ring, the person's actions
    labelled by engine.record.labeler, the person's axes framed by its AxisFramer, the model's proposals and
    who had control (see the module doc). ``axes``: the session's axes (the model's), as the writer has them."""

    def __init__(self, writer: SessionWriter, n_actions: int, axes: Sequence[str] = ()) -> None:
        self.writer = writer
        self.labeler = Labeler(n_actions)
        self.axes = list(axes)
        self.framer = AxisFramer(self.axes) if self.axes else None
        self.relative = np.array([is_relative(n) for n in self.axes], bool)
        self.recorded = -1  # index of the last frame written
        self.lost = 0  # frames the ring overwrote before they were written
        self.t: list[np.ndarray] = []
        self.model: list[np.ndarray] = []
        self.model_axes: list[np.ndarray] = []
        self._buf: np.ndarray | None = None
        self._ring: Any = None
        self._first = -1  # the first decision's frame: the session starts there
        self._pending: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # frame -> proposals, until written
        self._last_keys: np.ndarray | None = None
        self._last_axes: np.ndarray | None = None
        # Named from the start, so that a run killed before close() is still known as a takeover session
        # (Session.control then says no frame was the person's, and the data tools keep none of it).
        writer.annotate("takeover", self._meta([], 0))

    def _meta(self, spans: list[tuple[int, int]], lost: int) -> dict[str, Any]:
        return {"control": CONTROL_FILE, "model_actions": MODEL_ACTIONS_FILE,
                **({"model_axes": MODEL_AXES_FILE} if self.axes else {}),
                "spans_ns": [[int(s), int(e)] for s, e in spans], "frames_lost": lost}

    def add(self, ring: Any, end: int, proposed: np.ndarray, events: SourcedEvents, *,
            proposed_axes: np.ndarray | None = None, axis_events: AxisEvents | None = None,
            now_ns: int | None = None) -> None:
        """After a decision on frame ``end``: note the model's proposal (keys and axes) for it, take the person's
        events, and write every frame published since the last write that is :data:`HOLDBACK_NS` old (as
        engine-record does: an event stamped before a frame but delivered a moment later still counts for it),
        up to the ring's window."""
        self._take(events, axis_events)
        self._ring = ring
        if self._first < 0:
            self._first = end
        self._pending[end] = (np.asarray(proposed, np.uint8).copy(),
                              None if proposed_axes is None else np.asarray(proposed_axes, np.float32).copy())
        cutoff = (monotonic_ns() if now_ns is None else now_ns) - HOLDBACK_NS
        ready = end
        while ready > max(self.recorded, self._first - 1) and int(ring.t_ns(ready)) > cutoff:
            ready -= 1
        self._write(ring, ready)

    def _take(self, events: SourcedEvents | None, axis_events: AxisEvents | None) -> None:
        if events is not None and len(events[0]):
            t_ev, a_ev, v_ev = events[:3]
            self.labeler.add_events(t_ev, a_ev, v_ev)
            self.writer.append_events(t_ev, a_ev, v_ev)
        if self.framer is not None and axis_events is not None and len(axis_events[0]):
            t_ax, a_ax, v_ax = axis_events[:3]
            self.writer.append_axis_records(self.framer.add_events(t_ax, a_ax, v_ax))

    def _write(self, ring: Any, end: int) -> None:
        """Write frames (last written, end] from the ring with their labels, axes and the model's proposals."""
        start = self.recorded + 1 if self.recorded >= 0 else self._first
        new = end - start + 1
        if new <= 0:
            return
        window = int(ring.window)
        if self._buf is None:
            self._buf = np.empty((window, *ring.frame_shape), np.uint8)
        if ring.copy_window(end, self._buf) is None:
            return  # overwritten while copying: the next decision writes these frames
        take = min(new, window)
        self.lost += new - take
        first = end - take + 1
        t = np.array([ring.t_ns(i) for i in range(first, end + 1)], np.int64)
        model, model_axes = self._proposals(first, end)
        frames = self._buf[window - take:]
        done = 0
        while done < take:
            dst = self.writer.frames_buffer(take - done)
            k = len(dst)
            dst[:] = frames[done:done + k]
            tk = t[done:done + k]
            self.writer.commit(k, tk, self.labeler.label(tk), self.framer.frame(tk) if self.framer else None)
            done += k
        self.t.append(t)
        self.model.append(model)
        self.model_axes.append(model_axes)
        self.recorded = end

    def _proposals(self, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The model's proposals for frames first..end: a frame the model decided on has its decision; one it
        skipped keeps the keys in effect then and the last absolute axis values, and proposes no relative
        motion (each decision's motion is one frame period's)."""
        keys = np.zeros((end - first + 1, self.labeler.n_actions), np.uint8)
        axes = np.zeros((end - first + 1, len(self.axes)), np.float32)
        for j, i in enumerate(range(first, end + 1)):
            got = self._pending.pop(i, None)
            if got is not None:
                self._last_keys = got[0]
                if got[1] is not None:
                    self._last_axes = got[1]
            if self._last_keys is not None:
                keys[j] = self._last_keys
            if self._last_axes is not None:
                axes[j] = self._last_axes if got is not None else np.where(self.relative, 0.0, self._last_axes)
        for i in [i for i in self._pending if i <= end]:  # frames the ring overwrote before they were written
            self._pending.pop(i)
        return keys, axes

    def close(self, spans: list[tuple[int, int]], events: SourcedEvents | None = None,
              axis_events: AxisEvents | None = None) -> dict[str, Any]:
        """Write the frames still held back (with the person's last ``events``: play has ended, no event can
        come for them now), control.npy, model_actions.npy (and model_axes.npy), name them in meta.json, close
        the session."""
        self._take(events, axis_events)
        if self._ring is not None and self._pending:
            self._write(self._ring, max(self._pending))
        t = np.concatenate(self.t) if self.t else np.empty(0, np.int64)
        n_actions = self.labeler.n_actions
        model = np.concatenate(self.model) if self.model else np.empty((0, n_actions), np.uint8)
        path = Path(self.writer.path)
        np.save(path / CONTROL_FILE, control_flags(t, spans))
        np.save(path / MODEL_ACTIONS_FILE, model)
        if self.axes:
            axes = np.concatenate(self.model_axes) if self.model_axes else np.empty((0, len(self.axes)), np.float32)
            np.save(path / MODEL_AXES_FILE, axes)
        self.writer.annotate("takeover", self._meta(spans, self.lost))
        return self.writer.close()


__all__ = [
    "CONTROL_FILE", "DEFAULT_DEADZONE", "MODEL_ACTIONS_FILE", "MODEL_AXES_FILE", "MOTION_WINDOW_NS", "AxisWatch",
    "Takeover", "TakeoverRecording", "TakeoverStats", "control_flags", "parse_deadzone",
]
