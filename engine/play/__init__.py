"""engine-play: the play loop (loop) over live frames, driven by frame arrival, sending only key changes.
The model side it runs lives one layer down in engine.model (re-exported here for convenience).
"""

from __future__ import annotations

from engine.model import DEFAULT_FPS, FLAGS, RUNTIMES, Decoder, Model, ModelError, load_interpreter

__all__ = ["DEFAULT_FPS", "FLAGS", "RUNTIMES", "Decoder", "Model", "ModelError", "load_interpreter"]
