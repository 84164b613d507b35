"""engine.dataset: cut recorded sessions into training windows, fast, without copying the recordings.

    from engine.dataset import Windows, export
    w = Windows("racer", window=20, skip=2, encoding="combo", data_dir="data")   # a game's sessions
    parts = w.split((0.8, 0.2), by="time")
    train = parts["train"].balance("uniform", mode="under", seed=0)
    for x, y in train.batches(64, shuffle=True, seed=epoch, float32=True): ...
    export({"train": train, "val": parts["val"]}, "racer.h5")             # + racer.json, the m.json skeleton

Sessions recorded with axes (mouse motion, pad sticks) give every window axis targets too
(``Windows(..., axes=[...], axis_specs=["mouse_dx=mulaw:11:max=40"])``, :attr:`Windows.axis_targets`;
the encodings are :mod:`engine.axes_spec`), and the batches a third array.

Modules: :mod:`~engine.dataset.windows` (the Windows API), :mod:`~engine.dataset.kernels` (Numba
kernels; NumPy twins in :mod:`~engine.dataset._reference`), :mod:`~engine.dataset.labels`,
:mod:`~engine.dataset.balance`, :mod:`~engine.dataset.split`, :mod:`~engine.dataset.spec`; exports:
:mod:`~engine.dataset.export` (writing), :mod:`~engine.dataset.files` (the file layout, format choice
and path checks), :mod:`~engine.dataset.writers`, :mod:`~engine.dataset.reader` (reading back). The
framework adapters :mod:`~engine.dataset.torch_adapter` and :mod:`~engine.dataset.tf_adapter` are
imported only when used.
"""

from __future__ import annotations

from engine.dataset.balance import BalanceReport
from engine.dataset.export import ExportResult, export
from engine.dataset.labels import ARROWS9, WASD9
from engine.dataset.reader import describe, load, load_axes, read_spec
from engine.dataset.spec import DatasetError, DatasetSpec
from engine.dataset.windows import Windows, resolve_sessions

__all__ = [
    "ARROWS9",
    "WASD9",
    "BalanceReport",
    "DatasetError",
    "DatasetSpec",
    "ExportResult",
    "Windows",
    "describe",
    "export",
    "load",
    "load_axes",
    "read_spec",
    "resolve_sessions",
]
