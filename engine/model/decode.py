"""Model output -> the actions to hold, per the spec's output encoding (engine.sidecar).

Keys and axes: the output vector is the key columns followed by one block per axis (engine.sidecar,
engine.axes_spec); :meth:`Decoder.decode` reads the keys, :meth:`Decoder.decode_axes` the axes.

Stateful: with hysteresis a held action stays held until its output falls below the release threshold, so a
Decoder belongs to one run of one model (:meth:`Decoder.reset` after the output released everything).
"""

from __future__ import annotations

import numpy as np

from engine.axes_spec import blocks
from engine.sidecar import DEFAULT_THRESHOLD, ModelSidecar


class Decoder:
    """Model output -> which actions to hold, per the spec's encoding.

    multihot: action a is pressed when output[a] >= thresholds[a]; with hysteresis h, a held action stays
    held until output[a] < thresholds[a] - h (stateful: :meth:`reset` forgets what is held). A NaN output
    releases. combo: the class with the highest output (the first on ties) gives exactly the held set.
    """

    def __init__(self, spec: ModelSidecar) -> None:
        self.actions = spec.actions
        self.encoding = spec.encoding
        n = len(spec.actions)
        self._size = spec.outputs
        self._keys = spec.key_outputs
        self.axes: tuple[str, ...] = spec.axis_names
        self._axes = spec.axes
        self._blocks = blocks(spec.axes, spec.key_outputs)
        self._on = np.asarray(spec.thresholds or (DEFAULT_THRESHOLD,) * n, dtype=np.float32)
        self._off = self._on - np.float32(spec.hysteresis)
        self._hysteresis = spec.hysteresis > 0
        self._classes = np.zeros((len(spec.classes), n), dtype=bool)
        index = {a: i for i, a in enumerate(spec.actions)}
        for c, held in enumerate(spec.classes):
            self._classes[c, [index[a] for a in held]] = True
        self.held = np.zeros(n, dtype=bool)

    def reset(self) -> None:
        """Forget held actions (e.g. after the actuator released everything)."""
        self.held[:] = False

    def _check(self, output: np.ndarray) -> np.ndarray:
        out = np.asarray(output, dtype=np.float32).reshape(-1)
        if out.shape != (self._size,):
            raise ValueError(f"expected {self._size} output values, got {out.shape[0]}")
        return out

    def decode_axes(self, output: np.ndarray) -> np.ndarray:
        """Decode one output vector (N,) into float32 (K,): each axis' value in its natural units, in the
        order of :attr:`axes` (regression scaled back; binned: the centre of the most likely bin). Stateless.
        (0,) for a model without axes."""
        out = self._check(output)
        return np.array([a.decode(out[b]) for a, b in zip(self._axes, self._blocks, strict=True)], np.float32)

    def decode(self, output: np.ndarray) -> np.ndarray:
        """Decode one output vector (N,) into a new bool array (A,) of actions to hold (the key columns;
        axis blocks are :meth:`decode_axes`' part)."""
        out = self._check(output)[: self._keys]
        if self.encoding == "combo":
            held = self._classes[int(np.argmax(out))].copy()
        elif self._hysteresis:
            held = (out >= self._on) | (self.held & (out >= self._off))
        else:
            held = out >= self._on
        self.held = held.copy()
        return held


AXIS_TOLERANCE = 0.05  # regression axes: outputs (encoded units) this close count as the same decision


def axes_agree(a: np.ndarray, b: np.ndarray, spec: ModelSidecar) -> np.ndarray:
    """(n, K) bool: per axis, do two output arrays (n, outputs) decide the same: the same bin (binned), or
    encoded values within AXIS_TOLERANCE (regression, where uint8 quantisation moves the value a little)."""
    out = np.empty((len(a), len(spec.axes)), bool)
    for k, (axis, blk) in enumerate(zip(spec.axes, blocks(spec.axes, spec.key_outputs), strict=True)):
        if axis.binned:
            out[:, k] = np.argmax(a[:, blk], 1) == np.argmax(b[:, blk], 1)
        else:
            out[:, k] = np.abs(a[:, blk.start] - b[:, blk.start]) <= AXIS_TOLERANCE
    return out


__all__ = ["AXIS_TOLERANCE", "Decoder", "axes_agree"]
