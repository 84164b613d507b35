"""Fused convert+resize: every kernel path against OpenCV and against the NumPy twin."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from kernels_ref import convert_resize as twin
from scenes import scene

from engine import _native

# (source w, h) -> (output w, h): integer and non-integer factors, odd sizes, the bench sizes.
SIZES = [
    ((1920, 1080), (160, 120)),
    ((1920, 1080), (256, 256)),
    ((800, 600), (160, 120)),
    ((641, 479), (97, 61)),
    ((37, 23), (5, 7)),
    ((333, 201), (333, 201)),
    ((250, 250), (84, 84)),
    ((101, 3), (7, 1)),
]


def random_bgra(w: int, h: int, seed: int, pad: int = 0) -> np.ndarray:
    """Random BGRA with `pad` extra pixels per row, returned as a (h, w, 4) view with padded pitch."""
    rng = np.random.default_rng(seed)
    full = rng.integers(0, 256, (h, w + pad, 4), dtype=np.uint8)
    return full[:, :w]


def opencv(bgra: np.ndarray, width: int, height: int, color: str) -> np.ndarray:
    code = cv2.COLOR_BGRA2GRAY if color == "gray" else cv2.COLOR_BGRA2RGB
    conv = cv2.cvtColor(np.ascontiguousarray(bgra), code)
    if conv.shape[1] == width and conv.shape[0] == height:
        return conv
    return cv2.resize(conv, (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("color", ["gray", "rgb"])
@pytest.mark.parametrize(("src", "dst"), SIZES)
def test_random_images_match_opencv_and_twin(kernel_path: str, color: str, src: tuple, dst: tuple) -> None:
    bgra = random_bgra(*src, seed=src[0] * 7 + dst[1], pad=5)
    assert bgra.strides[0] != bgra.shape[1] * 4  # padded pitch really is exercised
    got = _native.convert_resize(bgra, *dst, color, kernel_path)
    ref = opencv(bgra, *dst, color)
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1, f"{kernel_path} {color} {src}->{dst}: max diff {diff.max()} vs OpenCV"
    diff_twin = np.abs(got.astype(np.int16) - twin(bgra, *dst, color).astype(np.int16))
    assert diff_twin.max() <= 1
    if src == dst:
        assert np.array_equal(got, ref)  # same-size conversion is exact, as OpenCV's
    # Off-by-one only at rounding boundaries: almost every pixel matches the twin exactly.
    assert (diff_twin == 0).mean() > 0.98


def test_every_path_is_bit_identical() -> None:
    bgra = random_bgra(1283, 727, seed=3, pad=3)
    for dst in [(160, 120), (256, 256), (1283, 727), (99, 13)]:
        for color in ("gray", "rgb"):
            outs = [_native.convert_resize(bgra, *dst, color, p) for p in _native.kernel_paths()]
            for o in outs[1:]:
                assert np.array_equal(o, outs[0]), f"{dst} {color}"


def test_upscale_is_area_mean(kernel_path: str) -> None:
    # OpenCV's INTER_AREA turns bilinear when upscaling; ours stays a box filter: check the twin.
    bgra = random_bgra(13, 9, seed=5)
    got = _native.convert_resize(bgra, 40, 21, "rgb", kernel_path)
    assert np.abs(got.astype(int) - twin(bgra, 40, 21, "rgb").astype(int)).max() <= 1


def test_real_screen_content(image_window: object, xvfb: object, kernel_path: str) -> None:
    window = image_window(scene(600, 800, seed=1), title="kernel-scene")  # type: ignore[operator]
    source = _native.X11Grabber(window_id=window.window_id)
    bgra = source.grab()
    for dst, color in [((160, 120), "gray"), ((256, 256), "rgb"), ((84, 84), "gray"), ((800, 600), "rgb")]:
        got = _native.convert_resize(bgra, *dst, color, kernel_path)
        assert np.abs(got.astype(int) - opencv(bgra, *dst, color).astype(int)).max() <= 1


def test_output_into_padded_array(kernel_path: str) -> None:
    bgra = random_bgra(64, 48, seed=9)
    big = np.zeros((20, 40, 3), np.uint8)
    view = big[2:14, 3:19]  # padded pitch on the output too
    plan = _native.ConvertResize(64, 48, 16, 12, "rgb", kernel_path)
    plan.run(bgra, view)
    assert np.array_equal(view, _native.convert_resize(bgra, 16, 12, "rgb", kernel_path))
    assert not big[:2].any() and not big[14:].any() and not big[:, :3].any() and not big[:, 19:].any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _native.convert_resize(np.zeros((4, 4, 3), np.uint8), 2, 2), "BGRA"),
        (lambda: _native.convert_resize(np.zeros((4, 4, 4), np.float32), 2, 2), "BGRA"),
        (lambda: _native.convert_resize(np.zeros((4, 4, 4), np.uint8), 0, 2), "positive"),
        (lambda: _native.convert_resize(np.zeros((4, 4, 4), np.uint8), 2, 2, "hsv"), "gray"),
        (lambda: _native.convert_resize(np.zeros((4, 4, 4), np.uint8), 2, 2, "gray", "neon"), "auto"),
        (lambda: _native.convert_resize(np.zeros((4, 8, 4), np.uint8)[:, ::2], 2, 2), "contiguous"),
        (lambda: _native.ConvertResize(4, 4, 2, 2).run(np.zeros((5, 4, 4), np.uint8)), "prepared for 4x4"),
        (lambda: _native.ConvertResize(4, 4, 2, 2).run(np.zeros((4, 4, 4), np.uint8), np.zeros((2, 2, 3), np.uint8)),
         "(H, W)"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()  # type: ignore[operator]
