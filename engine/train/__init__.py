"""engine.train: the reference trainer behind ``engine-train`` (needs the ``[train]`` extra to run).

    from engine.dataset import Windows
    from engine.train import TrainConfig, TrainData, train
    data = TrainData.from_windows(Windows("racer", window=4), fractions=(0.8, 0.2), by="time")
    result = train(data, "models", TrainConfig(epochs=30, name="racer"))
    print("\\n".join(result.lines()))     # models/racer.tflite + racer.json, racer_uint8.tflite + .json, ...

A small CNN over stacked frames (:mod:`~engine.train.net`), early stopping on the validation part,
export to float32 and uint8 .tflite with their m.json sidecars (:mod:`~engine.train.tflite`), a check of
both against Keras through engine-play's own Model (:mod:`~engine.train.check`), and a report with a PNG
of the training curves (:mod:`~engine.train.report`). Inputs are built by :mod:`~engine.train.data`.
Windows with axis targets (mouse motion, pad sticks) train keys and axes together
(:mod:`~engine.train.mixed`: output layout, loss, accuracy, per-axis scores).

Importing this package does not import TensorFlow (only :func:`train` does), so ``import engine`` and
``engine-train --help`` work without it.
"""

from __future__ import annotations

from engine.train.data import (
    Mirror,
    Part,
    Rect,
    TrainData,
    TrainError,
    mask_array,
    mirrored_rects,
    parse_mirror,
    parse_rect,
    shift_batch,
    to_input,
)
from engine.train.trainer import TrainConfig, TrainResult, train

__all__ = [
    "Mirror",
    "Part",
    "Rect",
    "TrainConfig",
    "TrainData",
    "TrainError",
    "TrainResult",
    "mask_array",
    "mirrored_rects",
    "parse_mirror",
    "parse_rect",
    "shift_batch",
    "to_input",
    "train",
]
