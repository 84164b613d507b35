"""Mixed key + axis outputs: the training target, the loss and the accuracy both trainers use when the data
has axis targets (mouse motion, pad sticks; engine.axes_spec).

The model's one output vector is the sidecar's layout: the key columns (sigmoid per action, or softmax over
the combo classes), then one block per axis (1 linear value for raw/scaled regression, a softmax over the
n bins for bins/mulaw). The target has the same layout: the key labels (multi-hot, or the one-hot of the
class), then per axis the encoded value or the one-hot of its bin (AxisSpec.target_block).

Loss: the key loss as without axes (mean binary cross-entropy over the actions, or the class
cross-entropy), plus the mean over the axes of each axis' loss (its bins' cross-entropy, or the squared
error of its encoded value, which the defaults keep within [-1, 1]): every axis together weighs about as
much as the keys, whatever their number. Accuracy: of the keys as without axes; a model of axes alone
reports the mean over its axes of "same bin" (binned) or "same sign" (regression).

Sessions without axes never come here: the trainers keep their original single-head code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.axes_spec import AxisSpec, blocks

_EPS = 1e-7


@dataclass(frozen=True)
class Layout:
    """Where each head sits in the output vector."""

    encoding: str  # the keys' "multihot" | "combo"
    keys: int  # key columns (actions, or classes)
    axes: tuple[AxisSpec, ...]

    @property
    def width(self) -> int:
        return self.keys + sum(a.size for a in self.axes)

    def heads(self) -> list[tuple[int, int, str]]:
        """(start, stop, activation) per head: "sigmoid", "softmax" or "linear"; a 0-wide key head is left out."""
        out = [(0, self.keys, "sigmoid" if self.encoding == "multihot" else "softmax")] if self.keys else []
        for a, b in zip(self.axes, blocks(self.axes, self.keys), strict=True):
            out.append((b.start, b.stop, "softmax" if a.binned else "linear"))
        return out

    # ---- targets -----------------------------------------------------------------------------------------
    def targets(self, labels: np.ndarray, axis_targets: np.ndarray) -> np.ndarray:
        """Key labels ((N, A) multi-hot or (N,) class ids) and encoded axis targets (N, K) -> float32 (N, width)."""
        n = len(labels)
        if self.encoding == "multihot":
            keys = np.asarray(labels, np.float32).reshape(n, self.keys)
        else:
            keys = np.zeros((n, self.keys), np.float32)
            keys[np.arange(n), np.asarray(labels, np.int64)] = 1.0
        parts = [keys] + [a.target_block(axis_targets[:, k]) for k, a in enumerate(self.axes)]
        return np.concatenate(parts, axis=1)

    # ---- NumPy (validation) ------------------------------------------------------------------------------
    def loss_and_accuracy(self, outputs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """What :meth:`keras_loss` and :meth:`keras_accuracy` compute, on whole arrays, in float64."""
        p = np.asarray(outputs, np.float64)
        t = np.asarray(targets, np.float64)
        key_loss, axis_losses, accs = 0.0, [], []
        for start, stop, act in self.heads():
            q, y = p[:, start:stop], t[:, start:stop]
            if act == "sigmoid":
                qc = np.clip(q, _EPS, 1 - _EPS)
                key_loss = float(-np.mean(y * np.log(qc) + (1 - y) * np.log(1 - qc)))
                accs.append(float(np.mean((q >= 0.5) == (y != 0))))
                continue
            if act == "softmax":
                loss = float(-np.mean(np.sum(y * np.log(np.clip(q, _EPS, 1.0)), axis=1)))
                acc = float(np.mean(np.argmax(q, 1) == np.argmax(y, 1)))
            else:
                loss = float(np.mean((q - y) ** 2))
                acc = float(np.mean(np.sign(np.round(q, 1)) == np.sign(np.round(y, 1))))
            if start == 0 and self.keys:
                key_loss = loss
            else:
                axis_losses.append(loss)
            accs.append(acc)
        total = key_loss + (float(np.mean(axis_losses)) if axis_losses else 0.0)
        accuracy = accs[0] if self.keys else float(np.mean(accs))
        return total, accuracy

    # ---- Keras (training) --------------------------------------------------------------------------------
    def keras_loss(self) -> Any:
        import keras
        from keras import ops

        heads, has_keys = self.heads(), bool(self.keys)
        n_axes = max(1, len(self.axes))

        @keras.saving.register_keras_serializable(package="engine")
        def mixed_loss(y_true: Any, y_pred: Any) -> Any:
            total = 0.0
            for i, (start, stop, act) in enumerate(heads):
                q, y = y_pred[:, start:stop], y_true[:, start:stop]
                if act == "sigmoid":
                    qc = ops.clip(q, _EPS, 1 - _EPS)
                    loss = -ops.mean(y * ops.log(qc) + (1 - y) * ops.log(1 - qc))
                elif act == "softmax":
                    loss = -ops.mean(ops.sum(y * ops.log(ops.clip(q, _EPS, 1.0)), axis=1))
                else:
                    loss = ops.mean(ops.square(q - y))
                total = total + (loss if (i == 0 and has_keys) else loss / n_axes)
            return total

        return mixed_loss

    def keras_accuracy(self) -> Any:
        from keras import ops

        heads, has_keys = self.heads(), bool(self.keys)

        def accuracy(y_true: Any, y_pred: Any) -> Any:
            accs = []
            for start, stop, act in heads[:1] if has_keys else heads:
                q, y = y_pred[:, start:stop], y_true[:, start:stop]
                if act == "sigmoid":
                    hit = ops.cast(ops.equal(q >= 0.5, y > 0.5), "float32")
                elif act == "softmax":
                    hit = ops.cast(ops.equal(ops.argmax(q, 1), ops.argmax(y, 1)), "float32")
                else:
                    hit = ops.cast(ops.equal(ops.sign(ops.round(q * 10)), ops.sign(ops.round(y * 10))), "float32")
                accs.append(ops.mean(hit))
            return ops.mean(ops.stack(accs))

        return accuracy


def axis_scores(outputs: np.ndarray, values: np.ndarray, targets: np.ndarray, axes: Sequence[AxisSpec],
                key_outputs: int) -> list[dict[str, Any]]:
    """Per axis, how the model's decoded outputs (n, outputs) compare with the true values (n, K) in natural
    units: mean absolute error, the same for always answering 0 (the baseline to beat), and the share of
    windows in the right bin (binned) or with the right sign (regression); ``targets`` (n, K) encoded."""
    out = []
    for k, (a, blk) in enumerate(zip(axes, blocks(axes, key_outputs), strict=True)):
        decoded = np.array([a.decode(row[blk]) for row in outputs], np.float64)
        true = np.asarray(values[:, k], np.float64)
        if a.binned:
            hit = np.argmax(outputs[:, blk], 1) == np.asarray(targets[:, k], np.int64)
        else:
            hit = a.bucket(a.encode(decoded)) == a.bucket(targets[:, k])
        out.append({"name": a.name, "encoding": a.encoding, "windows": len(true),
                    "mae": float(np.mean(np.abs(decoded - true))) if len(true) else 0.0,
                    "mae_zero": float(np.mean(np.abs(true))) if len(true) else 0.0,
                    "bin_accuracy" if a.binned else "sign_accuracy": float(np.mean(hit)) if len(true) else 0.0})
    return out


def axis_lines(scores: Sequence[dict[str, Any]]) -> list[str]:
    """The report's lines for :func:`axis_scores`."""
    lines = []
    for s in scores:
        which = "right bin" if "bin_accuracy" in s else "right sign"
        acc = s.get("bin_accuracy", s.get("sign_accuracy", 0.0))
        lines.append(f"  axis {s['name']:<8} ({s['encoding']}) mean |error| {s['mae']:.4g} (always 0: "
                     f"{s['mae_zero']:.4g}), {which} {acc:.1%}")
    return lines


def layout_of(encoding: str, actions: Sequence[str], classes: Sequence[Any], axes: Sequence[AxisSpec]) -> Layout:
    """The output layout of a dataset spec's fields."""
    keys = len(actions) if encoding == "multihot" else len(classes)
    return Layout(encoding, keys, tuple(axes))


__all__ = ["Layout", "axis_lines", "axis_scores", "layout_of"]
