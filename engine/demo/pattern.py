"""The frame-number stamp the demo game draws in its top-left corner, and its decoder.

Every frame carries its number as black/white blocks, so a recording (or a latency probe) can tell
exactly which game frame a captured image shows, even after the recorder converted it to gray and
shrank it by area averaging.

Geometry (fixed, in window pixels, independent of the window size):

- ``BLOCK`` = 8 px square blocks, ``COLS`` = 18 per row, ``ROWS`` = 2 rows, origin at the window's
  top-left pixel (0, 0): the stamp covers x in [0, 144), y in [0, 16).
- Block (r, c) covers x in [8c, 8c + 8), y in [8r, 8r + 8); white (255, 255, 255) is 1, black is 0.
- Row 0: marker ``1 0``, then data bits 23..8 (most significant first).
- Row 1: marker ``0 1``, then data bits 7..0, then CRC-8 (polynomial 0x07, initial value 0, MSB
  first) of the three data bytes, most significant bit first.

Decoding at scale s (the frame was resized from the window size to window/s) reads the pixel under
each block's centre, ((c + 0.5) * 8 / s, (r + 0.5) * 8 / s). For s <= 4 the area footprint of that
output pixel (s source pixels wide) lies inside the block, so it is pure black or white; a pixel that
is neither (between 64 and 191) makes the reading fail. A reading is accepted only if every block is
clearly black or white, both markers match and the CRC matches: the CRC alone catches any one, two or
three wrong blocks (checked exhaustively in the tests), so a damaged stamp reads as None, not as a
wrong number.

The number is the game's tick index modulo 2**24 (77 hours at 60 Hz).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 8
COLS = 18
ROWS = 2
DATA_BITS = 24
MODULUS = 1 << DATA_BITS
WIDTH = BLOCK * COLS  # 144
HEIGHT = BLOCK * ROWS  # 16
_MARKERS = ((1, 0), (0, 1))
# A sample at or below _BLACK_MAX is a 0, at or above _WHITE_MIN a 1; anything between is unreadable.
_BLACK_MAX = 63
_WHITE_MIN = 192


def crc8(data: bytes) -> int:
    """CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0, no reflection (CRC-8/SMBUS)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode(number: int) -> np.ndarray:
    """The block bits for ``number`` (0 <= number < 2**24) as a (ROWS, COLS) uint8 array of 0/1."""
    if not 0 <= number < MODULUS:
        raise ValueError(f"pattern number must be in [0, {MODULUS}), got {number}")
    data = number.to_bytes(3, "big")
    bits = [(number >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)]
    check = crc8(data)
    bits += [(check >> (7 - i)) & 1 for i in range(8)]
    row0 = [*_MARKERS[0], *bits[:16]]
    row1 = [*_MARKERS[1], *bits[16:]]
    return np.array([row0, row1], dtype=np.uint8)


def white_blocks(number: int) -> Iterator[tuple[int, int, int, int]]:
    """(x, y, w, h) of every white block of ``number``'s stamp; the rest of the stamp area is black."""
    bits = encode(number)
    for r in range(ROWS):
        for c in range(COLS):
            if bits[r, c]:
                yield (c * BLOCK, r * BLOCK, BLOCK, BLOCK)


def draw(frame: np.ndarray, number: int) -> None:
    """Stamp ``number`` into ``frame`` in place: uint8 (H, W) gray or (H, W, C) with any channels.

    The frame must be at least WIDTH x HEIGHT pixels. Every channel gets the same value, so the stamp
    reads the same in RGB, BGRA or gray.
    """
    if frame.shape[0] < HEIGHT or frame.shape[1] < WIDTH:
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is smaller than the {WIDTH}x{HEIGHT} stamp")
    blocks = np.repeat(np.repeat(encode(number) * np.uint8(255), BLOCK, axis=0), BLOCK, axis=1)
    if frame.ndim == 2:
        frame[:HEIGHT, :WIDTH] = blocks
    else:
        frame[:HEIGHT, :WIDTH, :] = blocks[:, :, None]


def decode(frame: np.ndarray, scale: float = 1.0) -> int | None:
    """The number stamped in ``frame``, or None when the stamp is absent or unreadable.

    frame: uint8 (H, W) gray, or (H, W, C) colour with C >= 3 (RGB, BGR, BGRA: only the mean of the
    first three channels is used), showing the game window resized to 1/scale of its size.
    scale: window size / frame size, 1 to 4 (larger scales are tried but blocks get too small).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] < 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3|4) frame, got {frame.dtype} {frame.shape}")
    step = BLOCK / scale
    xs = ((np.arange(COLS) + 0.5) * step).astype(np.intp)
    ys = ((np.arange(ROWS) + 0.5) * step).astype(np.intp)
    if xs[-1] >= frame.shape[1] or ys[-1] >= frame.shape[0]:
        return None
    samples = frame[np.ix_(ys, xs)]
    if samples.ndim == 3:
        samples = samples[..., :3].astype(np.uint16).sum(axis=2) // 3
    ones = samples >= _WHITE_MIN
    if not np.all(ones | (samples <= _BLACK_MAX)):
        return None
    bits = ones.astype(np.uint8)
    if tuple(bits[0, :2]) != _MARKERS[0] or tuple(bits[1, :2]) != _MARKERS[1]:
        return None
    payload = np.concatenate([bits[0, 2:], bits[1, 2:]])
    number = 0
    for b in payload[:DATA_BITS]:
        number = (number << 1) | int(b)
    check = 0
    for b in payload[DATA_BITS:]:
        check = (check << 1) | int(b)
    if crc8(number.to_bytes(3, "big")) != check:
        return None
    return number


__all__ = [
    "BLOCK",
    "COLS",
    "HEIGHT",
    "MODULUS",
    "ROWS",
    "WIDTH",
    "crc8",
    "decode",
    "draw",
    "encode",
    "white_blocks",
]
