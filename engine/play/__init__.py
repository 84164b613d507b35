"""engine-play's model side: runtime discovery and loading (runtime), the model fed from frames (model), the
spec it is played with and whether it fits (fit), output decoding (decode), the structural .tflite check
(tflite_file); the play loop (loop) builds on them.
"""

from __future__ import annotations

from engine.play.decode import Decoder
from engine.play.fit import DEFAULT_FPS, FLAGS
from engine.play.model import Model
from engine.play.runtime import RUNTIMES, ModelError, load_interpreter

__all__ = ["DEFAULT_FPS", "FLAGS", "RUNTIMES", "Decoder", "Model", "ModelError", "load_interpreter"]
