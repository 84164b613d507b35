"""Model runtime for engine-play: load a .tflite, check it against its sidecar, feed it frames, decode it.

Loading. The file is checked structurally first (engine.play.tflite_file), then :func:`load_interpreter`
takes the first runtime of ``RUNTIMES`` that is installed (LiteRT first: it works with NumPy 2) and reports
which one loaded; a runtime that refuses the file is the answer, not a reason to try the next one.
:meth:`Model.load` reads ``<stem>.json`` beside the model when no sidecar is given, lets ``overrides`` (the
CLI flags) win over it, and without any sidecar infers what the input shape allows and requires ``actions``.
A model that does not fit the spec is refused naming the dimension that differs and the flag to pass. Every
problem a user can cause is a one-line ``ModelError``.

Feeding. The frames input is float32 (real = pixel * multiply + add) or uint8/int8 quantised
(q = round(real / scale) + zero_point, clipped, ties away from zero like TFLite's Quantize kernel). Since a
pixel is a uint8, the whole transform is the 256-entry table :meth:`Model.input_lut`: the native feed fills
the input tensor with one lookup per pixel, straight from the frame ring. :meth:`Model.prepare` is the slow
reference (the test oracle, and what replay uses); :meth:`Model.feed` is the NumPy LUT path into the
tensor's own memory (:meth:`Model.input_buffer`).

Frame order: index 0 of a window is the oldest frame, index W-1 the newest (see engine.sidecar for the
layouts). Decoding output to held actions is :class:`Decoder`'s job; it is stateful (hysteresis).

Threads: a Model is not thread-safe; one thread (the inference loop) owns it. ``invoke()`` releases the
GIL while the runtime runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.play.tflite_file import NotTFLiteError, TFLiteFileError, check_tflite
from engine.sidecar import CHANNELS, DEFAULT_THRESHOLD, InputScale, ModelSidecar, SidecarError

# Runtimes in order of preference; the module names are also the names reported.
RUNTIMES: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow")

# What Model.load assumes when there is no sidecar and no flag: recorded in Model.assumed so the CLI can say.
DEFAULT_FPS = 30.0

# The engine-play flag that sets each sidecar field; error messages name these.
FLAGS: dict[str, str] = {
    "fps": "--fps",
    "window": "--frames",  # --window names the captured window, as in engine-record
    "skip": "--skip",
    "frame_size": "--frame-size",
    "color": "--color",
    "layout": "--layout",
    "scale": "--scale",
    "actions": "--actions",
    "encoding": "--encoding",
    "thresholds": "--thresholds",
    "hysteresis": "--hysteresis",
    "classes": "--classes",
    "history": "--history",
}

_INPUT_DTYPES = (np.dtype(np.float32), np.dtype(np.uint8), np.dtype(np.int8))


class ModelError(EngineError):
    """An unusable model: missing, unreadable, not TFLite, no runtime, or not fitting its spec (one line)."""


# ---- loading ---------------------------------------------------------------------------------------------
def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def _interpreter_class(runtime: str) -> Any:
    """Import the Interpreter class of one runtime (raises whatever the import raises)."""
    if runtime == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter
    elif runtime == "tflite_runtime":
        from tflite_runtime.interpreter import Interpreter
    elif runtime == "tensorflow":
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    else:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    return Interpreter


def _check_file(path: Path) -> None:
    """Refuse what no runtime should see, before a runtime sees it: their errors are less clear, and
    tensorflow.lite crashes the process (SIGSEGV) on a truncated file instead of raising."""
    try:
        check_tflite(path)
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist; pass the path of a .tflite file") from None
    except IsADirectoryError:
        raise ModelError(f"model path {path} is a directory; pass the path of a .tflite file") from None
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {_one_line(e)}; check its permissions") from None
    except NotTFLiteError as e:
        raise ModelError(
            f"model file {path} is {e}; pass a .tflite file (convert Keras or SavedModel models with "
            "tf.lite.TFLiteConverter)"
        ) from None
    except TFLiteFileError as e:
        raise ModelError(f"model file {path} is truncated or corrupt: {e}; copy or re-export it") from None


def load_interpreter(
    path: str | os.PathLike[str], threads: int | None = None, *, runtimes: Sequence[str] = RUNTIMES
) -> tuple[Any, str]:
    """Load ``path`` with the first runtime that is installed, and allocate its tensors.

    Returns (interpreter, runtime name), the name being one of ``RUNTIMES``. ``threads`` is the number of
    CPU threads the runtime may use (None: the runtime's default). A runtime that is not installed (or
    fails to import) is skipped. The first one that imports has the last word on the file: if it refuses
    the file, no other runtime is tried, because the file is the problem, and a fallback runtime handed
    a file the preferred one rejected may crash the process rather than raise (tensorflow.lite does).
    Raises ModelError (one line) when the file is missing, not a TFLite model or structurally broken
    (checked before any runtime sees it), when no runtime is installed, or with the runtime's reason.
    """
    p = Path(path)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ModelError(f"threads must be a whole number >= 1, got {threads!r}; pass e.g. --threads 2")
    _check_file(p)
    unavailable: list[str] = []
    for runtime in runtimes:
        try:
            interpreter_class = _interpreter_class(runtime)
        except ValueError:
            raise
        except Exception as e:  # ImportError, or a runtime built against another NumPy ABI
            unavailable.append(f"{runtime} ({_one_line(e)})")
            continue
        try:
            interpreter = interpreter_class(model_path=str(p), num_threads=threads)
            interpreter.allocate_tensors()
        except Exception as e:  # the runtimes raise ValueError or RuntimeError with multi-line text
            raise ModelError(
                f"{runtime} could not load {p}: {_one_line(e)}; the file is corrupt, truncated or needs ops "
                "this runtime lacks: re-export it"
            ) from None
        return interpreter, runtime
    raise ModelError(
        f"no TFLite runtime could be imported (tried {', '.join(unavailable) or 'none'}); "
        "pip install ai-edge-litert"
    )


# ---- tensor helpers --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tensor:
    """What the engine needs of one input or output tensor."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float  # 0.0 when not quantised
    zero_point: int

    @classmethod
    def of(cls, detail: Mapping[str, Any]) -> _Tensor:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return cls(
            index=int(detail["index"]),
            name=str(detail.get("name", "")),
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=np.dtype(detail["dtype"]),
            scale=float(scale),
            zero_point=int(zero_point),
        )

    @property
    def quantized(self) -> bool:
        return self.dtype != np.float32

    def check_dtype(self, what: str) -> None:
        if self.dtype not in _INPUT_DTYPES:
            raise ModelError(
                f"model {what} {self.shape} is {self.dtype.name}; engine-play feeds and reads float32, uint8 "
                "or int8 tensors: re-export the model with one of those"
            )
        if self.quantized and not (self.scale > 0 and math.isfinite(self.scale)):
            raise ModelError(
                f"model {what} is {self.dtype.name} without quantisation parameters; re-export it with "
                "full-integer quantisation or a float32 interface"
            )


