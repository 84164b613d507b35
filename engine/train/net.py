"""The reference network: a small CNN over stacked frames, in Keras (TensorFlow backend).

Only this module and :mod:`engine.train.tflite` import TensorFlow, and only when training runs, so
``import engine`` (and engine.train) works without the ``[train]`` extra.

Architecture, for an input (H, W', W*C) in the "channels" layout (frames on the channel axis):

    [mask]  a fixed 0/1 multiply over the frame: HUD regions the model must not see (see engine.train.data)
    conv 5x5 stride 2, 16 filters, ReLU
    conv 3x3 stride 2, 32 filters, ReLU        repeated until the feature map is at most 8 wide and high
    flatten -> dense 64, ReLU -> dropout -> dense (outputs): sigmoid per action (multihot) or softmax (combo)
                                               with axis targets, one dense per head (keys, then each axis:
                                               softmax over its bins or linear), concatenated

Flatten rather than global pooling: where things are on the screen (the car against the road) is what a
game policy reads. Every op converts to TFLite builtins and quantises to uint8/int8.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.train.data import TrainError

if TYPE_CHECKING:
    from engine.train.mixed import Layout

MAX_FEATURE_SIZE = 8  # stop downsampling once the feature map is at most this wide and high


_INSTALL = "pip install 'engine[train]' (tensorflow-cpu and matplotlib)"


def require_train_extra() -> None:
    """Raise TrainError (one line, with the install command) unless TensorFlow and matplotlib can be
    imported; cheap: it looks the packages up without importing them."""
    missing = []
    for name in ("tensorflow", "matplotlib"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken install, or sys.modules[name] = None
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise TrainError(f"engine-train needs {' and '.join(missing)}, not installed here; install the extra: "
                         f"{_INSTALL}")


def import_tensorflow() -> Any:
    """Import TensorFlow quietly (C++ INFO and WARNING lines off unless the user set the level), or raise
    TrainError (one line) saying how to install it."""
    # Read by TensorFlow's C++ logging when the library loads: must be set before the first import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as e:
        raise TrainError(f"engine-train needs TensorFlow ({e}); install the extra: {_INSTALL}") from None
    return tf


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TF kernels: the same data, seed and machine
    give the same weights."""
    import keras

    import_tensorflow().config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def build_model(
    input_shape: tuple[int, int, int],
    outputs: int,
    encoding: str,
    mask: np.ndarray | None = None,
    *,
    dense: int = 64,
    dropout: float = 0.2,
    batch_size: int | None = None,
    heads: Sequence[tuple[int, int, str]] | None = None,
) -> Any:
    """The Keras model described in the module docs (not compiled: see :func:`compile_model`).

    input_shape: (H, W', W*C). mask: float32 (H, W', 1) of 0/1 or None. batch_size: fixed batch axis
    (1 for export: engine-play runs batch 1), None for training. heads: with axis targets, (start, stop,
    activation) per head (:meth:`engine.train.mixed.Layout.heads`); None: one head of ``outputs``.
    """
    import_tensorflow()
    import keras

    inp = keras.Input(input_shape, batch_size=batch_size, name="frames")
    x = inp
    if mask is not None:
        x = fixed_mask(mask, name="mask")(x)
    h, w = input_shape[:2]
    filters, kernel = 16, 5
    while True:
        x = keras.layers.Conv2D(filters, kernel, strides=2, padding="same", activation="relu")(x)
        h, w = (h + 1) // 2, (w + 1) // 2
        filters, kernel = 32, 3
        if max(h, w) <= MAX_FEATURE_SIZE:
            break
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(dense, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    if heads is None:
        act = "sigmoid" if encoding == "multihot" else "softmax"
        out = keras.layers.Dense(outputs, activation=act, name="actions")(x)
    else:  # keys and axes (engine.train.mixed): one Dense per head, concatenated in the sidecar's order
        outs = [keras.layers.Dense(stop - start, activation=act, name=f"head{i}")(x)
                for i, (start, stop, act) in enumerate(heads)]
        out = keras.layers.Concatenate(name="actions")(outs) if len(outs) > 1 else outs[0]
    return keras.Model(inp, out, name="engine_reference_cnn")


def compile_model(model: Any, encoding: str, learning_rate: float, layout: Layout | None = None) -> None:
    """Adam; binary cross-entropy per action (multihot) or sparse categorical cross-entropy (combo); with
    axis targets (``layout``), the mixed loss and accuracy of :mod:`engine.train.mixed`."""
    import keras

    if layout is not None:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=layout.keras_loss(),
                      metrics=[layout.keras_accuracy()])
        return
    if encoding == "multihot":
        loss, metric = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss, metric = "sparse_categorical_crossentropy", keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[metric])


def inference_model(model: Any) -> Any:
    """The same layers (shared weights) behind a batch-1 input, as engine-play feeds it; dropout off."""
    import keras

    inp = keras.Input(model.input_shape[1:], batch_size=1, name="frames")
    return keras.Model(inp, model(inp, training=False), name=model.name)


@functools.cache  # one class per process, so isinstance and Keras' layer registry see one type
def _fixed_mask_class() -> Any:
    import keras

    class FixedMask(keras.layers.Layer):
        """Multiplies its input by a constant (H, W', 1) mask, broadcast over the channels; not trained."""

        def __init__(self, mask: np.ndarray, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._mask = np.asarray(mask, np.float32)

        def build(self, input_shape: Any) -> None:
            # A weight rather than a Python constant: it is saved with the model and becomes one TFLite
            # constant tensor feeding a MUL.
            self.mask = self.add_weight(shape=self._mask.shape, initializer=keras.initializers.Constant(self._mask),
                                        trainable=False, name="mask")

        def call(self, x: Any) -> Any:
            return x * self.mask

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mask": self._mask.tolist()}

    return FixedMask


def fixed_mask(mask: np.ndarray, **kwargs: Any) -> Any:
    """A non-trainable layer computing ``x * mask`` (see :func:`build_model`)."""
    return _fixed_mask_class()(mask, **kwargs)


__all__ = [
    "build_model",
    "compile_model",
    "fixed_mask",
    "import_tensorflow",
    "inference_model",
    "require_train_extra",
    "seed_everything",
]
