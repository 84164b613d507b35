"""PyTorch adapter: a map-style ``Dataset`` over :class:`~engine.dataset.windows.Windows` and a
``DataLoader`` whose batches are exactly those of :meth:`Windows.batches`.

Imports torch, so import this module only when you use it (``pip install engine[torch]``)::

    from engine.dataset.torch_adapter import data_loader
    for x, y in data_loader(train, batch_size=64, shuffle=True, seed=0):   # x float32 (B, W, H, W')
        ...

Each batch is one gather kernel call (``Dataset.__getitem__`` takes an index array), not ``batch_size``
single-window fetches plus a collate. Tensors share memory with the freshly gathered NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from engine.dataset.windows import Windows


class WindowsDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Windows as a map-style Dataset. ``ds[i]`` is one window (x (W, H, W'[, C]), y); ``ds[idx]`` with a
    1-D index array or list is a whole batch (x (n, W, ...), y (n, ...)) gathered in one call.

    x is float32 (pixel / 255, as play feeds a float model) unless ``float32=False`` (uint8); y is uint8
    (n, A) multi-hot or int64 (n,) class indices, as :meth:`Windows.gather` returns them.
    """

    def __init__(self, windows: Windows, float32: bool = True) -> None:
        self.windows = windows
        self.float32 = float32

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int | np.ndarray | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        single = np.ndim(index) == 0
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        # In a DataLoader worker process the workers are the parallelism; the OpenMP runtime behind the
        # parallel kernels is not fork-safe, so workers use the serial kernels.
        parallel = False if get_worker_info() is not None else None
        x, y = self.windows.gather(idx, float32=self.float32, parallel=parallel)
        if single:
            return torch.from_numpy(x[0]), torch.from_numpy(np.asarray(y[0]))
        return torch.from_numpy(x), torch.from_numpy(y)


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
    **loader_args: Any,
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """A DataLoader yielding (x, y) tensor batches equal to ``windows.batches(batch_size, shuffle, seed,
    float32, drop_last)`` on its first pass (see :class:`BatchOrder` for later passes).

    loader_args go to DataLoader (num_workers, pin_memory, prefetch_factor, ...); batching and sampling
    are set here. With workers, each re-opens the sessions' memory maps (nothing is copied).
    """
    return DataLoader(
        WindowsDataset(windows, float32),
        batch_size=None,  # the sampler yields whole batches; __getitem__ gathers each in one call
        sampler=BatchOrder(windows, batch_size, shuffle, seed, drop_last),
        **loader_args,
    )


__all__ = ["BatchOrder", "WindowsDataset", "data_loader"]