def _to_tensor_values(real: np.ndarray, tensor: _Tensor) -> np.ndarray:
    """Real input values (float64) -> what goes into ``tensor``: float32, or quantised and clipped."""
    if not tensor.quantized:
        return real.astype(np.float32)
    scaled = real / tensor.scale
    # Round half away from zero, as TFLite's Quantize kernel (TfLiteRound = std::round), then add the zp.
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + tensor.zero_point
    info = np.iinfo(tensor.dtype)
    return np.clip(q, info.min, info.max).astype(tensor.dtype)


def _from_tensor_values(values: np.ndarray, tensor: _Tensor) -> np.ndarray:
    """Output tensor values -> float32 real values (dequantised when quantised)."""
    if not tensor.quantized:
        return values.astype(np.float32, copy=False)
    return ((values.astype(np.float32) - np.float32(tensor.zero_point)) * np.float32(tensor.scale)).astype(
        np.float32
    )


def _frame_words(shape: tuple[int, ...]) -> str:
    """Human description of a frames input shape, e.g. '4 frames of 84x84 gray'."""
    if len(shape) == 5:
        _, w, h, width, c = shape
        kind = {1: "gray", 3: "rgb"}.get(c, f"{c}-channel")
        return f"{w} frame{'s' if w != 1 else ''} of {width}x{h} {kind}"
    _, h, width, c = shape
    return f"{c} stacked channels of {width}x{h}"


