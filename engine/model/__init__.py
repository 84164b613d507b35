"""The model runtime: a .tflite and its m.json sidecar, as engine-play runs it and as training checks its
exports. Runtime discovery and loading (runtime), the structural .tflite check before any runtime sees a
file (tflite_file), the spec a model is played with and whether it fits the capture (fit), the model fed
from frames (model), output decoding (decode).

Its own layer, below both play and train: engine-train checks each export through exactly this code, and
engine-play, the Gymnasium environment and the PyTorch export run it. It imports no capture, no play loop
and no compiled engine module, so a training server without X loads it.
"""

from __future__ import annotations

from engine.model.decode import Decoder
from engine.model.fit import DEFAULT_FPS, FLAGS
from engine.model.model import Model
from engine.model.runtime import RUNTIMES, ModelError, load_interpreter

__all__ = ["DEFAULT_FPS", "FLAGS", "RUNTIMES", "Decoder", "Model", "ModelError", "load_interpreter"]
