"""Plain NumPy twins of the native kernels: the oracles the parity tests compare against."""

from __future__ import annotations

import numpy as np

# OpenCV 5's fixed-point BT.601 weights (15 bits), as in native/kernels/kernel_isa.hpp.
B2Y, G2Y, R2Y = 3735, 19235, 9798


def area_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix: row i holds each source pixel's overlap with output i's footprint."""
    scale = src / dst
    edges = np.arange(dst + 1) * scale
    lo, hi = edges[:-1, None], np.minimum(edges[1:, None], src)
    p = np.arange(src)[None, :]
    return np.clip(np.minimum(p + 1, hi) - np.maximum(p, lo), 0, None)


def convert_resize(bgra: np.ndarray, width: int, height: int, color: str) -> np.ndarray:
    """Area-mean resize in float64 of B, G, R, then gray (BT.601) or RGB, rounded half up."""
    h, w = bgra.shape[:2]
    if (w, h) == (width, height):
        b, g, r = (bgra[..., k].astype(np.int64) for k in range(3))
        if color == "gray":
            return ((b * B2Y + g * G2Y + r * R2Y + (1 << 14)) >> 15).astype(np.uint8)
        return np.ascontiguousarray(bgra[..., 2::-1])
    my, mx = area_matrix(h, height), area_matrix(w, width)
    area = (h / height) * (w / width)
    chans = [my @ bgra[..., k].astype(np.float64) @ mx.T / area for k in range(3)]
    if color == "gray":
        out = (chans[0] * B2Y + chans[1] * G2Y + chans[2] * R2Y) / 32768.0
    else:
        out = np.stack([chans[2], chans[1], chans[0]], axis=-1)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
