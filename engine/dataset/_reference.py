"""Plain NumPy twins of the Numba kernels in :mod:`engine.dataset.kernels`: the test oracle.

Written for clarity, not speed, and independently of the kernels' loop structure (whole-array NumPy
where the kernels walk chunks), so a shared mistake is unlikely. Same arguments, same results, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def segment_bounds(timestamps: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """Twin of kernels.segment_bounds."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(1, np.int64)
    d = np.diff(ts)
    breaks = np.flatnonzero((d > max_gap_ns) | (d <= 0)) + 1
    return np.concatenate(([0], breaks, [ts.size])).astype(np.int64)


def window_ends(bounds: np.ndarray, span: int, stride: int = 1, offset: int = 0) -> np.ndarray:
    """Twin of kernels.window_ends: every candidate end, kept when its frames and label fit in its run."""
    out = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        first = max(a + span - 1, a - offset)
        t = np.arange(first, b, stride, dtype=np.int64)
        keep = (t - span + 1 >= a) & (t + offset >= a) & (t + offset < b)
        out.append(t[keep])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def balance_select(classes: np.ndarray, target: np.ndarray, keys: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Twin of kernels.balance_select."""
    classes = np.asarray(classes, dtype=np.int64)
    order = np.lexsort((keys, classes))  # by class, then by key; ties by index (lexsort is stable)
    picked = []
    used = 0
    for c, k in enumerate(np.asarray(target, dtype=np.int64).tolist()):
        by_key = order[classes[order] == c]
        if k <= by_key.size:
            picked.append(by_key[:k])
        else:
            members = np.flatnonzero(classes == c)
            extra = np.minimum((draws[used : used + k - members.size] * members.size).astype(np.int64),
                               members.size - 1)
            used += k - members.size
            picked.append(np.concatenate((members, members[extra])))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def gather(frames: Sequence[np.ndarray], sess: np.ndarray, ends: np.ndarray, window: int, skip: int,
           dtype: type = np.uint8, lut: np.ndarray | None = None) -> np.ndarray:
    """Twin of kernels.gather: fancy indexing per window; float32 through the lookup table."""
    rows = []
    for s, e in zip(np.asarray(sess).tolist(), np.asarray(ends).tolist(), strict=True):
        idx = e - (window - 1 - np.arange(window)) * skip
        rows.append(np.asarray(frames[s])[idx])
    shape = (len(rows), window, *frames[0].shape[1:])
    x = np.stack(rows) if rows else np.zeros(shape, np.uint8)
    if dtype == np.float32:
        # engine-play's definition (Model.input_lut): pixel * multiply + add in float64, rounded once.
        default = (np.arange(256, dtype=np.float64) * (1.0 / 255.0) + 0.0).astype(np.float32)
        table = default if lut is None else lut
        return table[x]
    return x
