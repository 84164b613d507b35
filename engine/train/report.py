"""The training report: validation metrics in words and numbers, and a PNG of the training curves.

Multihot: per action, the accuracy of the thresholded output against the label, beside the accuracy of
always answering the action's majority value (a model must beat that to have learnt anything), and
precision/recall of "pressed". Combo: per class recall, the confusion matrix (rows: true class,
columns: predicted), and per action accuracy of the held sets the classes stand for.

The PNG is drawn with matplotlib's object API on an Agg canvas: no pyplot, no global backend switch, no
display needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.labels import combo_name
from engine.train.data import TrainError


@dataclass(frozen=True)
class ActionScore:
    name: str
    accuracy: float
    majority: float  # accuracy of always answering the majority value
    precision: float  # of "pressed"; nan when never predicted
    recall: float  # of "pressed"; nan when never pressed
    positives: int


@dataclass(frozen=True)
class Metrics:
    """Validation metrics of one model's decisions."""

    windows: int
    actions: tuple[ActionScore, ...]
    exact: float  # fraction of windows whose whole held set is right
    classes: tuple[str, ...] = ()  # combo only
    confusion: np.ndarray | None = field(default=None, compare=False)  # combo: (C, C) counts, rows true

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "windows": self.windows,
            "exact": self.exact,
            "actions": {a.name: {"accuracy": a.accuracy, "majority": a.majority, "precision": _num(a.precision),
                                 "recall": _num(a.recall), "positives": a.positives} for a in self.actions},
        }
        if self.confusion is not None:
            out["classes"] = list(self.classes)
            out["confusion"] = self.confusion.tolist()
        return out

    def lines(self) -> list[str]:
        if not self.actions:  # a model of axes alone: its scores are the axis lines
            return [f"validation: {self.windows} windows (no key outputs)"]
        out = [f"validation: {self.windows} windows, whole decision right on {self.exact:.1%}"]
        width = max(len(a.name) for a in self.actions)
        for a in self.actions:
            out.append(f"  {a.name:<{width}}  accuracy {a.accuracy:6.1%} (majority answer {a.majority:6.1%})  "
                       f"precision {_pct(a.precision)}  recall {_pct(a.recall)}  pressed in {a.positives}")
        if self.confusion is not None:
            names = [n if len(n) <= 12 else n[:11] + "~" for n in self.classes]
            w = max(6, *(len(n) for n in names))
            out.append("  confusion (rows: true class, columns: predicted):")
            out.append("    " + " " * w + "".join(f" {n:>{w}}" for n in names))
            for n, row in zip(names, self.confusion.tolist(), strict=True):
                out.append(f"    {n:>{w}}" + "".join(f" {v:>{w}}" for v in row))
        return out


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def _pct(v: float) -> str:
    return "   n/a" if np.isnan(v) else f"{v:6.1%}"


def held_sets(labels: np.ndarray, encoding: str, classes: Sequence[Sequence[str]], actions: Sequence[str]
              ) -> np.ndarray:
    """Labels -> (n, A) bool held actions: multihot rows as they are, combo class ids through ``classes``."""
    if encoding == "multihot":
        return np.asarray(labels) != 0
    table = np.zeros((len(classes), len(actions)), bool)
    for c, held in enumerate(classes):
        table[c, [actions.index(a) for a in held]] = True
    return table[np.asarray(labels, np.int64)]


def score(outputs: np.ndarray, labels: np.ndarray, encoding: str, actions: Sequence[str],
          classes: Sequence[Sequence[str]] = (), thresholds: Sequence[float] | None = None) -> Metrics:
    """Metrics of model ``outputs`` (n, outputs) against ``labels`` (n, A) multi-hot or (n,) class ids."""
    n = len(labels)
    if encoding == "multihot":
        th = np.asarray(thresholds if thresholds is not None else [0.5] * len(actions), np.float32)
        pred = np.asarray(outputs) >= th
        predicted_class = None
    else:
        predicted_class = np.argmax(outputs, axis=1)
        pred = held_sets(predicted_class, encoding, classes, actions)
    true = held_sets(labels, encoding, classes, actions)
    scores = []
    for a, name in enumerate(actions):
        t, p = true[:, a], pred[:, a]
        pos = int(t.sum())
        tp = int((t & p).sum())
        scores.append(ActionScore(
            name=name, accuracy=float((t == p).mean()) if n else 0.0,
            majority=float(max(pos, n - pos) / n) if n else 0.0,
            precision=tp / int(p.sum()) if p.any() else float("nan"),
            recall=tp / pos if pos else float("nan"), positives=pos,
        ))
    confusion = None
    if predicted_class is not None:
        k = len(classes)
        confusion = np.bincount(np.asarray(labels, np.int64) * k + predicted_class, minlength=k * k).reshape(k, k)
    return Metrics(windows=n, actions=tuple(scores), exact=float((true == pred).all(axis=1).mean()) if n else 0.0,
                   classes=tuple(combo_name(c) for c in classes) if encoding == "combo" else (),
                   confusion=confusion)


def plot_curves(history: Sequence[Mapping[str, float]], path: Path, best_epoch: int, title: str) -> Path:
    """Loss and accuracy per epoch, train and validation, the kept epoch marked; written to ``path``.

    Raises TrainError (one line) when matplotlib is missing or the file cannot be written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise TrainError(f"the training curves need matplotlib ({e}); pip install 'engine[train]'") from None
    epochs = np.arange(1, len(history) + 1)
    fig = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, key, label in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [h[key] for h in history], marker=".", label="train")
        ax.plot(epochs, [h["val_" + key] for h in history], marker=".", label="validation")
        ax.axvline(best_epoch, color="0.6", linestyle="--", linewidth=1, label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    try:
        fig.savefig(path)
    except OSError as e:
        raise TrainError(f"cannot write {path}: {e.strerror or e}; check the --out directory") from None
    return path


__all__ = ["ActionScore", "Metrics", "held_sets", "plot_curves", "score"]
