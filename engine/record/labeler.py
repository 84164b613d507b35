"""Per-frame action labels from timestamped press/release events (shared/DESIGN.md, actions.npy), and
per-frame axis values from timestamped axis events (axes.npy, :class:`AxisFramer`).

A frame's label for action a is 1 when a was held at the frame's capture instant, or was pressed
since the previous frame (pressed and released between two captures: a tap is never lost).
Events and frames share the engine's monotonic clock. Work per batch is O(frames + events) in NumPy;
Python runs once per event (a few per second), never per pixel and only trivially per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.actions.names import AXIS_NEUTRAL, is_relative


class Labeler:
    """Stateful: feed events as they arrive, label frames in capture order."""

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions
        self.held = np.zeros(n_actions, np.uint8)
        self._t = np.empty(0, np.int64)
        self._a = np.empty(0, np.int16)
        self._v = np.empty(0, np.int8)

    def add_events(self, t_ns: np.ndarray, action: np.ndarray, value: np.ndarray) -> None:
        """Queue events (time order, actions in [0, n_actions)) until the frames they affect arrive."""
        if len(t_ns):
            self._t = np.concatenate([self._t, t_ns.astype(np.int64, copy=False)])
            self._a = np.concatenate([self._a, action.astype(np.int16, copy=False)])
            self._v = np.concatenate([self._v, value.astype(np.int8, copy=False)])

    def label(self, t_frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Labels (k, A) uint8 for frames captured at t_frames (increasing), continuing from the last call.

        Events after the last frame stay queued for the next call.
        """
        k = len(t_frames)
        labels = out if out is not None else np.empty((k, self.n_actions), np.uint8)
        labels[:] = self.held
        if k == 0 or len(self._t) == 0:
            return labels
        n = int(np.searchsorted(self._t, t_frames[-1], side="right"))
        if n:
            t, a, v = self._t[:n], self._a[:n], self._v[:n]
            # An event takes effect from the first frame captured at or after it.
            first = np.searchsorted(t_frames, t, side="left")
            for f, act, val in zip(first.tolist(), a.tolist(), v.tolist(), strict=True):
                labels[f:, act] = val
                self.held[act] = val
            presses = v == 1
            labels[first[presses], a[presses]] = 1  # pressed since the previous frame
            self._t, self._a, self._v = self._t[n:], self._a[n:], self._v[n:]
        return labels


def label_reference(t_frames: np.ndarray, t_ev: np.ndarray, a_ev: np.ndarray, v_ev: np.ndarray,
                    n_actions: int) -> np.ndarray:
    """The definition, one frame at a time (slow; the test oracle)."""
    out = np.zeros((len(t_frames), n_actions), np.uint8)
    held = np.zeros(n_actions, np.uint8)
    prev = np.iinfo(np.int64).min
    for i, tf in enumerate(t_frames):
        pressed = np.zeros(n_actions, bool)
        for t, a, v in zip(t_ev, a_ev, v_ev, strict=True):
            if prev < t <= tf:
                held[a] = v
                pressed[a] |= v == 1
        out[i] = held | pressed
        prev = tf
    return out


