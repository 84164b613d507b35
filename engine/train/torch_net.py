"""The reference network in PyTorch: the same CNN as :mod:`engine.train.net`, for ``engine-train
--framework torch``.

Input is the torch adapter's "channels" layout, (N, W*C, H, W') (frames stacked on the channel axis,
see :mod:`engine.dataset.torch_adapter`), so the exported .tflite takes engine-play's (1, H, W', W*C)
through one permutation. Architecture, as in Keras:

    [mask]  a fixed 0/1 multiply over the frame (a buffer: saved with the module, never trained)
    conv 5x5 stride 2, 16 filters, ReLU
    conv 3x3 stride 2, 32 filters, ReLU        repeated until the feature map is at most 8 wide and high
    flatten -> linear 64, ReLU -> dropout -> linear (outputs)

Weights start as Keras starts them (Glorot-uniform, zero biases; PyTorch's defaults are smaller and,
on the demo, trained slower). The last layer gives logits (PyTorch's losses take them);
:func:`engine.export.to_tflite` appends the sigmoid (multihot) or softmax (combo) that engine-play's
thresholds read. Padding ``kernel // 2`` gives Keras' "same" output size at stride 2 (ceil(n / 2)).

Only this module and :mod:`engine.train.torch_trainer` import torch, and only when training runs.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from engine.train.data import TrainError
from engine.train.net import MAX_FEATURE_SIZE

_INSTALL = "pip install 'engine[torch]' (torch, litert-torch, ai-edge-quantizer and matplotlib)"


def require_torch_extra() -> None:
    """Raise TrainError (one line, with the install command) unless the [torch] extra's packages can be
    imported; cheap: it looks them up without importing them."""
    missing = []
    for name in ("torch", "litert_torch", "ai_edge_quantizer", "matplotlib"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise TrainError(f"engine-train --framework torch needs {', '.join(missing)}, not installed here; install "
                         f"the extra: {_INSTALL}")


def build_model(input_shape: tuple[int, int, int], outputs: int, mask: np.ndarray | None = None, *,
                dense: int = 64, dropout: float = 0.2) -> Any:
    """The torch.nn.Module described in the module docs. input_shape: (H, W', W*C) as
    :attr:`engine.train.data.TrainData.input_shape` gives it; mask: float32 (H, W', 1) of 0/1 or None."""
    import torch
    from torch import nn

    h, w, channels = input_shape

    class ReferenceCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mask", None if mask is None else torch.from_numpy(
                np.ascontiguousarray(np.asarray(mask, np.float32).transpose(2, 0, 1)))[None])
            layers: list[nn.Module] = []
            c_in, ch, cw, filters, kernel = channels, h, w, 16, 5
            while True:
                layers += [nn.Conv2d(c_in, filters, kernel, stride=2, padding=kernel // 2), nn.ReLU()]
                ch, cw = (ch + 1) // 2, (cw + 1) // 2
                c_in, filters, kernel = filters, 32, 3
                if max(ch, cw) <= MAX_FEATURE_SIZE:
                    break
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * ch * cw, dense), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(dense, outputs))
            for layer in self.modules():  # Keras' initialisers: Glorot-uniform weights, zero biases
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(layer.weight)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if isinstance(self.mask, torch.Tensor):  # a registered buffer, or None without masks
                x = x * self.mask
            return self.head(self.features(x))

    return ReferenceCNN()


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch seeds, and deterministic torch kernels: the same data, seed and machine give
    the same weights."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


__all__ = ["build_model", "require_torch_extra", "seed_everything"]
