"""Which windows of a takeover session (engine-play --takeover --record) are training data, and how much.

In a takeover session the person's actions (actions.npy) are a label only where the person had control
(control.npy == 1): while the model drove, the person pressed nothing, and "nothing" is not what they
would have done. So from such a session only intervention windows are kept (the human-gated DAgger
rule): windows whose label frame the person controlled, plus, with ``before`` N, the N frames before each
takeover (where the model went wrong), labelled with the person's actions at the takeover's first frame
(what the person did about it). Sessions without control.npy are ordinary recordings and kept whole.

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
    c = np.asarray(control).astype(bool)
    rows = np.array(actions, dtype=np.uint8, copy=True)
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
           how: Interventions) -> tuple[np.ndarray, np.ndarray | None, int]:
    """For one session's window ends: (kept ends, label rows for all frames or None to keep actions.npy,
    windows that are interventions). Ordinary sessions (control None) keep every window."""
    if control is None:
        return ends, None, 0
    mask, rows = intervention_frames(control, actions, how.before)
    kept = ends[mask[ends + offset]]
    return np.repeat(kept, how.weight), rows, len(kept)


__all__ = ["Interventions", "intervention_frames", "select"]
