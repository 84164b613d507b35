"""Train / validation / test splits that never share a frame.

By session: whole sessions go to one part, longest first to the part furthest below its share of the
frames; every part with a nonzero fraction gets at least one session.

By time: each session is cut into ``blocks`` equal blocks and each block into consecutive ranges of frames
in the parts' proportions (train first). A window belongs to the part whose range holds its whole
footprint (all its frames and its label frame); a window straddling two ranges belongs to none and is
dropped. So the windows of different parts are at least a window apart and no frame is in two parts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from engine.dataset.spec import DatasetError

SplitBy = Literal["session", "time"]
PART_NAMES = ("train", "val", "test")


def parse_fractions(text: str) -> tuple[float, ...]:
    """'0.8,0.1,0.1' -> (0.8, 0.1, 0.1); see :func:`check_fractions`."""
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise DatasetError(f"split {text!r} is not comma-separated fractions like 0.8,0.1,0.1") from None
    return check_fractions(values)


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """1 to 3 fractions (train, val, test), each >= 0, train > 0, summing to 1."""
    values = tuple(float(f) for f in fractions)
    if not 1 <= len(values) <= len(PART_NAMES):
        raise DatasetError(f"a split has 1 to 3 fractions (train,val,test), got {len(values)}")
    if any(not (math.isfinite(f) and f >= 0) for f in values) or values[0] <= 0:
        raise DatasetError(f"split fractions must be >= 0 with train > 0, got {','.join(map(str, values))}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise DatasetError(f"split fractions must sum to 1, got {','.join(map(str, values))} = {sum(values):g}")
    return values


def by_session(lengths: Sequence[int], fractions: Sequence[float], seed: int | None) -> np.ndarray:
    """(S,) part index of each session.

    Sessions are dealt longest first (``seed`` orders sessions of equal length), each to the part furthest
    below its share of the frames, except that the last sessions go to parts that would otherwise stay
    empty: so each nonzero part gets a session and the fractions are met as closely as whole sessions allow.
    """
    fr = check_fractions(fractions)
    need = sum(f > 0 for f in fr)
    if len(lengths) < need:
        raise DatasetError(
            f"a split by session into {need} parts needs at least {need} sessions, got {len(lengths)}; "
            "record more sessions or split by time"
        )
    n = np.asarray(lengths, dtype=np.int64)
    shuffled = np.random.default_rng(seed).permutation(len(n))
    order = shuffled[np.argsort(-n[shuffled], kind="stable")]
    target = np.asarray(fr) * float(n.sum())
    assigned = np.zeros(len(fr))
    empty = {p for p, f in enumerate(fr) if f > 0}
    part = np.empty(len(n), np.int64)
    for k, s in enumerate(order.tolist()):
        allowed = sorted(empty) if len(n) - k <= len(empty) else [p for p, f in enumerate(fr) if f > 0]
        p = max(allowed, key=lambda q: (target[q] - assigned[q], -q))
        part[s] = p
        assigned[p] += n[s]
        empty.discard(p)
    return part


def time_cuts(length: int, fractions: Sequence[float], blocks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ranges of one session: ``cuts`` (R+1,) ascending frame boundaries and ``parts`` (R,), range r =
    frames [cuts[r], cuts[r+1]) belonging to part ``parts[r]``."""
    fr = check_fractions(fractions)
    if blocks < 1:
        raise DatasetError(f"blocks must be >= 1, got {blocks}")
    cum = np.concatenate(([0.0], np.cumsum(fr)))
    cum[-1] = 1.0  # the last range ends exactly at the block's end
    cuts, parts = [0], []
    for b in range(blocks):
        for p in range(len(fr)):
            cuts.append(round((b + cum[p + 1]) / blocks * length))
            parts.append(p)
    return np.array(cuts, np.int64), np.array(parts, np.int64)


def by_time(
    sess: np.ndarray, lo: np.ndarray, hi: np.ndarray, lengths: Sequence[int], fractions: Sequence[float],
    blocks: int = 1,
) -> tuple[np.ndarray, list[dict[str, list[list[int]]]]]:
    """(N,) part of each window (-1: it straddles two ranges) given its footprint frames [lo, hi], and
    per session {part name: [[start, end), ...]} (what the spec records)."""
    part = np.full(sess.shape, -1, np.int64)
    ranges: list[dict[str, list[list[int]]]] = []
    for s, length in enumerate(lengths):
        cuts, parts = time_cuts(int(length), fractions, blocks)
        sel = np.flatnonzero(sess == s)
        r_lo = np.searchsorted(cuts, lo[sel], side="right") - 1
        r_hi = np.searchsorted(cuts, hi[sel], side="right") - 1
        inside = r_lo == r_hi
        part[sel[inside]] = parts[r_lo[inside]]
        per: dict[str, list[list[int]]] = {name: [] for name in PART_NAMES[: len(fractions)]}
        for r in range(len(parts)):
            if cuts[r + 1] > cuts[r]:
                per[PART_NAMES[parts[r]]].append([int(cuts[r]), int(cuts[r + 1])])
        ranges.append(per)
    return part, ranges


__all__ = ["PART_NAMES", "SplitBy", "by_session", "by_time", "check_fractions", "parse_fractions", "time_cuts"]
