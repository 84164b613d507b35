"""Check an exported .tflite against the Keras model it came from, the way engine-play will run it.

The model is loaded with :meth:`engine.model.model.Model.load` (the sidecar beside it, the runtime play
picks, LiteRT first), fed each window through the play input LUT (:meth:`Model.feed`, the NumPy twin of
the native feed), invoked and decoded with play's :class:`~engine.model.decode.Decoder`; the Keras outputs
on the same windows are decoded the same way. Reported: the fraction of windows whose decision (the set
of actions held) is the same, per action agreement, the largest output difference, and invoke times.
No TensorFlow is needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.model import Decoder, Model
from engine.model.decode import axes_agree


@dataclass(frozen=True)
class Agreement:
    """How one exported model compares with Keras on the same windows."""

    path: Path
    runtime: str
    input_dtype: str
    windows: int
    decisions: float  # fraction of windows with the same held set
    per_action: tuple[float, ...]  # fraction of windows where action a (then each axis) is decided the same
    max_output_diff: float  # largest |tflite - keras| over all outputs (probabilities)
    invoke_ms: tuple[float, float]  # p50, p99
    size_bytes: int
    reference: str = "Keras"  # what the outputs were compared with (the framework the model was trained in)

    def line(self) -> str:
        return (f"{self.path.name}: {self.input_dtype} in, {self.size_bytes / 1024:.0f} KiB, {self.runtime}: "
                f"same decisions as {self.reference} on {self.decisions:.1%} of {self.windows} val windows "
                f"(max output diff {self.max_output_diff:.3f}); invoke p50 {self.invoke_ms[0]:.3f} ms "
                f"p99 {self.invoke_ms[1]:.3f} ms")


def decide(outputs: np.ndarray, model: Model) -> np.ndarray:
    """(n, outputs) float -> (n, A) bool held actions, by play's Decoder, reset before each row (a
    decoder with hysteresis remembers what it holds, and the windows here are independent)."""
    decoder = Decoder(model.spec)
    out = np.empty((len(outputs), len(model.spec.actions)), bool)
    for i, row in enumerate(outputs):
        decoder.reset()
        out[i] = decoder.decode(row)
    return out


def compare(path: Path, windows: np.ndarray, keras_outputs: np.ndarray, threads: int | None = None,
            reference: str = "Keras") -> Agreement:
    """Run the .tflite at ``path`` on uint8 ``windows`` (n, W, H, W'[, C]) and compare with
    ``keras_outputs`` (n, outputs) of the same windows. Raises ModelError if play would refuse the model."""
    model = Model.load(path, threads=threads)
    outs, times = model.run_windows(windows)
    mine, ref = decide(outs, model), decide(np.asarray(keras_outputs, np.float32), model)
    same = np.concatenate([mine == ref, axes_agree(outs, np.asarray(keras_outputs, np.float32), model.spec)], axis=1)
    return Agreement(
        path=path, runtime=model.runtime, input_dtype=model.input_dtype.name, windows=len(windows),
        decisions=float(same.all(axis=1).mean()) if len(windows) else 1.0,
        per_action=tuple(float(v) for v in same.mean(axis=0)) if len(windows) else (),
        max_output_diff=float(np.abs(outs - keras_outputs).max()) if len(windows) else 0.0,
        invoke_ms=(float(np.percentile(times, 50) / 1e6), float(np.percentile(times, 99) / 1e6)) if len(windows)
        else (0.0, 0.0),
        size_bytes=path.stat().st_size,
        reference=reference,
    )


__all__ = ["Agreement", "compare", "decide"]
