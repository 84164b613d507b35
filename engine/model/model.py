"""A loaded .tflite model checked against the spec it is played with; feeding it frames and invoking it.

:meth:`Model.load` loads the file with the first installed runtime (engine.model.runtime), finds its
tensors and decides the spec (the sidecar, the flags, or what the input shape allows; engine.model.fit),
refusing a model that does not fit. Every problem a user can cause is a one-line ``ModelError``.

Feeding. The frames input is float32 (real = pixel * multiply + add) or uint8/int8 quantised as TFLite does
(engine.model.runtime.TensorInfo.quantize). Since a pixel is a uint8, the whole transform is the 256-entry
table :meth:`Model.input_lut`: the native feed fills the input tensor with one lookup per pixel, straight
from the frame ring. :meth:`Model.prepare` is the slow reference (the test oracle, and what replay uses);
:meth:`Model.feed` is the NumPy LUT path into the tensor's own memory (:meth:`Model.input_buffer`).

Frame order: index 0 of a window is the oldest frame, index W-1 the newest (see engine.sidecar for the
layouts). Decoding output to held actions is engine.model.decode.Decoder's job (stateful: hysteresis).

Threads: a Model is not thread-safe; one thread (the inference loop) owns it. ``invoke()`` releases the
GIL while the runtime runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.decode import Decoder
from engine.model.fit import Fit, Tensors, find_tensors, resolve_spec
from engine.model.runtime import RUNTIMES, ModelError, load_interpreter, one_line
from engine.sidecar import ModelSidecar


# ---- the model -------------------------------------------------------------------------------------------
class Model:
    """A loaded model checked against its spec. Create with :meth:`Model.load`.

    Attributes: ``path``, ``runtime`` (name from RUNTIMES), ``spec`` (the effective ModelSidecar, flags
    applied), ``sidecar_path`` (the m.json read, or None), ``assumed`` (spec fields that came from neither
    a sidecar, a flag nor the model, e.g. ("fps", "scale", "thresholds") without a sidecar), ``notes``
    (one line each for what was read from the model's shape that no flag said; engine-play prints them).
    """

    def __init__(self, interpreter: Any, runtime: str, path: Path, fit: Fit, tensors: Tensors) -> None:
        """Private: use :meth:`Model.load`, which checks that ``tensors`` fit ``fit.spec``."""
        spec = fit.spec
        self._interpreter = interpreter
        self.runtime = runtime
        self.spec = spec
        self.path = path
        self.sidecar_path = fit.sidecar_path
        self.assumed = fit.assumed
        self.notes = fit.notes
        self._frames = tensors.frames
        self._history = tensors.history
        self._output = tensors.output
        real = np.arange(256, dtype=np.float64) * spec.scale.multiply + spec.scale.add
        self._lut = self._frames.quantize(real)
        self._lut.flags.writeable = False
        # Start from a defined state: an all-zero-pixel window and no actions held.
        frames = self._frames
        self._interpreter.set_tensor(frames.index, np.broadcast_to(self._lut[0], frames.shape).copy())
        if self._history is not None:
            self.set_history(np.zeros((spec.history, len(spec.actions)), np.float32))

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        sidecar: ModelSidecar | None = None,
        overrides: Mapping[str, Any] | None = None,
        actions: Sequence[str] | None = None,
        threads: int | None = None,
        runtimes: Sequence[str] = RUNTIMES,
    ) -> Model:
        """Load a .tflite model and the spec it is played with, and check that they fit.

        The spec is ``sidecar`` if given, else ``<stem>.json`` beside the model if it exists, else what the
        input shape allows (then ``actions`` is required). ``overrides`` (sidecar field -> value, as in the
        JSON; the CLI flags) and ``actions`` win over all of those. Raises ModelError, one line, naming the
        differing dimension and the flag to pass when the model does not fit.
        """
        p = Path(path)
        interpreter, runtime = load_interpreter(p, threads, runtimes=runtimes)
        tensors = find_tensors(interpreter)
        fit = resolve_spec(p, tensors, sidecar=sidecar, overrides=overrides, actions=actions)
        return cls(interpreter, runtime, p, fit, tensors)

    # ---- input description -------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the frames input tensor, batch 1: (1, W, H, W', C) or (1, H, W', W*C)."""
        return self._frames.shape

    @property
    def input_dtype(self) -> np.dtype[Any]:
        """float32, uint8 or int8."""
        return self._frames.dtype

    @property
    def input_layout(self) -> str:
        """"frames" or "channels" (see engine.sidecar)."""
        return self.spec.layout

    @property
    def input_quantization(self) -> tuple[float, int] | None:
        """(scale, zero_point) of a quantised frames input, None for float32."""
        return (self._frames.scale, self._frames.zero_point) if self._frames.quantized else None

    @property
    def output_size(self) -> int:
        """Number of output values: actions (multihot) or classes (combo)."""
        return int(np.prod(self._output.shape))

    @property
    def history_shape(self) -> tuple[int, int] | None:
        """(history, A) when the model takes the last action vectors as a 2nd input, else None."""
        return (self.spec.history, len(self.spec.actions)) if self._history is not None else None

    def input_lut(self) -> np.ndarray:
        """Read-only (256,) array of the input dtype: tensor value for each pixel value 0..255.

        lut[p] is p * multiply + add as float32 (computed in float64, rounded once), or that real value
        quantised with the input tensor's scale and zero point. Filling the tensor with lut[pixel] for every
        pixel, in the input layout, is exactly :meth:`prepare`.
        """
        return self._lut

    def input_buffer(self) -> np.ndarray:
        """A writable NumPy view of the frames input tensor's own memory, shape ``input_shape``.

        Lifetime: the runtime refuses ``invoke()`` (RuntimeError) while any such view is alive, and
        ``allocate_tensors()``/resizing would move the memory under it. So take a fresh view for each step,
        fill it, and drop it (``del``) before :meth:`invoke`. Its content is overwritten by
        ``set_tensor`` (:meth:`predict` uses that). The address is stable from load to the next
        allocation, which Model never does again.
        """
        view: np.ndarray = self._interpreter.tensor(self._frames.index)()
        return view

    # ---- feeding -----------------------------------------------------------------------------------
    def _check_window(self, window_frames: np.ndarray) -> np.ndarray:
        """Validate a (W, H, W', C) or gray (W, H, W') uint8 window; return it as (W, H, W', C)."""
        s = self.spec
        frames = np.asarray(window_frames)
        want = (s.window, s.height, s.width, s.channels)
        if frames.dtype != np.uint8 or frames.shape not in (want, want[:3] if s.channels == 1 else want):
            raise ValueError(
                f"a window for this model is uint8 {want}"
                f"{' or ' + str(want[:3]) if s.channels == 1 else ''}, got {frames.dtype} {frames.shape}"
            )
        return frames.reshape(want)

    def _to_layout(self, frames: np.ndarray) -> np.ndarray:
        """(W, H, W', C) -> the input tensor's shape (a view where possible)."""
        if self.spec.layout == "frames":
            return frames[None]
        w, h, width, c = frames.shape
        # Channel f*C + c holds channel c of frame f: move the frame axis next to the channel axis.
        return frames.transpose(1, 2, 0, 3).reshape(1, h, width, w * c)

    def prepare(self, window_frames: np.ndarray) -> np.ndarray:
        """The input tensor value for one window, computed the slow, obvious way (reference and oracle).

        ``window_frames``: uint8 (W, H, W', C), or (W, H, W') for gray, oldest frame first. Returns a new
        array of ``input_shape`` and ``input_dtype``.
        """
        x = self._to_layout(self._check_window(window_frames))
        real = x.astype(np.float64) * self.spec.scale.multiply + self.spec.scale.add
        return self._frames.quantize(real)

    def feed(self, window_frames: np.ndarray) -> None:
        """Write one window into the input tensor through the LUT (the NumPy twin of the native feed)."""
        frames = self._check_window(window_frames)
        buf = self.input_buffer()
        if self.spec.layout == "frames":
            np.take(self._lut, frames.reshape(buf.shape), out=buf, mode="clip")  # unbuffered
        else:
            buf[...] = self._to_layout(self._lut[frames])
        del buf  # the runtime refuses invoke() while a view of its memory is alive

    def set_history(self, last_actions: np.ndarray) -> None:
        """Set the history input: (history, A) action vectors sent, oldest row first, nonzero = held.

        Raises ValueError if the model has no history input or the shape differs.
        """
        if self._history is None:
            raise ValueError("this model has no history input (spec history is 0)")
        want = (self.spec.history, len(self.spec.actions))
        arr = np.asarray(last_actions)
        if arr.shape != want:
            raise ValueError(f"history must be shaped {want} (history, actions), got {arr.shape}")
        real = (arr != 0).astype(np.float64).reshape(self._history.shape)
        self._interpreter.set_tensor(self._history.index, self._history.quantize(real))

    def run_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed and invoke each window in turn, as engine-play does: (outputs float32 (n, N), invoke times
        int64 ns (n,)). How training and export check a .tflite against the framework it came from."""
        outs = np.empty((len(windows), self.output_size), np.float32)
        times = np.empty(len(windows), np.int64)
        for i, w in enumerate(windows):
            self.feed(w)
            t0 = time.perf_counter_ns()
            outs[i] = self.invoke()
            times[i] = time.perf_counter_ns() - t0
        return outs, times

    def invoke(self) -> np.ndarray:
        """Run the model on what is in its inputs; return the output as float32 (N,), dequantised.

        N is ``output_size``. Raises RuntimeError if an :meth:`input_buffer` view is still alive, and
        ModelError if the runtime fails.
        """
        try:
            self._interpreter.invoke()
        except RuntimeError as e:
            if "reference to internal data" in str(e):
                raise RuntimeError(
                    "an input_buffer() view is still alive; drop it (del) before Model.invoke()"
                ) from None
            raise ModelError(f"model failed to run in {self.runtime}: {one_line(e)}") from None
        except ValueError as e:
            raise ModelError(f"model failed to run in {self.runtime}: {one_line(e)}") from None
        out = self._interpreter.get_tensor(self._output.index)
        return self._output.dequantize(out).reshape(-1)

    def predict(self, window_frames: np.ndarray) -> np.ndarray:
        """prepare + set the input tensor + invoke: the output for one window (float32 (N,))."""
        self._interpreter.set_tensor(self._frames.index, self.prepare(window_frames))
        return self.invoke()

    def decoder(self) -> Decoder:
        """A fresh Decoder for this model's spec."""
        return Decoder(self.spec)

    def __repr__(self) -> str:
        return (
            f"<Model {self.path.name} {self.runtime} in={self.input_shape} {self.input_dtype.name} "
            f"{self.spec.layout} out={self.output_size} {self.spec.encoding}>"
        )


__all__ = ["Model"]
