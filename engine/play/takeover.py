"""Take over while the model plays (engine-play --takeover): the person's corrections, and who had control.

The model plays. The moment the person presses any configured action, the engine releases every key it
holds and the person has control: the model keeps deciding on every frame, but nothing is sent. Control
returns to the model when the person has pressed nothing and held nothing for ``handback_s`` seconds, or at
once on the hand-back hotkey. The listener is read once per decision (every frame the model sees), so
the engine lets go within a frame period and an invoke of the person's first press.

Whose input an event is, is decided by its source device only, never by timing (engine.actions.inputs.
human_mask): on X11 everything except the engine's own XTest slaves (XTestOutput.devices), on Windows
everything not flagged injected, on evdev everything but the engine's own uinput keyboard.

With a :class:`TakeoverRecording` the run is written as an ordinary session (engine.session.SessionWriter:
the frames as the capture stored them, their timestamps, the person's actions labelled as engine-record
labels them, the person's raw events) plus two per-frame files named in meta.json["takeover"]:
control.npy (uint8 (T,), 1 where the person had control at the frame's capture instant) and
model_actions.npy (uint8 (T, A), what the model proposed for that frame, sent or not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine._pacer import monotonic_ns
from engine.actions.inputs import InputSource, SourcedEvents, human_mask
from engine.actions.outputs import Output
from engine.record.labeler import Labeler
from engine.session import SessionWriter

CONTROL_FILE = "control.npy"
MODEL_ACTIONS_FILE = "model_actions.npy"


@dataclass
class TakeoverStats:
    count: int = 0  # takeovers started
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, end) t_ns, closed ones
    active_since: int = 0  # t_ns of the running takeover's first press, 0 when the model drives

    def person_s(self, now_ns: int) -> float:
        total = sum(e - s for s, e in self.spans)
        if self.active_since:
            total += now_ns - self.active_since
        return total / 1e9

    def line(self, elapsed_s: float, now_ns: int) -> str:
        share = self.person_s(now_ns) / elapsed_s if elapsed_s > 0 else 0.0
        return f"takeovers {self.count}, person in control {share:.0%} of the time ({self.person_s(now_ns):.1f} s)"


class Takeover:
    """The control state machine between a listener of the configured actions and the engine's output.

    Thread contract: every method from the play loop's thread.
    """

    def __init__(self, inputs: InputSource, output: Output, engine_devices: list[int] | None, *,
                 n_actions: int, handback_s: float = 1.0, keep_events: bool = False,
                 say: Callable[[str], None] | None = None) -> None:
        if not handback_s > 0:
            raise ValueError(f"--handback must be positive, got {handback_s:g}")
        self.inputs = inputs
        self.output = output
        self.engine_devices = set(engine_devices) if engine_devices else None
        self.handback_ns = int(handback_s * 1e9)
        self.stats = TakeoverStats()
        self.held = np.zeros(n_actions, np.uint8)  # what the person holds now
        self.last_human_ns = 0
        self.say = say  # one status line at each switch of control (engine-play: stderr), off the send path
        self.keep_events = keep_events  # keep the person's events for take_events() (when recording)
        self.events: list[SourcedEvents] = []  # the person's events since the last take_events()

    @property
    def active(self) -> bool:
        return self.stats.active_since != 0

    def start(self) -> None:
        self.inputs.start()

    def stop(self) -> None:
        self.inputs.stop()

    def gate(self, state: np.ndarray, now_ns: int | None = None) -> np.ndarray | None:
        """The keys to send for the model's ``state``: ``state`` while the model drives, None while the person
        does (send nothing). A takeover releases every key the engine holds before this returns."""
        (t, a, v, dev, inj), hotkeys = self.inputs.poll_sources()
        now = monotonic_ns() if now_ns is None else now_ns
        if len(t):
            human = human_mask((t, a, v, dev, inj), self.engine_devices)
            if human.any():
                mine = (t[human], a[human], v[human], dev[human], inj[human])
                if self.keep_events:
                    self.events.append(mine)
                for act, val in zip(mine[1].tolist(), mine[2].tolist(), strict=True):
                    self.held[act] = val
                self.last_human_ns = int(mine[0][-1])
                presses = mine[2] == 1
                if presses.any() and not self.active:
                    self.output.release_all()  # the engine lets go before the person drives
                    self.stats.count += 1
                    self.stats.active_since = int(mine[0][presses][0])
                    if self.say is not None:
                        self.say(f"takeover {self.stats.count}: the person has control")
        if self.active:
            quiet = not self.held.any() and now - self.last_human_ns >= self.handback_ns
            if hotkeys or quiet:
                self.stats.spans.append((self.stats.active_since, now))
                self.stats.active_since = 0
                if self.say is not None:
                    s, e = self.stats.spans[-1]
                    why = "the hand-back key" if hotkeys else f"{self.handback_ns / 1e9:g} s without the person's input"
                    self.say(f"control back to the model after {(e - s) / 1e9:.1f} s ({why})")
        return None if self.active else state

    def take_events(self) -> SourcedEvents:
        """The person's events since the last call, in arrival order."""
        if not self.events:
            empty = np.empty(0, np.int64)
            return empty, empty.astype(np.int16), empty.astype(np.int8), empty.astype(np.int32), empty.astype(np.uint8)
        out = tuple(np.concatenate(parts) for parts in zip(*self.events, strict=True))
        self.events = []
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
    labelled by engine.record.labeler, the model's proposals and who had control (see the module doc)."""

    def __init__(self, writer: SessionWriter, n_actions: int) -> None:
        self.writer = writer
        self.labeler = Labeler(n_actions)
        self.recorded = -1  # index of the last frame written
        self.lost = 0  # frames the ring overwrote before they were written
        self.t: list[np.ndarray] = []
        self.model: list[np.ndarray] = []
        self._buf: np.ndarray | None = None
        # Named from the start, so that a run killed before close() is still known as a takeover session
        # (Session.control then says no frame was the person's, and the data tools keep none of it).
        writer.annotate("takeover", {"control": CONTROL_FILE, "model_actions": MODEL_ACTIONS_FILE, "spans_ns": [],
                                     "frames_lost": 0})

    def add(self, ring: Any, end: int, proposed: np.ndarray, events: SourcedEvents) -> None:
        """After a decision on frame ``end``: write every frame published since the last call (up to the ring's
        window), label them with the person's events, note the model's proposal for each."""
        t_ev, a_ev, v_ev, _, _ = events
        self.labeler.add_events(t_ev, a_ev, v_ev)
        if len(t_ev):
            self.writer.append_events(t_ev, a_ev, v_ev)
        new = end - self.recorded if self.recorded >= 0 else 1
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
        # Frames before the decision still carry the previous proposal (what was in effect then).
        prev = self.model[-1][-1] if self.model else proposed
        model = np.repeat(prev[None, :], take, axis=0).astype(np.uint8)
        model[-1] = proposed
        frames = self._buf[window - take:]
        done = 0
        while done < take:
            dst = self.writer.frames_buffer(take - done)
            k = len(dst)
            dst[:] = frames[done:done + k]
            self.writer.commit(k, t[done:done + k], self.labeler.label(t[done:done + k]))
            done += k
        self.t.append(t)
        self.model.append(model)
        self.recorded = end

    def close(self, spans: list[tuple[int, int]]) -> dict[str, Any]:
        """Write control.npy and model_actions.npy, name them in meta.json, close the session."""
        t = np.concatenate(self.t) if self.t else np.empty(0, np.int64)
        n_actions = self.labeler.n_actions
        model = np.concatenate(self.model) if self.model else np.empty((0, n_actions), np.uint8)
        path = Path(self.writer.path)
        np.save(path / CONTROL_FILE, control_flags(t, spans))
        np.save(path / MODEL_ACTIONS_FILE, model)
        self.writer.annotate("takeover", {
            "control": CONTROL_FILE, "model_actions": MODEL_ACTIONS_FILE,
            "spans_ns": [[int(s), int(e)] for s, e in spans], "frames_lost": self.lost,
        })
        return self.writer.close()


__all__ = ["CONTROL_FILE", "MODEL_ACTIONS_FILE", "Takeover", "TakeoverRecording", "TakeoverStats", "control_flags"]
