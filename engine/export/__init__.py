"""engine.export: a PyTorch module trained on engine.dataset windows -> a checked .tflite for engine-play.

    from engine.dataset import Windows
    from engine.dataset.torch_adapter import data_loader
    from engine.export import to_tflite
    train = Windows("racer", window=4)
    for x, y in data_loader(train, 64, shuffle=True, seed=0): ...      # x (B, W*C, H, W'): fit your module
    for e in to_tflite(net, train, "models/racer.tflite", quantize=True):
        print(e.line())                                                 # + racer.json, racer_uint8.tflite/.json

See :mod:`engine.export.torch_tflite` for the steps, the check and the converter choice. Importing this
package imports torch (``pip install 'engine[torch]'``); engine-record and engine-play never import it.
"""

from __future__ import annotations

from engine.export.torch_tflite import (
    DEFAULT_QUANTIZED_TOLERANCE,
    DEFAULT_TOLERANCE,
    Exported,
    ExportError,
    to_tflite,
)

__all__ = ["DEFAULT_QUANTIZED_TOLERANCE", "DEFAULT_TOLERANCE", "ExportError", "Exported", "to_tflite"]
