"""A .tflite model as a policy for GameEnv, through engine-play's own model code.

engine-play feeds its model by writing the newest window from the frame ring into the interpreter's input
tensor through the model's 256-entry table (scaling and quantisation folded in), invokes, and decodes with
:class:`engine.play.Decoder`. GameEnv's observation is that window already in the model's layout, read
from the ring by the same native feed with the identity table; this policy applies the model's table
(``np.take`` of :meth:`Model.input_lut` into :meth:`Model.input_buffer`, the NumPy twin of the native feed),
invokes and decodes the same way. So the env and engine-play give the same actions on the same frames.
A model with a history input gets the last actions this policy decided, newest row last, as engine-play
gives it the actions it sent.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.env.realtime import GameEnv
from engine.errors import EngineError
from engine.play import Decoder, Model
from engine.sidecar import ModelSidecar


class TFLitePolicy:
    """``policy(observation) -> action`` (uint8 (A,), 1 = held) for a GameEnv made from the model's sidecar.

    ``model``: a path (loaded with :meth:`engine.play.Model.load`, reading ``m.json`` beside it; ``load``
    keyword arguments such as ``overrides`` or ``threads`` pass through) or a loaded Model.
    """

    def __init__(self, model: str | os.PathLike[str] | Model, **load: Any) -> None:
        self.model = model if isinstance(model, Model) else Model.load(model, **load)
        self._lut = self.model.input_lut()
        self._decoder: Decoder = self.model.decoder()
        shape = self.model.history_shape
        self._history = np.zeros(shape, np.uint8) if shape else None
        self.reset()

    @property
    def spec(self) -> ModelSidecar:
        """The model's effective sidecar: make the env with ``GameEnv(sidecar=policy.spec, ...)``."""
        return self.model.spec

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.model.spec.actions)

    def make_env(self, **kwargs: Any) -> GameEnv:
        """A GameEnv observing what this model is fed (its sidecar's frames and fps) and sending its actions."""
        return GameEnv(sidecar=self.spec, **kwargs)

    def reset(self) -> None:
        """Forget held actions and the action history (call at each episode start)."""
        self._decoder.reset()
        if self._history is not None:
            self._history[:] = 0
            self.model.set_history(self._history)

    def outputs(self, observation: Any) -> np.ndarray:
        """The model's raw outputs (float32, dequantised) for one observation."""
        frames = observation["frames"] if isinstance(observation, dict) else observation
        frames = np.asarray(frames)
        want = self.model.input_shape[1:]
        if frames.dtype != np.uint8 or frames.shape != want:
            raise EngineError(f"this model is fed uint8 observations shaped {want}, got {frames.dtype} {frames.shape}; "
                              "make the env from the model's sidecar (policy.make_env(...))")
        buf = self.model.input_buffer()
        np.take(self._lut, frames.reshape(buf.shape), out=buf, mode="clip")  # unbuffered: the LUT per pixel
        del buf  # the runtime refuses invoke() while a view of its input is alive
        return self.model.invoke()

    def __call__(self, observation: Any) -> np.ndarray:
        state = self._decoder.decode(self.outputs(observation)).astype(np.uint8)
        if self._history is not None:  # the actions decided (and sent by the env), newest row last
            self._history[:-1] = self._history[1:]
            self._history[-1] = state
            self.model.set_history(self._history)
        return state

    def __repr__(self) -> str:
        return f"<TFLitePolicy {self.model!r}>"


__all__ = ["TFLitePolicy"]
