"""Export a trained Keras model to .tflite, float32 and uint8, each with its m.json sidecar beside it.

- float32: the model as trained, batch 1.
- uint8: full-integer quantisation (every op int8 inside, uint8 input and output tensors), calibrated on
  a representative set of training windows. The input tensor's scale comes out as 1/255 with zero point 0
  for inputs in [0, 1], so engine-play's LUT writes the pixel values themselves.

The sidecar is the dataset's (fps, window, skip, frame size, colour, layout "channels", scale, actions,
encoding, thresholds or classes) plus a ``training`` note (kept by engine-play, unused by it).

The converter prints a lot (a SavedModel banner on stdout, MLIR and calibration lines from C++ on
stderr): that output goes to a temporary file and is shown only when the conversion fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.sidecar import ModelSidecar
from engine.train.data import TrainError
from engine.train.net import import_tensorflow, inference_model


@contextlib.contextmanager
def _quiet() -> Iterator[Path]:
    """Send file descriptors 1 and 2 (C++ and Python writers alike) to a temporary file for the block.

    Yields the file's path, readable after the block. Python's own sys.stdout/stderr are flushed first so
    nothing written before is lost or reordered."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.NamedTemporaryFile("w+b", prefix="engine-train-convert-", suffix=".log", delete=False) as log:
        path = Path(log.name)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    keep = [ln.strip() for ln in text if ln.strip()][-lines:]
    return " | ".join(keep)


def convert(model: Any, representative: Callable[[], Iterator[list[np.ndarray]]] | None = None) -> bytes:
    """The .tflite flatbuffer of ``model`` at batch 1: float32, or uint8 fully quantised when a
    representative dataset (a generator function yielding [one float32 input of batch 1]) is given.

    Raises TrainError (one line, with the converter's last output) when conversion fails."""
    tf = import_tensorflow()
    export = inference_model(model)
    # Through a SavedModel, the path Keras 3 supports: TFLiteConverter.from_keras_model relies on tf_keras
    # hooks that are not always registered, and from_concrete_functions leaves variables unfrozen (the
    # uint8 calibration then fails on READ_VARIABLE).
    with _quiet() as log, tempfile.TemporaryDirectory(prefix="engine-train-savedmodel-") as saved:
        try:
            export.export(saved, format="tf_saved_model", verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            if representative is not None:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.uint8
                converter.inference_output_type = tf.uint8
            with warnings.catch_warnings():
                # Emitted for every uint8-input conversion: the calibration gives the input statistics.
                warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected",
                                        category=UserWarning)
                flatbuffer: bytes = converter.convert()
        except Exception as e:
            failure: Exception | None = e
        else:
            failure = None
    try:
        if failure is not None:
            kind = "uint8" if representative is not None else "float32"
            first = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
            raise TrainError(f"TFLite conversion ({kind}) failed: {first} [{_tail(log)}]")
    finally:
        log.unlink(missing_ok=True)
    return flatbuffer


def representative_windows(x: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A representative-dataset generator function over model inputs ``x`` (n, ...) float32, one window
    per step, batch 1."""

    def generate() -> Iterator[list[np.ndarray]]:
        for i in range(len(x)):
            yield [x[i : i + 1]]

    return generate


def write_model(flatbuffer: bytes, path: Path, sidecar: ModelSidecar) -> tuple[Path, Path]:
    """Write ``path`` (.tflite) and its sidecar ``path.with_suffix('.json')``; return both paths.

    Raises TrainError (one line) when the directory is not writable."""
    side = path.with_suffix(".json")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(flatbuffer)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TrainError(f"cannot write {path}: {e.strerror or e}; check the --out directory") from None
    try:
        sidecar.save(side)
    except Exception as e:  # SidecarError: already one line
        raise TrainError(str(e)) from None
    return path, side


__all__ = ["convert", "representative_windows", "write_model"]
