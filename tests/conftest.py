"""Shared fixtures: one real Xvfb for the session, real X11 windows, kernel paths."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scenes import scene  # noqa: F401  (re-exported for test modules)

from engine import _native
from engine.xvfb import Xvfb, virtual_display

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture(scope="session")
def xvfb() -> Iterator[Xvfb]:
    """A 1920x1080x24 Xvfb reachable over the local socket and over TCP; DISPLAY points at it."""
    with virtual_display(tcp=True) as server:
        yield server


@pytest.fixture(params=_native.kernel_paths())
def kernel_path(request: pytest.FixtureRequest) -> str:
    """Every convert+resize path this CPU can run (scalar always)."""
    return str(request.param)


@pytest.fixture(scope="session")
def native_testing() -> ModuleType:
    """engine._native_testing, the test-only producers (not in a plain wheel: skip, saying why)."""
    return pytest.importorskip(
        "engine._native_testing",
        reason="engine._native_testing is built only with -Ccmake.define.ENGINE_TEST_HOOKS=ON "
        "(scripts/setup.sh's editable install)",
    )


class ImageWindow:
    """A real X11 window (pygame, in a subprocess) showing an exact RGB image."""

    def __init__(self, tmp: Path, display: str, image: np.ndarray, title: str, x: int, y: int) -> None:
        self.image = image
        self.title = title
        self._tmp = tmp
        self._n = 0
        path = tmp / f"{title}.npy"
        np.save(path, image)
        env = dict(os.environ, DISPLAY=display)
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "image_window.py"), title, str(x), str(y), str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.close()
            raise RuntimeError(f"test window did not start: {line!r}")
        self.window_id = int(line.split()[1])
        time.sleep(0.2)  # let the first frame reach the screen

    def show(self, image: np.ndarray) -> None:
        """Switch the window to another image of the same size; returns once it is drawn."""
        assert image.shape == self.image.shape and self.proc.stdin is not None and self.proc.stdout is not None
        self._n += 1
        path = self._tmp / f"{self.title}-{self._n}.npy"
        np.save(path, image)
        self.proc.stdin.write(f"LOAD {path}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().startswith("LOADED")
        self.image = image

    @property
    def bgra(self) -> np.ndarray:
        """The image as the X server stores it: B, G, R, X (X is 0 on Xvfb at depth 24)."""
        h, w, _ = self.image.shape
        out = np.zeros((h, w, 4), np.uint8)
        out[..., :3] = self.image[..., ::-1]
        return out

    def close(self) -> None:
        """Close the window: the helper exits when its stdin closes (SDL turns SIGTERM into an event)."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(pred: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll pred every 20 ms until it is true or timeout seconds pass; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def image_window(xvfb: Xvfb, tmp_path: Path) -> Iterator[object]:
    """Factory: image_window(image, title=..., x=..., y=...) -> ImageWindow, closed after the test."""
    windows: list[ImageWindow] = []

    def make(image: np.ndarray, title: str = "engine-test-window", x: int = 100, y: int = 80) -> ImageWindow:
        w = ImageWindow(tmp_path, xvfb.display, image, title, x, y)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