# ---- the model -------------------------------------------------------------------------------------------
class Model:
    """A loaded model checked against its spec. Create with :meth:`Model.load`.

    Attributes: ``path``, ``runtime`` (name from RUNTIMES), ``spec`` (the effective ModelSidecar, flags
    applied), ``sidecar_path`` (the m.json read, or None), ``assumed`` (spec fields that came from neither
    a sidecar, a flag nor the model, e.g. ("fps", "scale", "thresholds") without a sidecar).
    """

    def __init__(
        self,
        interpreter: Any,
        runtime: str,
        spec: ModelSidecar,
        *,
        path: Path,
        sidecar_path: Path | None,
        assumed: tuple[str, ...],
        frames: _Tensor,
        history: _Tensor | None,
        output: _Tensor,
    ) -> None:
        """Private: use :meth:`Model.load`, which checks that the tensors fit ``spec``."""
        self._interpreter = interpreter
        self.runtime = runtime
        self.spec = spec
        self.path = path
        self.sidecar_path = sidecar_path
        self.assumed = assumed
        self._frames = frames
        self._history = history
        self._output = output
        real = np.arange(256, dtype=np.float64) * spec.scale.multiply + spec.scale.add
        self._lut = _to_tensor_values(real, frames)
        self._lut.flags.writeable = False
        # Start from a defined state: an all-zero-pixel window and no actions held.
        self._interpreter.set_tensor(frames.index, np.broadcast_to(self._lut[0], frames.shape).copy())
        if history is not None:
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
        frames, history, output = _tensors(interpreter)
        changes = dict(overrides or {})
        unknown = sorted(set(changes) - set(FLAGS))
        if unknown:
            raise ModelError(f"unknown model setting {unknown[0]!r}; known settings: {', '.join(FLAGS)}")
        if actions is not None:
            changes["actions"] = list(actions)

        sidecar_path: Path | None = None
        assumed: tuple[str, ...] = ()
        if sidecar is None and p.with_suffix(".json").is_file():
            sidecar_path = p.with_suffix(".json")
            try:
                sidecar = ModelSidecar.load(sidecar_path)
            except SidecarError as e:
                raise ModelError(str(e)) from None
        if sidecar is not None:
            base = sidecar.to_dict()
            origin = {k: "sidecar" for k in base}
        else:
            base, origin = _infer(frames, history, output, changes)
            if "actions" not in changes:
                raise ModelError(
                    f"{p} has no sidecar ({p.with_suffix('.json').name} is missing), so its action names are "
                    f"unknown: pass --actions with {output.shape[-1]} names in output column order"
                )
        base.update(changes)
        origin.update({k: "flag" for k in changes})
        if sidecar is None:
            assumed = tuple(k for k, v in origin.items() if v == "default")
        try:
            spec = ModelSidecar.from_dict(base)
        except SidecarError as e:
            # The sidecar itself validated on its own, so the flags made it invalid (or are invalid).
            where = sidecar_path.name if sidecar_path else ("the sidecar" if sidecar is not None else "")
            raise ModelError(f"{where} with the flags applied: {e}" if where else str(e)) from None
        _check_fit(spec, frames, history, output, _Blame(origin, sidecar_path))
        return cls(
            interpreter, runtime, spec, path=p, sidecar_path=sidecar_path, assumed=assumed,
            frames=frames, history=history, output=output,
        )

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
        return _to_tensor_values(real, self._frames)

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
        self._interpreter.set_tensor(self._history.index, _to_tensor_values(real, self._history))

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
            raise ModelError(f"model failed to run in {self.runtime}: {_one_line(e)}") from None
        except ValueError as e:
            raise ModelError(f"model failed to run in {self.runtime}: {_one_line(e)}") from None
        out = self._interpreter.get_tensor(self._output.index)
        return _from_tensor_values(out, self._output).reshape(-1)

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


