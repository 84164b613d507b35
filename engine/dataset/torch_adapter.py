"""PyTorch adapter: a map-style ``Dataset`` over :class:`~engine.dataset.windows.Windows` and a
``DataLoader`` whose batches are those of :meth:`Windows.batches` in PyTorch's channels-first layout.

Imports torch, so import this module only when you use it (``pip install engine[torch]``)::

    from engine.dataset.torch_adapter import data_loader
    for x, y in data_loader(train, batch_size=64, shuffle=True, seed=0):   # x float32 (B, W*C, H, W')
        ...

Layout (one contract with :func:`engine.export.to_tflite`, named after the sidecar layout it exports to):

    "channels"  (B, W*C, H, W'): the window's frames stacked on the channel axis, channel f*C + c holding
                channel c of frame f, frame 0 the oldest; what a Conv2d takes. Exported with sidecar
                layout "channels": engine-play feeds (1, H, W', W*C) and :func:`to_module_layout` (the
                first op of the exported graph) permutes it to exactly this tensor.
    "frames"    (B, C, W, H, W'): time as the depth axis of a Conv3d (N, C, D, H, W). Exported with
                sidecar layout "frames": engine-play feeds (1, W, H, W', C).

For gray windows the "channels" tensor is (B, W, H, W'), the array :meth:`Windows.batches` returns.

Each batch is one gather kernel call (``Dataset.__getitem__`` takes an index array), not ``batch_size``
single-window fetches plus a collate. Tensors share memory with the freshly gathered NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from engine.dataset.windows import Windows

TorchLayout = Literal["channels", "frames"]
LAYOUTS: tuple[TorchLayout, ...] = ("channels", "frames")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")


def windows_to_layout(x: np.ndarray, layout: TorchLayout = "channels", channels: int = 1) -> np.ndarray:
    """Gathered windows (n, W, H, W'[, C]) (any dtype) -> the module layout (a new C-contiguous array).

    ``channels``: C, 1 for gray windows (which have no channel axis) or 3 for rgb."""
    _check_layout(layout)
    n, w, h, width = x.shape[:4]
    frames = x.reshape(n, w, h, width, channels)
    if layout == "frames":
        return np.ascontiguousarray(frames.transpose(0, 4, 1, 2, 3))
    return np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3)).reshape(n, w * channels, h, width)


def to_module_layout(x: torch.Tensor, layout: TorchLayout = "channels") -> torch.Tensor:
    """engine-play's input tensor -> the module layout: (N, H, W', W*C) -> (N, W*C, H, W') for "channels",
    (N, W, H, W', C) -> (N, C, W, H, W') for "frames". A pure permutation: the exported graph starts with
    it, so the module sees exactly what :class:`WindowsDataset` gave it in training."""
    _check_layout(layout)
    return x.permute(0, 3, 1, 2) if layout == "channels" else x.permute(0, 4, 1, 2, 3)


class WindowsDataset(Dataset[tuple[torch.Tensor, ...]]):
    """Windows as a map-style Dataset. ``ds[i]`` is one window (x (W*C, H, W') in the default layout, y);
    ``ds[idx]`` with a 1-D index array or list is a whole batch (x (n, W*C, H, W'), y (n, ...)) gathered in
    one call.

    x is float32 (pixel / 255, the LUT play feeds a float model with) unless ``float32=False`` (uint8), in
    ``layout`` (see the module docs); y is uint8 (n, A) multi-hot or int64 (n,) class indices, as
    :meth:`Windows.gather` returns them. With axis targets an item has a third tensor, float32 (K,) or
    (n, K): the windows' :attr:`Windows.axis_targets` rows.
    """

    def __init__(self, windows: Windows, float32: bool = True, layout: TorchLayout = "channels") -> None:
        _check_layout(layout)
        self.windows = windows
        self.float32 = float32
        self.layout = layout
        self.channels = 3 if windows.spec.color == "rgb" else 1

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int | np.ndarray | Sequence[int]) -> tuple[torch.Tensor, ...]:
        single = np.ndim(index) == 0
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        # In a DataLoader worker process the workers are the parallelism; the OpenMP runtime behind the
        # parallel kernels is not fork-safe, so workers use the serial kernels.
        parallel = False if get_worker_info() is not None else None
        x, y = self.windows.gather(idx, float32=self.float32, parallel=parallel)
        if self.layout == "frames" or self.channels > 1:  # gray "channels" is the gathered array itself
            x = windows_to_layout(x, self.layout, self.channels)
        out: tuple[np.ndarray, ...] = (x, y)
        if self.windows.spec.axes:
            out = (x, y, np.asarray(self.windows.axis_targets)[idx % len(self.windows)])
        if single:
            return tuple(torch.from_numpy(np.asarray(a[0])) for a in out)
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in out)


class BatchOrder(Sampler[np.ndarray]):
    """Yields the index array of each batch, from :meth:`Windows.batch_indices`.

    With a seed, pass e (counting from 0) shuffles with ``seed + e``: the first pass equals
    ``windows.batches(batch_size, shuffle, seed)``, later passes differ, and all are reproducible.
    :meth:`set_epoch` sets the pass number explicitly (e.g. when resuming).
    """

    def __init__(self, windows: Windows, batch_size: int, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False) -> None:
        self.windows, self.batch_size, self.shuffle, self.seed, self.drop_last = (
            windows, batch_size, shuffle, seed, drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[np.ndarray]:
        seed = None if self.seed is None else self.seed + self.epoch
        self.epoch += 1
        return self.windows.batch_indices(self.batch_size, self.shuffle, seed, self.drop_last)

    def __len__(self) -> int:
        n = len(self.windows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def data_loader(
    windows: Windows,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    float32: bool = True,
    drop_last: bool = False,
    layout: TorchLayout = "channels",
    **loader_args: Any,
) -> DataLoader[tuple[torch.Tensor, ...]]:
    """A DataLoader yielding (x, y) tensor batches equal to ``windows.batches(batch_size, shuffle, seed,
    float32, drop_last)`` on its first pass (see :class:`BatchOrder` for later passes), x in ``layout``
    (see the module docs: the layout :func:`engine.export.to_tflite` exports to engine-play).

    loader_args go to DataLoader (num_workers, pin_memory, prefetch_factor, ...); batching and sampling
    are set here. With workers, each re-opens the sessions' memory maps (nothing is copied).
    """
    return DataLoader(
        WindowsDataset(windows, float32, layout),
        batch_size=None,  # the sampler yields whole batches; __getitem__ gathers each in one call
        sampler=BatchOrder(windows, batch_size, shuffle, seed, drop_last),
        **loader_args,
    )


__all__ = ["LAYOUTS", "BatchOrder", "TorchLayout", "WindowsDataset", "data_loader", "to_module_layout",
           "windows_to_layout"]
