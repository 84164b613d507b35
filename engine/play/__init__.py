"""engine-play's runtime: the model (load, check against its sidecar, feed, invoke) and output decoding.

The play loop itself (capture at the model's fps -> window -> invoke -> decode -> actuator) builds on this.
"""

from __future__ import annotations

from engine.play.model import DEFAULT_FPS, FLAGS, RUNTIMES, Decoder, Model, ModelError, load_interpreter

__all__ = ["DEFAULT_FPS", "FLAGS", "RUNTIMES", "Decoder", "Model", "ModelError", "load_interpreter"]
