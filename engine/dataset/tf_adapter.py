"""tf.data adapter: a ``tf.data.Dataset`` whose batches are exactly those of :meth:`Windows.batches`.

TensorFlow is imported when :func:`tf_dataset` is called, not when this module is imported::

    from engine.dataset.tf_adapter import tf_dataset
    model.fit(tf_dataset(train, 64, shuffle=True, seed=0), validation_data=tf_dataset(val, 64), epochs=10)

Frames are gathered by the Numba kernel in the generator (one call per batch) and handed over as NumPy
arrays; ``prefetch`` overlaps the next gather with the training step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from engine.dataset.windows import Windows

Signature = tuple[tuple[int | None, ...], np.dtype]


def batch_signature(windows: Windows, float32: bool = True) -> tuple[Signature, ...]:
    """((x shape, x dtype), (y shape, y dtype)[, (axes shape, float32)]) of a batch, batch dimension None;
    the third only when the windows have axis targets."""
    s = windows.spec
    x = ((None, s.window, *s.frame_shape), np.dtype(np.float32 if float32 else np.uint8))
    y: Signature = ((None, len(s.actions)), np.dtype(np.uint8)) if s.encoding == "multihot" else (
        (None,), np.dtype(np.int64))
    return (x, y, ((None, len(s.axes)), np.dtype(np.float32))) if s.axes else (x, y)


def epoch_batches(
    windows: Windows, batch_size: int, shuffle: bool = False, seed: int | None = None, float32: bool = True,
    drop_last: bool = False,
) -> Callable[[], Iterator[tuple[np.ndarray, ...]]]:
    """A generator function for ``from_generator``: call e (from 0) yields
    ``windows.batches(batch_size, shuffle, seed + e, float32, drop_last)`` (so epochs differ but are
    reproducible; without a seed every epoch is freshly shuffled)."""
    epoch = [0]

    def generate() -> Iterator[tuple[np.ndarray, ...]]:
        e = epoch[0]
        epoch[0] += 1
        yield from windows.batches(batch_size, shuffle, None if seed is None else seed + e, float32, drop_last)

    return generate


def tf_dataset(
    windows: Windows, batch_size: int, shuffle: bool = False, seed: int | None = None, float32: bool = True,
    drop_last: bool = False, prefetch: int | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of (x, y) batches, the first pass equal to ``windows.batches(batch_size,
    shuffle, seed, float32, drop_last)``. x float32 (pixel / 255) unless float32=False; y uint8 (B, A)
    multi-hot or int64 (B,) class indices; with axis targets a third element, float32 (B, K) encoded axis
    targets (:attr:`Windows.axis_targets`). prefetch: batches to prepare ahead (default AUTOTUNE)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_generator(
        epoch_batches(windows, batch_size, shuffle, seed, float32, drop_last),
        output_signature=tuple(tf.TensorSpec(shape, tf.as_dtype(dtype))
                               for shape, dtype in batch_signature(windows, float32)),
    )
    return ds.prefetch(tf.data.AUTOTUNE if prefetch is None else prefetch)


__all__ = ["batch_signature", "epoch_batches", "tf_dataset"]
