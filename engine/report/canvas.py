"""A NumPy RGB canvas with the few primitives the report needs, and a minimal PNG encoder.

No plotting library: the canvas is an (H, W, 3) uint8 array; shapes are slice assignments and masks,
so a plot of 100 000 samples costs a few vectorised passes. Text is rendered with ``pygame.font``
(pygame is already an engine dependency for the demo game; its font module needs no display and
ships a default font, freesansbold) and alpha-blended in. PNG files are written by :func:`encode_png`
(zlib + struct, RFC 2083 / the W3C PNG spec): one IDAT chunk, 8-bit RGB, filter "Up" on every row,
which keeps flat plot areas and frame thumbnails small without a per-row filter search.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from typing import Any, Literal

import numpy as np

Color = tuple[int, int, int]
Anchor = Literal["left", "center", "right"]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GRID: Color = (228, 228, 232)
AXIS: Color = (120, 120, 128)
TEXT: Color = (30, 30, 36)
MUTED: Color = (110, 110, 120)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of an (H, W, 3) RGB or (H, W) gray uint8 image."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("a PNG needs at least one pixel")
    rows = np.ascontiguousarray(image).reshape(h, -1)
    # Filter type 2 ("Up"): each byte minus the byte above, modulo 256; the first row's "above" is zero.
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    color_type = 2 if image.ndim == 3 else 0
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)) + \
        _chunk(b"IEND", b"")


def _pygame() -> Any:
    """pygame, imported on first use only (it costs ~50 ms) and without its banner on stdout."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame.font
    import pygame.surfarray

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


_fonts: dict[int, Any] = {}


def _font(size: int) -> Any:
    if size not in _fonts:
        _fonts[size] = _pygame().font.Font(None, size)  # None: pygame's bundled default font
    return _fonts[size]


def text_alpha(text: str, size: int) -> np.ndarray:
    """Coverage (H, W) float32 in [0, 1] of ``text`` rendered antialiased at ``size`` px."""
    surface = _font(size).render(text, True, WHITE)
    return _pygame().surfarray.array_alpha(surface).T.astype(np.float32) / 255.0


