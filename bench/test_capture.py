"""Grab + convert + resize per frame: the engine against mss + NumPy + OpenCV, same run, same screen.

Floor: what no pipeline can beat on this display, the X server's copy into shared memory
(XShmGetImage alone); the rest of the engine's time is its one read of the pixels (convert+resize).
"""

from __future__ import annotations

import cv2
import mss
import numpy as np
import pytest
from harness import per_call_ms

from engine import _native

CASES = [
    ((0, 0, 1920, 1080), (160, 120), "gray"),
    ((0, 0, 1920, 1080), (256, 256), "rgb"),
    ((560, 240, 800, 600), (160, 120), "gray"),
]


def _label(region: tuple, size: tuple, color: str) -> str:
    return f"grab+convert {region[2]}x{region[3]} -> {size[0]}x{size[1]} {color}"


@pytest.mark.parametrize(("region", "size", "color"), CASES, ids=[_label(*c) for c in CASES])
def test_grab_convert_resize(benchmark, report, mode, screen_content, region, size, color) -> None:  # type: ignore[no-untyped-def]
    rounds = 200 if mode == "quick" else 1000
    x, y, w, h = region
    grabber = _native.X11Grabber(region=(x, y, w, h))
    assert grabber.backend == "xshm"
    plan = _native.ConvertResize(w, h, *size, color)
    out = np.empty((size[1], size[0]) if color == "gray" else (size[1], size[0], 3), np.uint8)

    def engine() -> np.ndarray:
        return plan.run(grabber.grab(), out)

    sct = mss.MSS()
    area = {"left": x, "top": y, "width": w, "height": h}
    code = cv2.COLOR_BGRA2GRAY if color == "gray" else cv2.COLOR_BGRA2RGB

    def reference() -> np.ndarray:
        img = np.array(sct.grab(area))
        return cv2.resize(cv2.cvtColor(img, code), size, interpolation=cv2.INTER_AREA)

    # Same pixels in, the same frame out (within OpenCV's rounding), before timing anything.
    assert np.abs(engine().astype(int) - reference().astype(int)).max() <= 1

    benchmark.group = _label(region, size, color)
    benchmark.extra_info.update(backend=grabber.backend, kernel=plan.path,
                                size=f"{w}x{h}->{size[0]}x{size[1]}")
    benchmark.pedantic(engine, rounds=rounds, warmup_rounds=10, iterations=1)
    eng = float(np.median(per_call_ms(engine, rounds)))
    ref = float(np.median(per_call_ms(reference, rounds // 2)))
    grab = float(np.median(per_call_ms(grabber.grab, rounds)))
    sct.close()
    group = _label(region, size, color)
    report.add(group, f"engine ({grabber.backend}+{plan.path})", eng, "ms/frame", ratio=ref / eng,
               note=f"{eng / grab:.2f}x the floor; convert {eng - grab:.3f} ms")
    report.add(group, "mss+numpy+opencv", ref, "ms/frame", ratio=1.0)
    report.add(group, "floor: XShmGetImage alone", grab, "ms/frame")


@pytest.mark.parametrize("path", _native.kernel_paths())
def test_convert_resize_kernel_paths(benchmark, report, mode, screen_content, path: str) -> None:  # type: ignore[no-untyped-def]
    """The fused kernel alone on a 1080p frame with padded pitch, per path, against cvtColor+resize."""
    rounds = 100 if mode == "quick" else 500
    padded = np.zeros((1080, 1920 + 16, 4), np.uint8)
    padded[:, :1920, :3] = screen_content[..., ::-1]
    bgra = padded[:, :1920]
    plan = _native.ConvertResize(1920, 1080, 160, 120, "gray", path)
    out = np.empty((120, 160), np.uint8)
    ref_out = cv2.resize(cv2.cvtColor(np.ascontiguousarray(bgra), cv2.COLOR_BGRA2GRAY), (160, 120),
                         interpolation=cv2.INTER_AREA)
    assert np.abs(plan.run(bgra, out).astype(int) - ref_out.astype(int)).max() <= 1
    benchmark.group = "convert+resize 1920x1080 (padded) -> 160x120 gray"
    benchmark.extra_info.update(kernel=path)
    benchmark.pedantic(lambda: plan.run(bgra, out), rounds=rounds, warmup_rounds=5, iterations=1)
    eng = float(np.median(per_call_ms(lambda: plan.run(bgra, out), rounds)))
    ref = float(np.median(per_call_ms(
        lambda: cv2.resize(cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY), (160, 120), interpolation=cv2.INTER_AREA),
        rounds)))
    group = "convert+resize 1920x1080 (padded) -> 160x120 gray"
    report.add(group, f"engine kernel {path}", eng, "ms/frame", ratio=ref / eng)
    report.add(group, f"opencv (for {path} row)", ref, "ms/frame")


WINDOW_CASES = [((0, 0, 1920, 1080), (160, 120), "gray"), ((560, 240, 800, 600), (160, 120), "gray")]


@pytest.mark.parametrize(("region", "size", "color"), WINDOW_CASES, ids=[_label(*c) for c in WINDOW_CASES])
def test_window_path_beside_screen_path(benchmark, report, mode, screen_content, region, size, color) -> None:  # type: ignore[no-untyped-def]
    """A window read through its Composite pixmap (what --window does) beside the same pixels read from the
    screen (what it did before): the copy is the same size, so the two should cost about the same."""
    rounds = 200 if mode == "quick" else 1000
    window = next(w["id"] for w in _native.x11_list_windows() if w["title"] == "bench-screen")
    plan = _native.ConvertResize(region[2], region[3], *size, color)
    out = np.empty((size[1], size[0]), np.uint8)
    grabbers = {src: _native.X11Grabber(window_id=window, region=region, window_source=src)
                for src in ("composite", "screen")}
    assert grabbers["composite"].read_from == "composite" and grabbers["screen"].read_from == "screen"
    results = {}
    for src, g in grabbers.items():
        results[src] = float(np.median(per_call_ms(lambda g=g: plan.run(g.grab(), out), rounds)))
    # The same pixels either way (nothing covers the bench window), so the same frame.
    frames = [plan.run(g.grab(), out).copy() for g in grabbers.values()]
    assert np.array_equal(*frames)
    group = f"window capture {region[2]}x{region[3]} -> {size[0]}x{size[1]} {color}"
    benchmark.group = group
    benchmark.extra_info.update(size=f"{region[2]}x{region[3]}")
    benchmark.pedantic(lambda: plan.run(grabbers["composite"].grab(), out), rounds=rounds // 4, warmup_rounds=5,
                       iterations=1)
    report.add(group, "engine, window pixmap (Composite)", results["composite"], "ms/frame",
               ratio=results["screen"] / results["composite"])
    report.add(group, "engine, screen at the window's place (before)", results["screen"], "ms/frame", ratio=1.0)