# ---- decoding ----------------------------------------------------------------------------------------
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

    def decode(self, output: np.ndarray) -> np.ndarray:
        """Decode one output vector (N,) into a new bool array (A,) of actions to hold."""
        out = np.asarray(output, dtype=np.float32).reshape(-1)
        if out.shape != (self._size,):
            raise ValueError(f"expected {self._size} output values, got {out.shape[0]}")
        if self.encoding == "combo":
            held = self._classes[int(np.argmax(out))].copy()
        elif self._hysteresis:
            held = (out >= self._on) | (self.held & (out >= self._off))
        else:
            held = out >= self._on
        self.held = held.copy()
        return held


# ---- spec inference and fit checks ---------------------------------------------------------------------
def _tensors(interpreter: Any) -> tuple[_Tensor, _Tensor | None, _Tensor]:
    """Find the frames input (4-D or 5-D), the optional history input (3-D) and the single output."""
    inputs = [_Tensor.of(d) for d in interpreter.get_input_details()]
    outputs = [_Tensor.of(d) for d in interpreter.get_output_details()]
    frames = [t for t in inputs if len(t.shape) in (4, 5)]
    history = [t for t in inputs if len(t.shape) == 3]
    if len(frames) != 1 or len(history) > 1 or len(frames) + len(history) != len(inputs):
        raise ModelError(
            f"model inputs {[t.shape for t in inputs]} are not what engine-play feeds: one frames input "
            "(1, W, H, W', C) or (1, H, W', W*C), and optionally a history input (1, history, actions)"
        )
    if len(outputs) != 1 or (len(outputs[0].shape) == 2 and outputs[0].shape[0] != 1) or len(
        outputs[0].shape
    ) not in (1, 2):
        raise ModelError(
            f"model outputs {[t.shape for t in outputs]} are not what engine-play reads: one (1, N) output"
        )
    for t, what in ((frames[0], "input"), (outputs[0], "output")):
        t.check_dtype(what)
    if history:
        history[0].check_dtype("history input")
    return frames[0], (history[0] if history else None), outputs[0]