class AxisFramer:
    """Stateful: feed axis events as they arrive, get each frame's axis values in capture order.

    A relative axis' value for frame i is the sum of its deltas over (t[i-1], t[i]] (frame 0: since
    :meth:`skip` last marked the start), each event counted exactly once however the frames and events
    are batched; an absolute axis' value is the last value at or before t[i] (AXIS_NEUTRAL before any).
    Sums are taken in float64, so integer counts stay exact. Events after the last frame stay queued.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.relative = np.array([is_relative(n) for n in self.names], bool)
        self.value = np.array([AXIS_NEUTRAL[n] for n in self.names], np.float64)  # absolute axes' state
        self._any_absolute = not bool(self.relative.all())
        self._t = np.empty(0, np.int64)
        self._a = np.empty(0, np.int16)
        self._v = np.empty(0, np.float64)
        self._skips: list[tuple[int, int]] = []  # (t0, t1]: relative motion there belongs to no frame

    @property
    def queued(self) -> int:
        return len(self._t)

    def add_events(self, t_ns: np.ndarray, axis: np.ndarray, value: np.ndarray) -> None:
        """Queue events (axis in [0, K)) until the frames they fall in arrive; out-of-order ones (several
        evdev devices) are sorted in."""
        if not len(t_ns):
            return
        # A few NumPy calls per batch whatever its size: a 1000 Hz mouse comes ~100 events per writer wake-up.
        t, a, v = t_ns.astype(np.int64, copy=False), axis.astype(np.int16, copy=False), value.astype(np.float64)
        if len(self._t):
            if t[0] < self._t[-1] or (len(t) > 1 and np.any(t[1:] < t[:-1])):
                t, a, v = np.concatenate([self._t, t]), np.concatenate([self._a, a]), np.concatenate([self._v, v])
                order = np.argsort(t, kind="stable")
                t, a, v = t[order], a[order], v[order]
            else:
                t, a, v = np.concatenate([self._t, t]), np.concatenate([self._a, a]), np.concatenate([self._v, v])
        elif len(t) > 1 and np.any(t[1:] < t[:-1]):
            order = np.argsort(t, kind="stable")
            t, a, v = t[order], a[order], v[order]
        self._t, self._a, self._v = t, a, v
        if self._skips:
            self._drop_skipped()

    def skip(self, t0: int, t1: int) -> None:
        """Relative motion in (t0, t1] is in no frame (before capture started, or during a pause), also
        if its events arrive later; absolute values there still set the state."""
        self._skips.append((t0, t1))
        self._drop_skipped()

    def settle(self, t_ns: int) -> None:
        """Fold queued events at or before t_ns into the state, for when no frame can come before t_ns
        (waiting for the start hotkey, paused with the queue drained): memory stays flat meanwhile."""
        n = int(np.searchsorted(self._t, t_ns, side="right"))
        self._fold(n)

    def _fold(self, n: int) -> None:
        absolute = ~self.relative[self._a[:n]]
        for axis, v in zip(self._a[:n][absolute].tolist(), self._v[:n][absolute].tolist(), strict=True):
            self.value[axis] = v
        self._t, self._a, self._v = self._t[n:], self._a[n:], self._v[n:]

    def _drop_skipped(self) -> None:
        if not self._skips or not len(self._t):
            return
        keep = np.ones(len(self._t), bool)
        rel = self.relative[self._a]
        for t0, t1 in self._skips:
            keep &= ~(rel & (self._t > t0) & (self._t <= t1))
        self._t, self._a, self._v = self._t[keep], self._a[keep], self._v[keep]

    def frame(self, t_frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Axis values (k, K) float32 for frames captured at t_frames (increasing), continuing from the
        last call."""
        k, n_axes = len(t_frames), len(self.names)
        values = out if out is not None else np.empty((k, n_axes), np.float32)
        if k == 0:
            return values
        acc = np.zeros((k, n_axes), np.float64)
        if self._any_absolute:
            acc[:, ~self.relative] = self.value[~self.relative]
        n = int(np.searchsorted(self._t, t_frames[-1], side="right"))
        if n:
            t, a, v = self._t[:n], self._a[:n], self._v[:n]
            first = np.searchsorted(t_frames, t, side="left")  # the frame each event falls in
            # Per (frame, axis) sums in one bincount (np.add.at is an order of magnitude slower).
            rel = self.relative[a]
            cell = first * n_axes + a
            acc += np.bincount(cell[rel], weights=v[rel], minlength=k * n_axes).reshape(k, n_axes)
            for axis in np.unique(a[~rel]).tolist() if self._any_absolute else ():
                mine = a == axis
                frames_of, vals = first[mine], v[mine]
                # The last event at or before each frame (frames_of is sorted: events are in time order).
                last = np.searchsorted(frames_of, np.arange(k), side="right") - 1
                had = last >= 0
                acc[had, axis] = vals[last[had]]
                self.value[axis] = vals[-1]
            self._t, self._a, self._v = self._t[n:], self._a[n:], self._v[n:]
        values[:] = acc
        last_t = int(t_frames[-1])
        self._skips = [s for s in self._skips if s[1] > last_t]  # older ones can match no queued event
        return values


def frame_axes_reference(t_frames: np.ndarray, t_ev: np.ndarray, a_ev: np.ndarray, v_ev: np.ndarray,
                         names: Sequence[str], start_ns: int) -> np.ndarray:
    """The definition, one frame at a time (slow; the test oracle). Relative motion counts from start_ns."""
    out = np.zeros((len(t_frames), len(names)), np.float32)
    state = np.array([AXIS_NEUTRAL[n] for n in names], np.float64)
    prev = start_ns
    for i, tf in enumerate(t_frames):
        row = np.zeros(len(names), np.float64)
        for t, a, v in zip(t_ev, a_ev, v_ev, strict=True):
            if is_relative(names[a]):
                if prev < t <= tf:
                    row[a] += v
            elif t <= tf:
                state[a] = v
        for j, n in enumerate(names):
            if not is_relative(n):
                row[j] = state[j]
        out[i] = row
        state[:] = [AXIS_NEUTRAL[n] for n in names]
        prev = tf
    return out


__all__ = ["AxisFramer", "Labeler", "frame_axes_reference", "label_reference"]