class Canvas:
    """White (H, W, 3) uint8 image with clipped drawing primitives; coordinates are pixels, y down."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.pixels[:] = background

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def _clip(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        xa, xb = sorted((round(x0), round(x1)))
        ya, yb = sorted((round(y0), round(y1)))
        return max(0, xa), max(0, ya), min(self.width, xb), min(self.height, yb)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the canvas."""
        xa, ya, xb, yb = self._clip(x0, y0, x1, y1)
        if xa < xb and ya < yb:
            self.pixels[ya:yb, xa:xb] = color

    def frame(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        """A 1-px outline of the rectangle."""
        self.rect(x0, y0, x1, y0 + 1, color)
        self.rect(x0, y1 - 1, x1, y1, color)
        self.rect(x0, y0, x0 + 1, y1, color)
        self.rect(x1 - 1, y0, x1, y1, color)

    def hline(self, x0: float, x1: float, y: float, color: Color, dash: int = 0) -> None:
        if not dash:
            self.rect(x0, y, x1, y + 1, color)
            return
        for x in range(round(x0), round(x1), 2 * dash):
            self.rect(x, y, min(x + dash, x1), y + 1, color)

    def vline(self, x: float, y0: float, y1: float, color: Color) -> None:
        self.rect(x, y0, x + 1, y1, color)

    def vlines(self, xs: np.ndarray, y0: float, y1: float, color: Color) -> None:
        """Many 1-px vertical lines at once (event ticks, gap marks)."""
        cols = np.unique(np.round(np.asarray(xs, np.float64)).astype(np.int64))
        cols = cols[(cols >= 0) & (cols < self.width)]
        _, ya, _, yb = self._clip(0, y0, 1, y1)
        if len(cols) and ya < yb:
            self.pixels[ya:yb, cols] = color

    def spans(self, x0: np.ndarray, x1: np.ndarray, y0: float, y1: float, color: Color) -> None:
        """Horizontal bars [x0[i], x1[i]) between y0 and y1; each at least 1 px wide."""
        _, ya, _, yb = self._clip(0, y0, 1, y1)
        if ya >= yb or not len(x0):
            return
        a = np.clip(np.floor(np.asarray(x0, np.float64)), 0, self.width).astype(np.int64)
        b = np.clip(np.ceil(np.asarray(x1, np.float64)), 0, self.width).astype(np.int64)
        b = np.maximum(b, np.minimum(a + 1, self.width))
        # Coverage by a difference array: +1 where a bar starts, -1 where it ends.
        cover = np.zeros(self.width + 1, np.int64)
        np.add.at(cover, a, 1)
        np.add.at(cover, b, -1)
        cols = np.flatnonzero(np.cumsum(cover[:-1]) > 0)
        self.pixels[ya:yb, cols] = color

    def polyline(self, xs: np.ndarray, ys: np.ndarray, color: Color, clip: tuple[float, float, float, float],
                 width: int = 1) -> None:
        """A line through (xs, ys), xs increasing, drawn column by column inside ``clip`` (x0, y0, x1, y1).

        Each pixel column gets the vertical span covering the samples that fall in it and the line's
        value where it enters and leaves the column, so dense series show their full envelope and
        sparse ones are joined by straight segments."""
        xs = np.asarray(xs, np.float64)
        ys = np.asarray(ys, np.float64)
        ok = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[ok], ys[ok]
        if not len(xs):
            return
        cx0, cy0, cx1, cy1 = self._clip(*clip)
        c_lo = max(cx0, math.ceil(xs[0]))
        c_hi = min(cx1 - 1, math.floor(xs[-1]))
        if len(xs) == 1 or c_lo > c_hi:
            c = round(xs[0])
            if cx0 <= c < cx1:
                self.rect(c, ys[0], c + width, ys[0] + width, color)
            return
        cols = np.arange(c_lo, c_hi + 1)
        yi = np.interp(cols, xs, ys)
        lo, hi = yi.copy(), yi.copy()
        lo[1:] = np.minimum(lo[1:], yi[:-1])
        hi[1:] = np.maximum(hi[1:], yi[:-1])
        idx = np.round(xs).astype(np.int64) - c_lo
        inside = (idx >= 0) & (idx < len(cols))
        np.minimum.at(lo, idx[inside], ys[inside])
        np.maximum.at(hi, idx[inside], ys[inside])
        rows = np.arange(cy0, cy1)[:, None]
        half = (width - 1) / 2
        mask = (rows >= np.round(lo - half)[None, :]) & (rows <= np.round(hi + half)[None, :])
        region = self.pixels[cy0:cy1, c_lo:c_hi + 1]
        region[mask] = color

    def text(self, x: float, y: float, text: str, color: Color = TEXT, size: int = 15,
             anchor: Anchor = "left") -> int:
        """Draw one line of text with its top at y; returns its width in pixels."""
        if not text:
            return 0
        alpha = text_alpha(text, size)
        h, w = alpha.shape
        left = round(x - (w if anchor == "right" else w / 2 if anchor == "center" else 0))
        top = round(y)
        xa, ya, xb, yb = self._clip(left, top, left + w, top + h)
        if xa >= xb or ya >= yb:
            return w
        a = alpha[ya - top:yb - top, xa - left:xb - left, None]
        dst = self.pixels[ya:yb, xa:xb].astype(np.float32)
        dst += (np.asarray(color, np.float32) - dst) * a
        self.pixels[ya:yb, xa:xb] = np.round(dst).astype(np.uint8)
        return w

    def text_width(self, text: str, size: int = 15) -> int:
        return int(_font(size).size(text)[0]) if text else 0

    def image(self, x: int, y: int, img: np.ndarray) -> None:
        """Paste an (h, w) gray or (h, w, 3) RGB uint8 image with its top-left corner at (x, y), clipped."""
        rgb = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
        h, w = rgb.shape[:2]
        xa, ya, xb, yb = self._clip(x, y, x + w, y + h)
        if xa < xb and ya < yb:
            self.pixels[ya:yb, xa:xb] = rgb[ya - y:yb - y, xa - x:xb - x]


def area_resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a uint8 (H, W) or (H, W, C) image: box averages when shrinking, nearest when growing."""
    out = img.astype(np.float32)
    for axis, n in ((0, height), (1, width)):
        size = out.shape[axis]
        if n >= size:
            out = np.take(out, (np.arange(n) * size) // n, axis=axis)
            continue
        edges = (np.arange(n + 1) * size) // n  # every bin holds at least one source pixel since n < size
        csum = np.cumsum(out, axis=axis, dtype=np.float64)
        csum = np.concatenate([np.zeros_like(np.take(csum, [0], axis=axis)), csum], axis=axis)
        sums = np.take(csum, edges[1:], axis=axis) - np.take(csum, edges[:-1], axis=axis)
        shape = [1] * out.ndim
        shape[axis] = n
        out = (sums / np.diff(edges).reshape(shape)).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def nice_ticks(lo: float, hi: float, count: int = 6) -> np.ndarray:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi], about ``count`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo])
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-6, step)
    return np.round(ticks / step) * step  # no 0.30000000000000004


def nice_ceil(v: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= v (v > 0): a round axis limit."""
    if not (v > 0 and math.isfinite(v)):
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= v * (1 - 1e-12))


def fmt_tick(v: float, step: float) -> str:
    """A tick label with as many decimals as the step needs."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{v:.{decimals}f}"


__all__ = ["PNG_SIGNATURE", "Canvas", "area_resize", "encode_png", "fmt_tick", "nice_ceil", "nice_ticks", "text_alpha"]