def _infer(
    frames: _Tensor, history: _Tensor | None, output: _Tensor, changes: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A sidecar dict from the tensor shapes (fields in ``changes`` are left to the caller), with origins."""
    shape = frames.shape
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(key: str, value: Any, how: str = "model") -> None:
        if key not in changes:
            data[key], origin[key] = value, how

    if len(shape) == 5:
        _, window, h, width, c = shape
        put("layout", "frames")
        put("window", window)
        colors = {n: k for k, n in CHANNELS.items()}
        if c not in colors and "color" not in changes:
            raise ModelError(
                f"model input {shape} has {c} channels per frame; engine frames are gray (1) or rgb (3)"
            )
        put("color", colors.get(c, "gray"))
    else:
        _, h, width, stacked = shape
        put("layout", "channels")
        window, color = _split_channels(stacked, changes.get("window"), changes.get("color"), shape)
        put("window", window)
        put("color", color)
    put("frame_size", [width, h])
    put("encoding", "multihot")
    put("history", history.shape[1] if history is not None else 0)
    put("fps", DEFAULT_FPS, "default")
    put("scale", {"multiply": InputScale().multiply, "add": InputScale().add}, "default")
    if changes.get("encoding", "multihot") == "multihot" and "actions" in changes:
        put("thresholds", [DEFAULT_THRESHOLD] * len(changes["actions"]), "default")
    return data, origin


def _split_channels(stacked: int, window: Any, color: Any, shape: tuple[int, ...]) -> tuple[int, str]:
    """Split a channels-layout input's last dimension into (window, color) from what the flags give.

    A colour flag decides the split; else a window flag; else one frame of 1 or 3 channels. What cannot be
    split is refused listing the windows that would fit.
    """
    if isinstance(color, str) and color in CHANNELS:
        c = CHANNELS[color]
        return (stacked // c if stacked % c == 0 else 1), color  # a misfit is named by the fit check
    if isinstance(window, int) and window >= 1 and stacked % window == 0 and stacked // window in (1, 3):
        return window, "gray" if stacked // window == 1 else "rgb"
    if window is None and stacked in (1, 3):
        return 1, "gray" if stacked == 1 else "rgb"  # one frame, its own channels
    fits = [f"--frames {stacked} (gray)"] + ([f"--frames {stacked // 3} (rgb)"] if stacked % 3 == 0 else [])
    why = f"which --frames {window} does not split into gray or rgb frames" if window is not None else (
        "so it holds several frames"
    )
    raise ModelError(f"model input {shape} stacks {stacked} channels, {why}: pass {' or '.join(fits)}")


@dataclass(frozen=True)
class _Blame:
    """Where each spec field came from, to word mismatch messages ("the sidecar says" / "--frames is")."""

    origin: Mapping[str, str]
    sidecar_path: Path | None

    def says(self, key: str, value: str) -> str:
        how = self.origin.get(key, "sidecar")
        if how == "flag":
            return f"{FLAGS[key]} is {value}"
        if how == "sidecar":
            name = self.sidecar_path.name if self.sidecar_path else "the sidecar"
            return f"{name} says {key} {value}"
        return f"the engine assumed {key} {value}"

    def fix(self, key: str) -> str:
        if self.origin.get(key, "sidecar") == "sidecar":
            return f" or fix {self.sidecar_path.name if self.sidecar_path else 'the sidecar'}"
        return ""


def _check_fit(
    spec: ModelSidecar, frames: _Tensor, history: _Tensor | None, output: _Tensor, blame: _Blame
) -> None:
    """Raise ModelError naming the first dimension where the model's tensors differ from ``spec``."""
    shape = frames.shape
    expects = f"model input expects {_frame_words(shape)} {shape}"

    def refuse(key: str, value: str, right: str) -> ModelError:
        fix = f"pass {FLAGS[key]} {right}{blame.fix(key)}"
        return ModelError(f"{expects} but {blame.says(key, value)}: {fix}")

    if shape[0] != 1:
        raise ModelError(f"{expects} with batch {shape[0]}; engine-play runs batch 1: re-export with batch 1")
    model_layout = "frames" if len(shape) == 5 else "channels"
    if spec.layout != model_layout:
        raise refuse("layout", spec.layout, model_layout)
    if model_layout == "frames":
        _, window, h, width, c = shape
        if window != spec.window:
            raise refuse("window", str(spec.window), str(window))
        if c != spec.channels:
            if c not in (1, 3):
                raise ModelError(f"{expects}; engine frames are gray (1 channel) or rgb (3): not playable")
            raise refuse("color", spec.color, "gray" if c == 1 else "rgb")
    else:
        _, h, width, stacked = shape
        if stacked != spec.window * spec.channels:
            if stacked % spec.channels == 0:
                raise refuse("window", f"{spec.window} of {spec.color}", str(stacked // spec.channels))
            other = "gray" if spec.color == "rgb" else "rgb"
            raise refuse("color", spec.color, other)
    if (width, h) != spec.frame_size:
        raise refuse("frame_size", f"{spec.width}x{spec.height}", f"{width}x{h}")

    a = len(spec.actions)
    if history is None and spec.history:
        raise ModelError(
            f"model has no history input but {blame.says('history', str(spec.history))}: pass --history 0"
            f"{blame.fix('history')}"
        )
    if history is not None:
        _, rows, cols = history.shape
        hist = f"model history input expects the last {rows} action vectors {history.shape}"
        if history.shape[0] != 1 or rows != spec.history:
            raise ModelError(
                f"{hist} but {blame.says('history', str(spec.history))}: pass --history {rows}"
                f"{blame.fix('history')}"
            )
        if cols != a:
            raise ModelError(
                f"{hist} of {cols} actions but {blame.says('actions', str(list(spec.actions)))}: pass "
                f"--actions with {cols} names{blame.fix('actions')}"
            )

    n = int(np.prod(output.shape))
    if n != spec.outputs:
        if spec.encoding == "multihot":
            raise ModelError(
                f"model outputs {n} values {output.shape} but "
                f"{blame.says('actions', str(list(spec.actions)))} (multihot: one output per action): "
                f"pass --actions with {n} names{blame.fix('actions')}"
            )
        raise ModelError(
            f"model outputs {n} values {output.shape} but {blame.says('classes', str(len(spec.classes)))} "
            f"(combo: one output per class): pass --classes with {n} classes{blame.fix('classes')}"
        )


__all__ = [
    "DEFAULT_FPS",
    "FLAGS",
    "RUNTIMES",
    "Decoder",
    "Model",
    "ModelError",
    "load_interpreter",
]
