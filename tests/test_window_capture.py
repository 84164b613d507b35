"""A window capture reads the window itself: never the screen under it, never a window on top of it.

Two everyday desktops, both real: an XWayland window under a headless weston (how Steam and Proton games
run on GNOME and KDE Wayland), where the root window holds no pixels; and Xvfb with another window moved
over the game, or the game moved partly off screen. The reference is the exact image the window shows
(and, through the recorder, the NumPy twin of the convert kernel applied to it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ImageWindow, wait_for
from kernels_ref import convert_resize
from scenes import scene

from engine import _native
from engine.capture.blank import BlankGuard, is_uniform
from engine.errors import WindowLost
from engine.xvfb import Xvfb

pytestmark = pytest.mark.x11


def _grab(display: str, win: ImageWindow, source: str = "auto") -> tuple[np.ndarray, object]:
    """Open a grabber on the window and return a copy of a grab once it shows the window's image.

    Redirecting a window gives it a pixmap whose covered parts hold whatever the screen had there until
    the client redraws them on the expose event that follows (a game redraws every frame anyway; the
    test window redraws on expose), so wait for that; the screen path is grabbed as it is.
    """
    g = _native.X11Grabber(display=display, window_id=win.window_id, window_source=source)
    frame = np.array(g.grab(), copy=True)
    deadline = time.monotonic() + 3
    while source != "screen" and _same_pixels(frame, win) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
        frame = np.array(g.grab(), copy=True)
    return frame, g


def _same_pixels(frame: np.ndarray, win: ImageWindow) -> float:
    return float((frame[..., :3] == win.bgra[..., :3]).all(axis=-1).mean())


def _move(display: str, window_id: int, x: int, y: int) -> None:
    subprocess.run(["xdotool", "windowmove", str(window_id), str(x), str(y)], check=True,
                   env=dict(os.environ, DISPLAY=display))


# --- X11 (Xvfb): a window on top of the game, the game partly off screen -------------------------------


def test_covered_window_gives_its_own_pixels_not_the_cover(xvfb: Xvfb, image_window: object) -> None:
    game = image_window(scene(120, 160, seed=20), title="covered-game", x=300, y=300)  # type: ignore[operator]
    red = np.zeros((60, 80, 3), np.uint8)
    red[..., 0] = 255
    image_window(red, title="cover", x=330, y=320)  # type: ignore[operator]
    time.sleep(0.2)
    screen, _ = _grab(xvfb.display, game, "screen")
    assert _same_pixels(screen, game) < 0.8  # the old way reads the cover: the scene is real
    frame, g = _grab(xvfb.display, game)
    assert g.read_from == "composite" and g.fallback_reason == ""  # type: ignore[attr-defined]
    assert _same_pixels(frame, game) == 1.0


def test_window_partly_off_screen_gives_its_own_pixels(xvfb: Xvfb, image_window: object) -> None:
    game = image_window(scene(120, 160, seed=21), title="edge-game", x=200, y=200)  # type: ignore[operator]
    g = _native.X11Grabber(display=xvfb.display, window_id=game.window_id)
    _move(xvfb.display, game.window_id, 1850, 1000)  # 70x80 of its 160x120 pixels left on screen
    deadline = time.monotonic() + 5
    while list(g.rect[:2]) != [1850, 1000] and time.monotonic() < deadline:
        g.grab()  # never the "moved partly off screen" error of the screen path
        time.sleep(0.02)
    assert list(g.rect) == [1850, 1000, 160, 120]
    for _ in range(5):
        assert _same_pixels(np.array(g.grab(), copy=True), game) == 1.0


def test_window_drawable_path_is_forced_and_says_why(xvfb: Xvfb, image_window: object) -> None:
    game = image_window(scene(40, 60, seed=22), title="drawable-game")  # type: ignore[operator]
    frame, g = _grab(xvfb.display, game, "window")
    assert g.read_from == "window" and "window drawable was asked for" in g.fallback_reason  # type: ignore[attr-defined]
    assert _same_pixels(frame, game) == 1.0  # uncovered, on screen: the same pixels
    with pytest.raises(ValueError, match="window_source must be auto, composite, window or screen"):
        _native.X11Grabber(display=xvfb.display, window_id=game.window_id, window_source="glass")


def test_resized_window_is_read_at_its_new_size(xvfb: Xvfb, image_window: object) -> None:
    """A resize gives the window a new pixmap; the grabber must name it again, or it keeps reading the old
    one, frozen at the resize. Reference: a grabber opened after the resize (it names the new pixmap)."""
    game = image_window(scene(120, 160, seed=23), title="resized-game", x=100, y=500)  # type: ignore[operator]
    region = (0, 0, 80, 60)
    g = _native.X11Grabber(display=xvfb.display, window_id=game.window_id, region=region)
    before = np.array(g.grab(), copy=True)
    subprocess.run(["xdotool", "windowsize", str(game.window_id), "200", "150"], check=True,
                   env=dict(os.environ, DISPLAY=xvfb.display))
    assert wait_for(lambda: [w["rect"][2:] for w in _native.x11_list_windows(xvfb.display)
                             if w["id"] == game.window_id] == [(200, 150)])
    game.show(scene(120, 160, seed=26))  # new pixels, drawn into the new pixmap only
    fresh = _native.X11Grabber(display=xvfb.display, window_id=game.window_id, region=region)

    def same_new_pixels() -> bool:
        a, b = np.array(g.grab(), copy=True), np.array(fresh.grab(), copy=True)  # g's grabs never fail
        return np.array_equal(a[..., :3], b[..., :3]) and not np.array_equal(b[..., :3], before[..., :3])

    assert wait_for(same_new_pixels, 5.0)


def test_closing_a_redirected_window_still_raises_window_lost(xvfb: Xvfb, image_window: object) -> None:
    game = image_window(scene(40, 40, seed=24), title="closing-game")  # type: ignore[operator]
    g = _native.X11Grabber(display=xvfb.display, window_id=game.window_id)
    g.grab()
    game.close()
    with pytest.raises(WindowLost):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            g.grab()
            time.sleep(0.02)


# --- XWayland under headless weston: the root holds nothing ----------------------------------------------


class Weston:
    """A headless weston with Xwayland: the X display its XWayland clients use."""

    def __init__(self, tmp: Path) -> None:
        runtime = tmp / "xdg"
        runtime.mkdir(mode=0o700)
        log = tmp / "weston.log"
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
        self.env.pop("WAYLAND_DISPLAY", None)
        self.proc = subprocess.Popen(
            ["weston", "--backend=headless-backend.so", "--xwayland", "--socket=engine-test", "--width=1280",
             "--height=720", "--idle-time=0", f"--log={log}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        found = None
        while found is None and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
            found = re.search(r"xserver listening on display (:\d+)", log.read_text() if log.exists() else "")
        if found is None:
            self.close()
            raise RuntimeError(f"weston with Xwayland did not start: {log.read_text() if log.exists() else ''}")
        self.display = found.group(1)
        self.env["DISPLAY"] = self.display

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def weston(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weston]:
    missing = [exe for exe in ("weston", "Xwayland") if shutil.which(exe) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (make setup installs Debian's weston and xwayland)")
    server = Weston(tmp_path_factory.mktemp("weston"))
    yield server
    server.close()


@pytest.fixture
def xwayland_window(weston: Weston, tmp_path: Path) -> Iterator[ImageWindow]:
    win = ImageWindow(tmp_path, weston.display, scene(120, 160, seed=30), "xwayland-game", 100, 80)
    yield win
    win.close()


def test_xwayland_window_is_read_from_its_own_pixels_not_the_black_root(
    weston: Weston, xwayland_window: ImageWindow
) -> None:
    screen, _ = _grab(weston.display, xwayland_window, "screen")
    assert not screen[..., :3].any()  # the desktop as the root window shows it: black, the bug
    frame, g = _grab(weston.display, xwayland_window)
    assert g.read_from == "composite"  # type: ignore[attr-defined]
    assert _same_pixels(frame, xwayland_window) == 1.0
    drawable, _ = _grab(weston.display, xwayland_window, "window")
    assert _same_pixels(drawable, xwayland_window) == 1.0


def _record(env: dict[str, str], data: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.record", "--countdown", "0", "--duration", "1.5", "--fps", "20",
         "--data-dir", str(data), "--name", "s", *flags],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_engine_record_of_an_xwayland_window_holds_the_game(
    weston: Weston, xwayland_window: ImageWindow, tmp_path: Path
) -> None:
    r = _record(weston.env, tmp_path, "--window", "xwayland-game", "--size", "80x60", "--color", "rgb")
    assert r.returncode == 0, r.stderr
    assert "uniform value" not in r.stderr
    frames = np.load(tmp_path / "sessions" / "s" / "frames.npy")
    assert len(frames) >= 2
    want = convert_resize(xwayland_window.bgra, 80, 60, "rgb")
    for f in frames:
        assert np.array_equal(f, want)


# --- the blank-frame guard -----------------------------------------------------------------------------


def test_is_uniform_sees_one_odd_pixel_and_every_channel() -> None:
    a = np.zeros((120, 160), np.uint8)
    assert is_uniform(a)
    a[77, 133] = 1  # off every sample stride: found by the whole-frame check
    assert not is_uniform(a)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[..., 0] = 200  # one colour, not one value
    assert not is_uniform(rgb)
    assert is_uniform(np.full((60, 80, 3), 7, np.uint8))


def test_blank_guard_fires_once_after_the_first_second_then_counts() -> None:
    g = BlankGuard(fps=30)
    black = np.zeros((60, 80), np.uint8)
    messages = [g.feed(black, i, i * 33_333_333) for i in range(90)]
    fired = [i for i, m in enumerate(messages) if m]
    assert fired == [29]  # one second of 30 fps
    assert "one uniform value (0) for 1.0 s" in str(messages[29]) and "minimised" in str(messages[29])
    assert g.blank_frames == 90 and g.spans == [[0, 89]]
    assert g.summary() == "blank frames: 90 (one uniform value; frames 0-89)"


def test_blank_guard_waits_longer_later_and_ignores_short_fades() -> None:
    g = BlankGuard(fps=30)
    rng = np.random.default_rng(1)
    t = 0
    for i in range(60):  # a game
        assert g.feed(rng.integers(0, 255, (60, 80), dtype=np.uint8), i, t) is None
        t += 33_333_333
    for i in range(60, 120):  # a 2 s fade to black: shorter than the later limit
        assert g.feed(np.zeros((60, 80), np.uint8), i, t) is None
        t += 33_333_333
    assert g.feed(rng.integers(0, 255, (60, 80), dtype=np.uint8), 120, t) is None
    fired = []
    for i in range(121, 260):  # then the window goes black for good
        t += 33_333_333
        if g.feed(np.full((60, 80), 3, np.uint8), i, t):
            fired.append(i)
    assert fired == [121 + 89]  # 3 s at 30 fps
    assert g.spans == [[121, 259]] and g.blank_frames == 139


def test_blank_guard_stays_quiet_on_a_dark_changing_game() -> None:
    g = BlankGuard(fps=60)
    rng = np.random.default_rng(2)
    for i in range(600):  # 10 s of a dark scene: values 0..3, changing every frame
        assert g.feed(rng.integers(0, 4, (120, 160), dtype=np.uint8), i, i * 16_666_667) is None
    assert g.summary() is None and g.blank_frames == 0


def test_blank_guard_in_batches_says_what_it_says_frame_by_frame() -> None:
    # The recorder feeds its batches whole (feed_many); a game, a short fade, a black start of a run that
    # straddles batches, a frame one pixel off black: the same messages at the same frames, the same spans.
    rng = np.random.default_rng(3)
    frames = [np.zeros((60, 80), np.uint8) for _ in range(40)]  # a blank start
    frames += [rng.integers(0, 255, (60, 80), dtype=np.uint8) for _ in range(30)]
    frames += [np.full((60, 80), 5, np.uint8) for _ in range(50)]  # a short fade (under 3 s at 30 fps)
    odd = np.zeros((60, 80), np.uint8)
    odd[59, 79] = 1  # off the sample stride: only the whole-frame check sees it
    frames += [odd] + [np.zeros((60, 80), np.uint8) for _ in range(120)]  # then black for good
    t = np.arange(len(frames), dtype=np.int64) * 33_333_333 + 1
    one, many = BlankGuard(fps=30), BlankGuard(fps=30)
    said_one = [(i, m) for i, f in enumerate(frames) if (m := one.feed(f, i, int(t[i])))]
    said_many = []
    for start in range(0, len(frames), 7):
        batch = np.stack(frames[start:start + 7])
        said_many += [(start, m) for m in many.feed_many(batch, start, t[start:start + 7])]
    assert [m for _, m in said_one] == [m for _, m in said_many] and len(said_one) == 2
    assert [i // 7 * 7 for i, _ in said_one] == [i for i, _ in said_many]  # in the batch of the frame
    assert one.spans == many.spans == [[0, 39], [241 - 120, 240]] and one.blank_frames == many.blank_frames


def test_engine_record_says_at_once_when_the_window_draws_nothing(
    xvfb: Xvfb, image_window: object, tmp_path: Path
) -> None:
    image_window(np.zeros((120, 160, 3), np.uint8), title="black-game", x=600, y=100)  # type: ignore[operator]
    env = dict(os.environ, DISPLAY=xvfb.display)
    r = _record(env, tmp_path, "--window", "black-game")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("engine-record: the captured frames")]
    assert len(lines) == 1 and "one uniform value (0) for 1.0 s" in lines[0]  # once, after the first second
    meta = json.loads((tmp_path / "sessions" / "s" / "meta.json").read_text())
    assert meta["blank_frames"] >= 20 and meta["blank_spans"][0][0] == 0
    assert "blank frames:" in r.stdout + r.stderr  # and the summary counts them
    rep = subprocess.run([sys.executable, "-m", "engine.cli.report", str(tmp_path / "sessions" / "s"), "--out",
                          str(tmp_path / "report")], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    html = (tmp_path / "report" / "s.report.html").read_text()
    assert "BLANK FRAMES (one uniform value)" in html
    assert f"engine-report: warning: blank frames (one uniform value): {meta['blank_frames']} frames" in rep.stderr


def test_engine_record_of_a_dark_textured_window_is_quiet(
    xvfb: Xvfb, image_window: object, tmp_path: Path
) -> None:
    dark = (scene(120, 160, seed=25) // 64).astype(np.uint8)  # values 0..3
    image_window(dark, title="dark-game", x=800, y=100)  # type: ignore[operator]
    env = dict(os.environ, DISPLAY=xvfb.display)
    r = _record(env, tmp_path, "--window", "dark-game")
    assert r.returncode == 0, r.stderr
    assert "uniform value" not in r.stderr and "blank frames" not in r.stdout + r.stderr
    meta = json.loads((tmp_path / "sessions" / "s" / "meta.json").read_text())
    assert meta.get("blank_frames", 0) == 0



def test_engine_play_says_when_the_model_is_shown_nothing(xvfb: Xvfb, image_window: object) -> None:
    image_window(np.zeros((96, 128, 3), np.uint8), title="black-play", x=900, y=400)  # type: ignore[operator]
    model = Path(__file__).parent / "fixtures" / "models" / "brighter_half.tflite"
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli.play", "--model", str(model), "--window", "black-play", "--output",
         "dry-run", "--duration", "1.5", "--countdown", "0"],
        env=dict(os.environ, DISPLAY=xvfb.display), capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    said = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("engine-play: the captured frames")]
    assert len(said) == 1 and "one uniform value (0)" in said[0]
    assert "blank frames:" in r.stdout + r.stderr
