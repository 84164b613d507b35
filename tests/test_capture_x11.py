"""The native X11 grabber on a real Xvfb, checked against mss (a reference nobody here wrote)."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import mss
import numpy as np
import pytest
from scenes import scene

import engine
from engine import _native
from engine.capture import CaptureSource, CaptureStream, MssSource, open_source
from engine.errors import CaptureError, EngineError, WindowLost
from engine.xvfb import Xvfb


def mss_bgra(display: str, x: int, y: int, w: int, h: int) -> np.ndarray:
    with mss.MSS(display=display) as sct:
        shot = sct.grab({"left": x, "top": y, "width": w, "height": h})
        return np.frombuffer(shot.raw, np.uint8).reshape(h, w, 4).copy()


def test_root_window_pixels_equal_mss(xvfb: Xvfb, image_window: object) -> None:
    image_window(scene(300, 400, seed=2), title="root-scene", x=50, y=60)  # type: ignore[operator]
    src = open_source()
    assert src.backend == "x11" and src.path == "xshm" and src.fallback_reason == ""
    assert src.rect == (0, 0, 1920, 1080)
    assert np.array_equal(src.grab(), mss_bgra(xvfb.display, 0, 0, 1920, 1080))
    sub = open_source(region=(33, 41, 517, 299))
    assert np.array_equal(sub.grab(), mss_bgra(xvfb.display, 33, 41, 517, 299))


def test_window_pixels_equal_mss_and_the_image(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(240, 320, seed=3), title="grab-me", x=211, y=97)  # type: ignore[operator]
    for how in ("grab-me", "GRAB", win.window_id):  # exact title, unique substring, id
        src = open_source(window=how)
        x, y, w, h = src.rect
        assert (w, h) == (320, 240)
        got = src.grab()
        assert np.array_equal(got, mss_bgra(xvfb.display, x, y, w, h))
        assert np.array_equal(got[..., :3], win.bgra[..., :3])
    region = open_source(window="grab-me", region=(10, 20, 100, 50)).grab()
    assert np.array_equal(region[..., :3], win.bgra[20:70, 10:110, :3])


def test_grab_is_a_zero_copy_view_of_shared_memory(xvfb: Xvfb) -> None:
    src = open_source(region=(0, 0, 64, 32))
    a = src.grab()
    assert not a.flags.writeable and not a.flags.owndata
    assert a.base is not None
    b = src.grab()
    assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]  # the same buffer


def test_shm_path_is_taken_and_fallback_is_forced_over_tcp(xvfb: Xvfb) -> None:
    fast = _native.X11Grabber(display=xvfb.display, region=(0, 0, 200, 100))
    assert fast.backend == "xshm" and fast.fallback_reason == ""
    slow = open_source(display=xvfb.tcp_display, region=(0, 0, 200, 100))
    assert slow.path == "xgetimage"
    assert "XShmAttach failed" in slow.fallback_reason and "TCP" in slow.fallback_reason
    assert np.array_equal(slow.grab(), fast.grab())


def test_fallback_without_mit_shm_extension() -> None:
    with Xvfb(width=320, height=240, shm=False) as server:
        src = open_source(display=server.display)
        assert src.path == "xgetimage"
        assert src.fallback_reason == "the X server has no MIT-SHM extension"
        assert np.array_equal(src.grab(), mss_bgra(server.display, 0, 0, 320, 240))


def test_caller_can_force_xgetimage(xvfb: Xvfb) -> None:
    src = open_source(region=(5, 5, 50, 50), use_shm=False)
    assert src.path == "xgetimage" and "disabled" in src.fallback_reason


def test_follows_a_window_that_moves(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(120, 160, seed=4), title="mover", x=100, y=100)  # type: ignore[operator]
    src = open_source(window="mover")
    assert src.rect[:2] == (100, 100)
    subprocess.run(["xdotool", "windowmove", str(win.window_id), "700", "400"], check=True,
                   env=dict(os.environ, DISPLAY=xvfb.display))
    deadline = time.monotonic() + 5
    while src.rect[:2] != (700, 400) and time.monotonic() < deadline:
        got = src.grab()
        time.sleep(0.02)
    assert src.rect[:2] == (700, 400)
    time.sleep(0.2)
    got = src.grab()
    assert np.array_equal(got[..., :3], win.bgra[..., :3])


def test_closed_window_raises_window_lost(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(50, 60, seed=5), title="doomed")  # type: ignore[operator]
    src = open_source(window="doomed")
    src.grab()
    win.close()
    with pytest.raises(WindowLost, match=r"closed|hidden|no longer exists"):
        for _ in range(200):
            src.grab()
            time.sleep(0.01)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"window": "no such window at all"}, ValueError, "no window titled 'no such window at all'"),
        ({"region": (1900, 0, 100, 100)}, ValueError, "outside the screen"),
        ({"region": (-1, 0, 10, 10)}, ValueError, "outside the screen"),
        ({"region": (0, 0, 0, 10)}, ValueError, "no area"),
        ({"backend": "dxgi-on-linux"}, EngineError, "valid: default, x11, mss"),
        ({"monitor": 7}, EngineError, "monitor 7 does not exist"),
        ({"window": 0x7FFFFFF}, ValueError, r"no window with id 0x7ffffff on X display"),
    ],
)
def test_bad_input_gets_a_clear_message(xvfb: Xvfb, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        open_source(**kwargs)


def test_depth_16_server_gets_one_clear_engine_error() -> None:
    """Neither the native grabber nor mss reads 16-bit pixels: the fallback is tried, and the user gets
    the engine's message (the format, what to do), not mss's exception."""
    with Xvfb(width=320, height=240, depth=16) as server:
        for kwargs in ({}, {"monitor": 1}, {"region": (0, 0, 10, 10)}):
            with pytest.raises(CaptureError) as info:
                open_source(display=server.display, **kwargs)
            message = str(info.value)
            assert message.startswith(f"cannot capture X display '{server.display}': unsupported X pixel format "
                                      "(depth 16, red/green/blue masks 0xf800/0x7e0/0x1f)"), message
            assert message.endswith("Run the X server at depth 24 (for Xvfb: -screen 0 WIDTHxHEIGHTx24)")
            reason = info.value.fallback_reason  # type: ignore[attr-defined]
            assert reason.startswith("native x11 grabber: unsupported X pixel format (depth 16")
        with pytest.raises(CaptureError, match=r"^unsupported X pixel format \(depth 16.*at depth 24$"):
            open_source(display=server.display, backend="x11")
        with pytest.raises(CaptureError, match=r"^mss cannot capture X display .*depth 24 or 32"):
            open_source(display=server.display, backend="mss")


def test_monitor_1_pixels_equal_mss_monitor_1(xvfb: Xvfb, image_window: object) -> None:
    image_window(scene(200, 300, seed=9), title="monitor-scene", x=410, y=305)  # type: ignore[operator]
    src = open_source(monitor=1)
    assert src.backend == "x11" and src.path == "xshm" and src.fallback_reason == ""
    with mss.MSS(display=xvfb.display) as sct:
        mon = sct.monitors[1]
        shot = sct.grab(mon)
    assert src.rect == (mon["left"], mon["top"], mon["width"], mon["height"])
    assert np.array_equal(src.grab(), np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4))


def test_no_display_and_bad_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(CaptureError, match="DISPLAY is not set"):
        open_source()
    with pytest.raises(CaptureError, match="cannot open X display ':97'"):
        open_source(display=":97")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _shm_segments() -> set[int]:
    """SysV SHM segments this process created or has attached. Only ours: other processes' segments
    come and go while the test runs."""
    pid = os.getpid()
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    header = lines[0].split()
    ids = set()
    for line in lines[1:]:
        row = dict(zip(header, line.split(), strict=True))
        if int(row["cpid"]) == pid:
            ids.add(int(row["shmid"]))
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/SYSV"):
            ids.add(int(fields[4]))  # a SysV mapping's inode is the segment's shmid (proc(5))
    return ids


def test_no_fd_or_shm_leaks_over_thousands_of_grabs(xvfb: Xvfb) -> None:
    open_source(region=(0, 0, 8, 8)).grab()  # warm up libraries' own one-time fds
    fds, segs = _open_fds(), _shm_segments()
    src = open_source(region=(0, 0, 320, 240))
    assert len(_shm_segments() - segs) == 1  # the count sees our own segment
    for _ in range(3000):
        src.grab()
    del src
    for _ in range(200):
        s = open_source(region=(10, 10, 64, 64))
        s.grab()
        del s
    assert _open_fds() == fds
    assert _shm_segments() == segs


def test_mss_backend_and_stream(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(90, 120, seed=6), title="mss-scene", x=300, y=200)  # type: ignore[operator]
    src = open_source(backend="mss", region=(300, 200, 120, 90))
    assert isinstance(src, MssSource)
    assert np.array_equal(src.grab()[..., :3], win.bgra[..., :3])
    with CaptureStream(src, fps=60, size=(60, 45), color="rgb") as stream:
        assert stream.sink.wait(2.0) > 0
        frame = np.array(stream.sink.frame(0))
    ref = _native.convert_resize(np.ascontiguousarray(win.bgra), 60, 45, "rgb")
    assert np.array_equal(frame, ref)
    assert stream.stats()["frames"] >= 1 and stream.error == ""


def test_mss_over_tcp_runs_in_the_native_loop_and_equals_mss(xvfb: Xvfb, image_window: object) -> None:
    """The mss fallback, forced over TCP (no shared memory), is paced, converted and counted by the one
    native capture loop: its frames equal mss's own pixels converted by the engine's kernel."""
    win = image_window(scene(90, 120, seed=11), title="tcp-mss-scene", x=500, y=300)  # type: ignore[operator]
    src = open_source(backend="mss", display=xvfb.tcp_display, region=(500, 300, 120, 90))
    loop_source = src.loop_source()
    assert isinstance(loop_source, _native.CallableSource)
    assert (loop_source.backend, tuple(loop_source.rect)) == ("mss", (500, 300, 120, 90))
    ref = _native.convert_resize(mss_bgra(xvfb.tcp_display, 500, 300, 120, 90), 60, 45, "rgb")
    assert np.array_equal(ref, _native.convert_resize(np.ascontiguousarray(win.bgra), 60, 45, "rgb"))
    with CaptureStream(src, fps=100, size=(60, 45), color="rgb", capacity=64) as stream:
        ticks: list[int] = []
        while len(ticks) < 5:
            n = stream.sink.wait(2.0)
            assert n > 0, stream.error
            for i in range(n):
                assert np.array_equal(stream.sink.frame(i), ref)
                ticks.append(stream.sink.tick(i))
            stream.sink.pop(n)
    stats = stream.stats()
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
    assert stats["frames"] >= 5 and stats["frames"] + stats["dropped"] == stats["ticks"]
    assert len(stream.lateness_log()) == stats["ticks"]
    src.close()


def test_python_backend_drops_the_newest_when_the_queue_is_full(xvfb: Xvfb) -> None:
    src = open_source(backend="mss", region=(0, 0, 32, 16))
    stream = CaptureStream(src, fps=500, capacity=2)
    stream.start()
    deadline = time.monotonic() + 10
    while stream.stats()["dropped"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stream.stop()
    stats = stream.stats()
    assert stats["dropped"] > 0, stream.error
    assert stats["frames"] == 2  # nobody popped: the two queued frames stay, every later one is dropped
    assert stats["frames"] + stats["dropped"] == stats["ticks"]
    src.close()


class _ScriptedSource(CaptureSource):
    """A Python backend that grabs a few black frames, then fails as told: what the loop does with it
    is under test, not this source."""

    backend = path = "scripted"

    def __init__(self, failure: Exception | None, shape: tuple[int, ...] = (8, 8, 4), good: int = 3) -> None:
        self.failure, self.shape, self.good, self.grabs = failure, shape, good, 0

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return (0, 0, 8, 8)

    def grab(self) -> np.ndarray:
        self.grabs += 1
        if self.grabs > self.good:
            if self.failure is not None:
                raise self.failure
            return np.zeros(self.shape, np.uint8)
        return np.zeros((8, 8, 4), np.uint8)


@pytest.mark.parametrize(
    ("failure", "shape", "error", "lost"),
    [
        (CaptureError("the screen went away"), (8, 8, 4), "the screen went away", False),
        (WindowLost("the window was closed"), (8, 8, 4), "the window was closed", True),
        (ValueError(), (8, 8, 4), "ValueError", False),
        (None, (4, 8, 4), "scripted grab returned 8x4 pixels for a 8x8 source", False),
    ],
)
def test_python_backend_failure_stops_the_native_loop_with_its_message(
    failure: Exception | None, shape: tuple[int, ...], error: str, lost: bool
) -> None:
    src = _ScriptedSource(failure, shape)
    stream = CaptureStream(src, fps=200, mode="latest", window=1)
    stream.start()
    deadline = time.monotonic() + 10
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.running
    assert (stream.error, stream.window_lost) == (error, lost)
    assert stream.stats()["frames"] == src.good  # the frames grabbed before the failure were published
    stream.stop()


def test_a_running_python_backend_stream_can_be_dropped(xvfb: Xvfb) -> None:
    """Freeing a running loop joins its thread while that thread may wait for the GIL in a grab: the
    join happens with the GIL released, so this returns."""
    src = open_source(backend="mss", region=(0, 0, 16, 16))
    stream = CaptureStream(src, fps=1000, mode="latest", window=1)
    stream.start()
    assert stream.sink.wait_newer(0, 2.0) > 0, stream.error
    del stream
    gc.collect()
    src.close()


def test_exit_with_a_python_backend_stream_still_running_is_clean(xvfb: Xvfb) -> None:
    """Python stops such streams at exit: a capture thread asking for the GIL while the interpreter
    finalizes is ended mid-grab by CPython (a crash, sometimes)."""
    code = ("from engine.capture import CaptureStream, open_source\n"
            "s = CaptureStream(open_source(backend='mss', region=(0, 0, 64, 64)), fps=1000, mode='latest')\n"
            "s.start()\n"
            "assert s.sink.wait_newer(0, 2.0) > 0, s.error\n")
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, DISPLAY=xvfb.display),
                             capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stderr) == (0, "")


def test_importing_the_package_selects_no_backend() -> None:
    code = ("import sys, engine.capture\n"
            "loaded = [m for m in ('mss', 'engine.capture.x11', 'engine.capture.windows', 'engine.capture.mss_source')"
            " if m in sys.modules]\n"
            "assert not loaded, loaded")
    no_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    subprocess.run([sys.executable, "-c", code], check=True, env=no_display)


def test_native_stream_delivers_converted_frames_in_order(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(120, 160, seed=7), title="stream-scene", x=0, y=0)  # type: ignore[operator]
    src = open_source(window="stream-scene")
    ref = _native.convert_resize(np.ascontiguousarray(win.bgra), 80, 60, "gray")
    with CaptureStream(src, fps=200, size=(80, 60), color="gray", capacity=64) as stream:
        got = 0
        ticks = []
        while got < 50:
            n = stream.sink.wait(2.0)
            assert n > 0, stream.error
            for i in range(n):
                assert np.array_equal(stream.sink.frame(i), ref)
                ticks.append(stream.sink.tick(i))
            stream.sink.pop(n)
            got += n
    stats = stream.stats()
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
    assert stats["frames"] >= 50 and stats["frames"] + stats["dropped"] == stats["ticks"]


def test_stream_reports_lost_window(xvfb: Xvfb, image_window: object) -> None:
    win = image_window(scene(40, 40, seed=8), title="lost-in-stream")  # type: ignore[operator]
    stream = CaptureStream(open_source(window="lost-in-stream"), fps=100, mode="latest", window=2)
    stream.start()
    stream.sink.wait_newer(0, 2.0)
    win.close()
    deadline = time.monotonic() + 5
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.running and stream.window_lost
    assert "closed" in stream.error or "hidden" in stream.error
    stream.stop()


def _move(display: str, window_id: int, x: int, y: int) -> None:
    subprocess.run(["xdotool", "windowmove", str(window_id), str(x), str(y)], check=True,
                   env=dict(os.environ, DISPLAY=display))


def test_window_moved_partly_off_screen_stops_the_stream_with_a_clear_error(
    xvfb: Xvfb, image_window: object
) -> None:
    win = image_window(scene(120, 160, seed=10), title="off-the-edge", x=200, y=200)  # type: ignore[operator]
    # The window drawable path, like the screen: X cannot read a window's pixels off screen except from
    # its Composite pixmap, which the default path reads (tests/test_window_capture.py).
    stream = CaptureStream(open_source(window="off-the-edge", window_source="window"), fps=100, mode="latest",
                           window=2)
    grabber = open_source(window="off-the-edge", window_source="window")  # the same, grabbed directly
    stream.start()
    assert stream.sink.wait_newer(0, 2.0) > 0, stream.error
    _move(xvfb.display, win.window_id, 1850, 1000)  # 70x80 of its 160x120 pixels left on screen
    deadline = time.monotonic() + 5
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.running, "still capturing a window that is partly off screen"
    assert stream.error == ("the captured window moved partly off screen (capture area 1850,1000,160,120 on a "
                            "1920x1080 screen); move it back fully on screen")
    assert not stream.window_lost  # the window is still there
    stream.stop()

    with pytest.raises(CaptureError, match="moved partly off screen") as info:
        grabber.grab()
    assert not isinstance(info.value, ValueError)  # not bad input from the caller
    with pytest.raises(CaptureError, match="moved partly off screen"):
        grabber.grab()  # again, rather than the X server's BadMatch
    _move(xvfb.display, win.window_id, 300, 250)
    deadline = time.monotonic() + 5
    while grabber.rect[:2] != (300, 250) and time.monotonic() < deadline:
        with contextlib.suppress(CaptureError):
            grabber.grab()
        time.sleep(0.02)
    assert grabber.rect == (300, 250, 160, 120)
    assert grabber.grab().shape == (120, 160, 4)  # back on screen: grabbing resumes


def test_public_api_is_reexported() -> None:
    assert engine.open_source is open_source
    assert set(engine.__all__) >= {"open_source", "CaptureStream", "Pacer", "CaptureError", "WindowLost"}
