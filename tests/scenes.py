"""Synthetic game-like images shared by tests and benchmarks."""

from __future__ import annotations

import numpy as np


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A game-like RGB image: smooth gradients, hard-edged shapes and noise (not just random bytes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.float64)
    img[..., 0] = 128 + 100 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    img[..., 1] = 255 * xx / max(w - 1, 1)
    img[..., 2] = 255 * yy / max(h - 1, 1)
    for _ in range(12):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        dy, dx = rng.integers(5, h // 3 + 6), rng.integers(5, w // 3 + 6)
        img[y0 : y0 + dy, x0 : x0 + dx] = rng.integers(0, 256, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
