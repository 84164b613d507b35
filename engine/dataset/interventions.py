"""Which windows of a takeover session (engine-play --takeover --record) are training data, and how much.

In a takeover session the person's actions (actions.npy) are a label only where the person had control
(control.npy == 1): while the model drove, the person pressed nothing, and "nothing" is not what they
would have done. So from such a session only intervention windows are kept (the human-gated DAgger
rule): windows whose label frame the person controlled, plus, with ``before`` N, the N frames before each
takeover (where the model went wrong), labelled with the person's actions at the takeover's first frame
(what the person did about it). Sessions without control.npy are ordinary recordings and kept whole.
Axes (mouse motion, pad sticks) follow the same rule: a takeover session's axis targets are the person's
axes on controlled frames, and on the ``before`` frames the person's axes of the takeover's first frame
(for mouse_dx, the motion the person made there: what the model should have made).

``weight`` W repeats every intervention window W times (W >= 1, an integer): the corrections count
more against the ordinary sessions they are mixed with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.dataset.spec import DatasetError


@dataclass(frozen=True)
class Interventions:
    weight: int = 1
    before: int = 0

    @classmethod
    def parse(cls, text: str | None, before: int = 0) -> Interventions:
        """``only`` or ``weight=W`` (engine-dataset --interventions), with --before N."""
        if before < 0:
            raise DatasetError(f"--before must be >= 0, got {before}")
        if text is None or text == "only":
            return cls(1, before)
        if text.startswith("weight="):
            try:
                w = int(text.split("=", 1)[1])
            except ValueError:
                w = 0
            if w >= 1:
                return cls(w, before)
        raise DatasetError(f"--interventions wants only or weight=W (an integer >= 1), not {text!r}")


def intervention_frames(control: np.ndarray, actions: np.ndarray, before: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask (T,) bool of intervention frames, label rows (T, A) uint8): the person's actions on controlled
    frames; on the ``before`` frames ahead of each takeover, the actions of its first controlled frame."""
    mask, rows = _spread(control, np.array(actions, dtype=np.uint8, copy=True), before)
    return mask, rows


def intervention_axes(control: np.ndarray, axes: np.ndarray, before: int) -> np.ndarray:
    """Axis rows (T, K) float32 as :func:`intervention_frames` gives label rows: the person's axes on controlled
    frames; on the ``before`` frames ahead of each takeover, the axes of its first controlled frame."""
    return _spread(control, np.array(axes, dtype=np.float32, copy=True), before)[1]


def _spread(control: np.ndarray, rows: np.ndarray, before: int) -> tuple[np.ndarray, np.ndarray]:
    """(intervention mask, rows with each takeover's first row copied over the ``before`` frames ahead of it)."""
    c = np.asarray(control).astype(bool)
    mask = c.copy()
    if before > 0 and c.any():
        starts = np.flatnonzero(c & ~np.concatenate([[False], c[:-1]]))
        for s in starts.tolist():
            lo = max(0, s - before)
            free = ~c[lo:s]  # never over another takeover's frames
            rows[lo:s][free] = rows[s]
            mask[lo:s] |= free
    return mask, rows


def select(ends: np.ndarray, offset: int, control: np.ndarray | None, actions: np.ndarray,
           how: Interventions, axes: np.ndarray | None = None,
           ) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray | None]:
    """For one session's window ends: (kept ends, label rows for all frames or None to keep actions.npy,
    windows that are interventions, axis rows for all frames or None to keep axes.npy). Ordinary sessions
    (control None) keep every window; ``axes`` (the session's axes.npy) only matter for takeover sessions."""
    if control is None:
        return ends, None, 0, None
    mask, rows = intervention_frames(control, actions, how.before)
    axis_rows = intervention_axes(control, axes, how.before) if axes is not None and axes.shape[1] else None
    kept = ends[mask[ends + offset]]
    return np.repeat(kept, how.weight), rows, len(kept), axis_rows


__all__ = ["Interventions", "intervention_axes", "intervention_frames", "select"]
