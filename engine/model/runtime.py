"""The TFLite runtime seen from engine-play: which runtime is installed, loading a file into it, and what
the engine needs of its tensors (shape, dtype, quantisation).

Loading. The file is checked structurally first (engine.model.tflite_file), then :func:`load_interpreter`
takes the first runtime of ``RUNTIMES`` that is installed (LiteRT first: it works with NumPy 2) and reports
which one loaded; a runtime that refuses the file is the answer, not a reason to try the next one. Every
problem a user can cause is a one-line ``ModelError``.

Quantisation follows TFLite's own kernels: an input is float32 (real values as they are) or uint8/int8
(q = round(real / scale) + zero_point, clipped, ties away from zero like TFLite's Quantize kernel); an
output is dequantised as (q - zero_point) * scale (:meth:`TensorInfo.quantize`, :meth:`TensorInfo.dequantize`).
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
from engine.model.tflite_file import NotTFLiteError, TFLiteFileError, check_tflite

# Runtimes in order of preference; the module names are also the names reported.
RUNTIMES: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow")

_TENSOR_DTYPES = (np.dtype(np.float32), np.dtype(np.uint8), np.dtype(np.int8))


class ModelError(EngineError):
    """An unusable model: missing, unreadable, not TFLite, no runtime, or not fitting its spec (one line)."""


def one_line(e: BaseException) -> str:
    """The first non-empty line of an exception's text (the runtimes raise multi-line messages)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


# ---- discovery and loading -------------------------------------------------------------------------------
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
        raise ModelError(f"cannot read model file {path}: {one_line(e)}; check its permissions") from None
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
            unavailable.append(f"{runtime} ({one_line(e)})")
            continue
        try:
            interpreter = interpreter_class(model_path=str(p), num_threads=threads)
            interpreter.allocate_tensors()
        except Exception as e:  # the runtimes raise ValueError or RuntimeError with multi-line text
            raise ModelError(
                f"{runtime} could not load {p}: {one_line(e)}; the file is corrupt, truncated or needs ops "
                "this runtime lacks: re-export it"
            ) from None
        return interpreter, runtime
    raise ModelError(
        f"no TFLite runtime could be imported (tried {', '.join(unavailable) or 'none'}); "
        "pip install ai-edge-litert"
    )


# ---- tensors ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    """What the engine needs of one input or output tensor (from the interpreter's tensor details)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float  # 0.0 when not quantised
    zero_point: int

    @classmethod
    def of(cls, detail: Mapping[str, Any]) -> TensorInfo:
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
        """Refuse (ModelError) a dtype engine-play cannot feed or read, or quantisation without parameters."""
        if self.dtype not in _TENSOR_DTYPES:
            raise ModelError(
                f"model {what} {self.shape} is {self.dtype.name}; engine-play feeds and reads float32, uint8 "
                "or int8 tensors: re-export the model with one of those"
            )
        if self.quantized and not (self.scale > 0 and math.isfinite(self.scale)):
            raise ModelError(
                f"model {what} is {self.dtype.name} without quantisation parameters; re-export it with "
                "full-integer quantisation or a float32 interface"
            )

    def quantize(self, real: np.ndarray) -> np.ndarray:
        """Real values (float64) -> what goes into this tensor: float32, or quantised and clipped."""
        if not self.quantized:
            return real.astype(np.float32)
        scaled = real / self.scale
        # Round half away from zero, as TFLite's Quantize kernel (TfLiteRound = std::round), then add the zp.
        q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + self.zero_point
        info = np.iinfo(self.dtype)
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """This tensor's values -> float32 real values (dequantised when quantised)."""
        if not self.quantized:
            return values.astype(np.float32, copy=False)
        return ((values.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).astype(
            np.float32
        )


__all__ = ["RUNTIMES", "ModelError", "TensorInfo", "load_interpreter", "one_line"]
