"""Class balancing: under- and/or oversample windows toward a target class distribution.

The classes are the combo classes, or for multi-hot labels the key combinations (the multi-hot row as a
whole); with axis targets, a class is the key class together with each axis' sign (or its bin:
:func:`with_axes`), so "steering left" and "steering right" are balanced like two keys. Target counts
per class follow from the counts, the target weights (``"uniform"`` or one weight
per class, 0 drops a class) and the mode:

``under``  no class grows: total = min over classes of count / p, target = floor(total * p)
``over``   no class shrinks: total = max over classes of count / p, target = max(round(total * p), count)
``both``   the number of windows stays: target = N * p, rounded so that they sum to N

A class with no windows cannot be sampled and gets no share (its weight is dropped, the rest
renormalised). Which windows are kept is drawn by :func:`engine.dataset.kernels.balance_select` from a
``numpy.random.Generator`` seeded with ``seed``: the same seed gives the same selection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.axes_spec import AxisSpec
from engine.dataset.kernels import balance_select
from engine.dataset.spec import DatasetError

BalanceMode = Literal["under", "over", "both"]
Weights = Literal["uniform"] | Mapping[str, float] | Sequence[float]
MODES: tuple[str, ...] = ("under", "over", "both")


@dataclass(frozen=True)
class BalanceReport:
    """What balancing did: per class name, windows before and after."""

    mode: str
    weights: dict[str, float]
    seed: int | None
    before: dict[str, int]
    after: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "weights": self.weights, "seed": self.seed, "before": self.before,
                "after": self.after}

    def lines(self) -> list[str]:
        """One line per class: 'name: before -> after'."""
        width = max((len(n) for n in self.before), default=0)
        return [f"{n:<{width}}  {self.before[n]:>9} -> {self.after[n]:>9}" for n in self.before]


AxisBalance = Literal["sign", "bin", "none"]


def with_axes(ids: np.ndarray, names: Sequence[str], axes: Sequence[AxisSpec], targets: np.ndarray,
              by: AxisBalance = "sign") -> tuple[np.ndarray, list[str]]:
    """Key class ids (N,) and names, and encoded axis targets (N, K) -> joint class ids (N,) and names
    "keys|axis:bucket|..." of the combinations observed, in order of first key class then buckets. by:
    "sign" (each axis negative / zero / positive: few classes, e.g. steering left, straight, right), "bin"
    (each binned axis' bin: many classes, for a lot of data) or "none" (the key classes alone)."""
    if by == "none" or not axes:
        return np.asarray(ids, np.int64), list(names)
    cols = [np.asarray(ids, np.int64)] + [a.bucket(targets[:, k], by) for k, a in enumerate(axes)]
    table = np.stack(cols, axis=1)
    combos, joint = np.unique(table, axis=0, return_inverse=True)
    bucket_names = [a.bucket_names(by) for a in axes]
    out = ["|".join([names[int(c[0])], *(f"{a.name}:{bn[int(b)]}" for a, bn, b in zip(axes, bucket_names, c[1:],
                                                                                       strict=True))])
           for c in combos]
    return np.asarray(joint, np.int64).reshape(-1), out


def axis_counts(axes: Sequence[AxisSpec], targets: np.ndarray) -> dict[str, dict[str, int]]:
    """Per axis, windows per bucket (bin centre, or sign - 0 +) of encoded targets (N, K): the histogram the
    export records and the report shows."""
    out = {}
    for k, a in enumerate(axes):
        names = a.bucket_names()
        counts = np.bincount(a.bucket(targets[:, k]), minlength=len(names))
        out[a.name] = {n: int(c) for n, c in zip(names, counts.tolist(), strict=True)}
    return out


def parse_weights(text: str) -> Weights:
    """'uniform' or 'none=1,w=2,a=2' (class name = weight)."""
    if text.strip().lower() == "uniform":
        return "uniform"
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition("=")
        try:
            w = float(value)
        except ValueError:
            w = math.nan
        if not sep or not name or not (w >= 0 and math.isfinite(w)):
            raise DatasetError(f"balance target {part!r} is not CLASS=WEIGHT with a weight >= 0 (or use uniform)")
        out[name.strip()] = w
    if not out:
        raise DatasetError("the balance target is empty; use uniform or CLASS=WEIGHT,...")
    return out


def weight_vector(weights: Weights, names: Sequence[str]) -> np.ndarray:
    """(C,) float64 weights in the order of ``names``. A mapping must name every class."""
    if isinstance(weights, str):
        if weights != "uniform":
            raise DatasetError(f"balance target {weights!r} is not 'uniform' or per-class weights")
        return np.ones(len(names))
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        missing = [n for n in names if n not in weights]
        if unknown or missing:
            what = f"names unknown class {unknown[0]!r}" if unknown else f"misses class {missing[0]!r}"
            raise DatasetError(f"the balance target {what}; the classes are {', '.join(names)}")
        vec = np.array([float(weights[n]) for n in names])
    else:
        vec = np.asarray(weights, dtype=np.float64)
        if vec.shape != (len(names),):
            raise DatasetError(f"the balance target has {vec.size} weights for {len(names)} classes")
    if not np.isfinite(vec).all() or (vec < 0).any():
        raise DatasetError("balance weights must be finite and >= 0")
    return vec


def target_counts(counts: np.ndarray, weights: np.ndarray, mode: BalanceMode) -> np.ndarray:
    """(C,) int64 windows per class after balancing (see the module docs)."""
    if mode not in MODES:
        raise DatasetError(f"balance mode must be one of {', '.join(MODES)}, not {mode!r}")
    counts = np.asarray(counts, dtype=np.int64)
    p = np.where(counts > 0, weights, 0.0)
    if p.sum() <= 0:
        raise DatasetError("the balance target gives no weight to any class that has windows")
    p = p / p.sum()
    on = p > 0
    out = np.zeros_like(counts)
    if mode == "under":
        total = float(np.min(counts[on] / p[on]))
        # The class that sets the total must keep exactly its count despite rounding in total * p.
        out[on] = np.minimum(np.floor(total * p[on] * (1 + 1e-12)).astype(np.int64), counts[on])
    elif mode == "over":
        total = float(np.max(counts[on] / p[on]))
        out[on] = np.maximum(np.round(total * p[on]).astype(np.int64), counts[on])
    else:
        n = int(counts.sum())
        exact = n * p
        out = np.floor(exact).astype(np.int64)
        rest = n - int(out.sum())
        if rest:  # largest remainders first; ties to the lower class index
            order = np.lexsort((np.arange(len(p)), -(exact - out)))
            out[order[:rest]] += 1
    return out


def balance(
    classes: np.ndarray, names: Sequence[str], weights: Weights, mode: BalanceMode, seed: int | None
) -> tuple[np.ndarray, BalanceReport]:
    """Windows to keep (ascending indices into ``classes``, repeated when oversampled) and the report.

    classes: (N,) class index of each window in [0, len(names)).
    """
    cls = np.asarray(classes, dtype=np.int64)
    w = weight_vector(weights, names)
    counts = np.bincount(cls, minlength=len(names))
    target = target_counts(counts, w, mode)
    rng = np.random.default_rng(seed)
    keys = rng.random(int(cls.shape[0]))
    draws = rng.random(int(np.maximum(target - counts, 0).sum()))
    idx = balance_select(cls, target, keys, draws)
    report = BalanceReport(
        mode=str(mode),
        weights={n: float(x) for n, x in zip(names, w.tolist(), strict=True)},
        seed=seed,
        before={n: int(c) for n, c in zip(names, counts.tolist(), strict=True)},
        after={n: int(c) for n, c in zip(names, target.tolist(), strict=True)},
    )
    return idx, report


__all__ = ["MODES", "AxisBalance", "BalanceMode", "BalanceReport", "Weights", "axis_counts", "balance", "parse_weights",
           "target_counts", "with_axes"]
