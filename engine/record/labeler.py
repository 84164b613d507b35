"""Per-frame action labels from timestamped press/release events (shared/DESIGN.md, actions.npy), and
per-frame axis values from timestamped axis events (axes.npy, :class:`AxisFramer`, native).

A frame's label for action a is 1 when a was held at the frame's capture instant, or was pressed
since the previous frame (pressed and released between two captures: a tap is never lost).
Events and frames share the engine's monotonic clock. Work per batch is O(frames + events) in NumPy;
Python runs once per event (a few per second), never per pixel and only trivially per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine import _native
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


class AxisFramer(_native.AxisFramer):
    """Stateful: feed axis events as they arrive, get each frame's axis values in capture order.

    A relative axis' value for frame i is the sum of its deltas over (t[i-1], t[i]] (frame 0: since
    :meth:`skip` last marked the start), each event counted exactly once however the frames and events
    are batched; an absolute axis' value is the last value at or before t[i] (AXIS_NEUTRAL before any).
    Sums are taken in float64, so integer counts stay exact. Events after the last frame stay queued.

    Native (native/input/axis_framer.hpp): a 1000 Hz mouse brings ~70 events to every recorder wake-up,
    and a native listener hands them over in one call (``Listener.pop_axes_into``) that also returns the
    axis log's records; :func:`frame_axes_reference` is the definition it is tested against.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__([is_relative(n) for n in self.names], [float(AXIS_NEUTRAL[n]) for n in self.names])


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
