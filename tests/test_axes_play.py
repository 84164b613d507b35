"""Axis actuation and play (issue 14) on a real Xvfb: XTest relative motion read back from the X server
(XQueryPointer through libX11), the demo game's own log, the crash watchdog after kill -9, dry-run and
telemetry files. The uinput pad needs /dev/uinput, which this machine lacks: those tests skip saying so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

from engine import _native
from engine.actions.motion import MotionSpreader, split_pieces
from engine.actions.outputs import DryRunOutput, NullOutput, UinputOutput, XTestOutput, open_output
from engine.demo.log import load_log
from engine.demo.process import DemoProcess
from engine.demo.sim import MOUSE_GAIN
from engine.errors import EngineError
from engine.play import Model
from engine.play.loop import Player, axis_error
from engine.telemetry import Telemetry

MODELS = Path(__file__).parent / "fixtures" / "models"
HAVE_UINPUT = os.path.exists("/dev/uinput")
NO_UINPUT = "no /dev/uinput on this machine (load the uinput module to run the virtual pad tests)"


class Pointer:
    """XQueryPointer on a connection of its own: where the X server has the pointer."""

    def __init__(self, display: str) -> None:
        self.x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        self.x11.XOpenDisplay.restype = ctypes.c_void_p
        self.x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x11.XDefaultRootWindow.restype = ctypes.c_ulong
        self.x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self.x11.XQueryPointer.argtypes = [ctypes.c_void_p, ctypes.c_ulong, *[ctypes.c_void_p] * 7]
        self.x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.d = self.x11.XOpenDisplay(display.encode())
        assert self.d, f"cannot open {display}"
        self.root = self.x11.XDefaultRootWindow(self.d)

    def pos(self) -> tuple[int, int]:
        win, child = ctypes.c_ulong(), ctypes.c_ulong()
        rx, ry, wx, wy = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        mask = ctypes.c_uint()
        self.x11.XQueryPointer(self.d, self.root, ctypes.byref(win), ctypes.byref(child), ctypes.byref(rx),
                               ctypes.byref(ry), ctypes.byref(wx), ctypes.byref(wy), ctypes.byref(mask))
        return rx.value, ry.value

    def close(self) -> None:
        self.x11.XCloseDisplay(self.d)


@pytest.fixture
def pointer(xvfb):  # type: ignore[no-untyped-def]
    p = Pointer(xvfb.display)
    yield p
    p.close()


def test_pieces_sum_exactly() -> None:
    for total in (0, 1, -1, 7, -7, 10, -10, 123, -123):
        pieces = split_pieces(total, 4)
        assert sum(pieces) == total and max(pieces) - min(pieces) <= 1


def test_xtest_motion_moves_the_pointer_by_exactly_the_sum_spread_over_the_period(xvfb, pointer) -> None:  # type: ignore[no-untyped-def]
    fps = 10.0  # a 100 ms period: pieces at 0, 25, 50, 75 ms
    out = XTestOutput(["left"], xvfb.display, watchdog=False, axes=["mouse_dx", "mouse_dy", "wheel"], fps=fps)
    try:
        out._act.warp(900, 500)
        assert wait_for(lambda: pointer.pos() == (900, 500))
        seen: list[tuple[int, tuple[int, int]]] = []
        t0 = time.monotonic_ns()
        out.apply_axes(np.array([40, -20, 0], np.float32))
        while time.monotonic_ns() - t0 < 4e8:
            p = pointer.pos()
            if not seen or seen[-1][1] != p:
                seen.append((time.monotonic_ns(), p))
        # Four pieces (the first sent by apply_axes itself), summing exactly to what was asked for (Xvfb applies
        # no acceleration to XTest motion).
        assert [p for _, p in seen] == [(910, 495), (920, 490), (930, 485), (940, 480)]
        # Spread, not one jump: the last piece is not sent before its due time, 3/4 of the period after the call.
        assert seen[-1][0] - t0 >= 0.75 * 1e9 / fps
        # Fractions are carried and the pieces of a run add up: 0.5 + 0.5 + 0.5 + 0.5 = 2 counts in all.
        out._act.warp(900, 500)
        assert wait_for(lambda: pointer.pos() == (900, 500))
        for _ in range(4):
            out.apply_axes(np.array([0.5, 0, 0], np.float32))
        assert out.wait_motion(2.0)
        assert wait_for(lambda: pointer.pos() == (902, 500))
    finally:
        out.close()


@pytest.mark.skipif(shutil.which("xinput") is None or shutil.which("stdbuf") is None,
                    reason="xinput is not installed (apt-get install xinput)")
def test_an_xi2_raw_motion_listener_sees_several_events_summing_exactly(xvfb) -> None:  # type: ignore[no-untyped-def]
    """What a recorder sees: `xinput test-xi2 --root` prints every XI2 RawMotion event with its raw valuators."""
    env = dict(os.environ, DISPLAY=xvfb.display)
    listener = subprocess.Popen(["stdbuf", "-oL", "xinput", "test-xi2", "--root"], env=env, stdout=subprocess.PIPE,
                                text=True)
    out = XTestOutput(["left"], xvfb.display, watchdog=False, axes=["mouse_dx", "mouse_dy"], fps=10)
    try:
        time.sleep(0.5)  # the listener selects its events after it starts
        out.apply_axes(np.array([37, -21], np.float32))
        out.apply_axes(np.array([-5, 0], np.float32))  # arrives mid-period: merged with what is in flight
        assert out.wait_motion(2.0)
        time.sleep(0.2)
    finally:
        out.close()
        listener.terminate()
        text = listener.communicate(timeout=10)[0]
    raw = [block for block in text.split("EVENT type") if "(RawMotion)" in block]
    deltas = np.zeros(2)
    for block in raw:
        for m in re.finditer(r"^\s+([01]): \S+ \((-?[\d.]+)\)", block, re.MULTILINE):
            deltas[int(m.group(1))] += float(m.group(2))
    assert deltas.tolist() == [32.0, -21.0]
    assert len(raw) >= 5  # the first decision's first piece, then the rest re-spread in four


def test_release_all_and_close_stop_the_motion_in_flight(xvfb, pointer) -> None:  # type: ignore[no-untyped-def]
    out = XTestOutput(["left"], xvfb.display, watchdog=False, axes=["mouse_dx"], fps=2.0)  # a 500 ms period
    try:
        for stop in (out.release_all, out.close):
            out._act.warp(900, 500)
            assert wait_for(lambda: pointer.pos() == (900, 500))
            out.apply_axes(np.array([400], np.float32))  # the first piece (100) goes at once, the rest later
            assert pointer.pos()[0] in (900, 1000)
            stop()
            time.sleep(0.6)  # past the whole period: nothing more may arrive
            assert pointer.pos() == (1000, 500)
            assert out._spreader is not None and out._spreader.pending == (0, 0, 0)
    finally:
        out.close()


def test_wheel_goes_as_notches_and_absolute_axes_place_the_pointer(xvfb, pointer) -> None:  # type: ignore[no-untyped-def]
    region = (100, 200, 300, 100)
    out = XTestOutput(["left"], xvfb.display, watchdog=False, axes=["wheel", "mouse_x", "mouse_y"], fps=30,
                      region=region)
    try:
        assert out.apply_axes(np.array([-2, 0.0, 1.0], np.float32)) == 4 + 1  # 2 notches (press+release) + warp
        assert wait_for(lambda: pointer.pos() == (100, 299))
        out.apply_axes(np.array([0, 0.5, 0.5], np.float32))
        assert wait_for(lambda: pointer.pos() == (100 + round(0.5 * 299), 200 + round(0.5 * 99)))
        assert out.apply_axes(np.array([0, 0.5, 0.5], np.float32)) == 0  # unchanged: nothing sent
        assert out.motion_sent == (0, 0, -2)
    finally:
        out.close()


def test_pad_actions_are_refused_on_xtest_in_one_line(xvfb) -> None:  # type: ignore[no-untyped-def]
    for actions, axes in ((["pad_a"], []), (["left"], ["pad_lx"])):
        with pytest.raises(EngineError, match=r"XTest cannot send pad_.*X has no gamepads; use --output uinput") as e:
            open_output("xtest", actions, xvfb.display, axes=axes, fps=30)
        assert "\n" not in str(e.value)
    with pytest.raises(EngineError, match="need the captured region"):
        open_output("xtest", ["left"], xvfb.display, axes=["mouse_x"], fps=30)


class _AxisDecoder:
    """The real model's real Decoder for the keys, plus axis values made from the same real output (what
    decode_axes returns is axlearn's to test; this checks the loop and the output that carry them)."""

    axes = ("mouse_dx",)

    def __init__(self, real: object) -> None:
        self.real = real

    def decode(self, out: np.ndarray) -> np.ndarray:
        return self.real.decode(out)  # type: ignore[attr-defined]

    def decode_axes(self, out: np.ndarray) -> np.ndarray:
        return np.array([10.0 if out[0] > out[1] else -10.0], np.float32)


def _frames(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n 32x24 gray frames whose left half is brighter, 30 fps apart."""
    frames = np.full((n, 24, 32), 60, np.uint8)
    frames[:, :, :16] = 220
    return frames, np.arange(n, dtype=np.int64) * 33_333_333


def test_the_play_loop_moves_the_mouse_and_logs_the_axes(xvfb, pointer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = Model.load(MODELS / "brighter_half.tflite")
    real = model.decoder()
    model.decoder = lambda: _AxisDecoder(real)  # type: ignore[method-assign]
    out = XTestOutput(["left", "right"], xvfb.display, watchdog=False, axes=["mouse_dx"], fps=model.spec.fps)
    try:
        out._act.warp(600, 500)
        assert wait_for(lambda: pointer.pos() == (600, 500))
        player = Player(model, out, kill_key=None)
        frames, t = _frames(20)
        summary = player.replay(frames, t, install_signals=False)
        data = player.telemetry.arrays()
        assert summary.decisions == len(data["axes"]) > 0
        assert set(data["axes"][:, 0].tolist()) == {10.0}  # the left half is brighter in every frame
        # Every decision's motion reached the X server, minus what release_all dropped at the end.
        sent = out.motion_sent[0]
        assert 10 * (summary.decisions - 1) <= sent <= 10 * summary.decisions
        assert wait_for(lambda: pointer.pos() == (600 + sent, 500))
        err = axis_error(data["axes"], data["tick"], np.full((20, 1), 7.0, np.float32))
        assert err.tolist() == [3.0]
        for name in ("log.npz", "log.csv"):
            player.telemetry.save(tmp_path / name, ["left", "right"])
        npz = np.load(tmp_path / "log.npz")
        assert npz["axis_names"].tolist() == ["mouse_dx"] and np.array_equal(npz["axes"], data["axes"])
        header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
        assert header[-3:] == ["held_left", "held_right", "axis_mouse_dx"]
    finally:
        out.close()
    # An output opened without the model's axes is refused before play, in one line.
    player = Player(model, NullOutput(2), kill_key=None)
    with pytest.raises(EngineError, match="decides mouse_dx but the none output was opened for no axes"):
        player.replay(*_frames(4), install_signals=False)


def test_dry_run_prints_and_keeps_the_axes(capsys) -> None:  # type: ignore[no-untyped-def]
    out = DryRunOutput(["left"], axes=["mouse_dx", "pad_lx"])
    out.apply_axes(np.array([3, -0.25], np.float32))
    out.apply_axes(np.array([3, -0.25], np.float32))  # unchanged: not printed again
    out.apply_axes(np.array([-1.5, 0], np.float32))
    assert capsys.readouterr().out.splitlines() == ["axes: mouse_dx=+3.00 pad_lx=-0.25",
                                                    "axes: mouse_dx=-1.50 pad_lx=+0.00"]
    assert out.last_axes.tolist() == [-1.5, 0.0]
    t = Telemetry(1, axis_names=("mouse_dx",))
    t.add(0, 1, 2, 3, 4, 0, 0, np.zeros(1, np.uint8), np.array([2.5], np.float32))
    assert t.arrays()["axes"].tolist() == [[2.5]]


def test_each_piece_goes_at_its_offset_in_the_period_and_never_before() -> None:
    sent: list[tuple[int, int, int, int]] = []

    def record(dx: int, dy: int, wheel: int) -> int:
        sent.append((time.monotonic_ns(), dx, dy, wheel))
        return 1

    period = 0.2
    s = MotionSpreader(record, period)
    try:
        t0 = time.monotonic_ns()
        assert s.add(5, -3, 2) == 1  # the piece due now: sent before add returns, with the wheel notches
        assert s.wait_idle(2.0)
        assert [p[1:] for p in sent] == [(1, -1, 2), (1, -1, 0), (1, -1, 0), (2, 0, 0)]
        for k, (t, *_) in enumerate(sent):
            assert t - t0 >= k * period * 1e9 / 4
        sent.clear()
        t0 = time.monotonic_ns()
        assert s.add(1, 0) == 0  # a single count is the last piece's: nothing is due yet
        assert s.wait_idle(2.0) and [p[1:] for p in sent] == [(1, 0, 0)]
        assert sent[0][0] - t0 >= 0.75 * period * 1e9
        assert s.sent == [6, -3, 2]
    finally:
        s.close()


def test_motion_errors_surface_on_the_next_decision() -> None:
    def broken(dx: int, dy: int, wheel: int) -> int:
        raise OSError("the display went away")

    s = MotionSpreader(broken, 0.1)
    s.add(8, 0)  # the first piece fails in the caller's thread ...
    with pytest.raises(EngineError, match="mouse motion failed: OSError: the display went away"):
        s.add(8, 0)  # ... and is reported by the next decision
    s.close()


_PLAYER = """
import sys, time
import numpy as np
from engine.actions.outputs import XTestOutput
out = XTestOutput(["left"], sys.argv[1], axes=["mouse_dx"], fps=2.0)
out.apply(np.ones(1, np.uint8))
out.apply_axes(np.array([400], np.float32))
print("moving", flush=True)
while True:
    time.sleep(0.05)
"""


def test_kill_9_of_a_player_leaves_nothing_held_or_moving(xvfb, pointer) -> None:  # type: ignore[no-untyped-def]
    act = _native.XTestActuator(xvfb.display, ["left"])
    act.warp(900, 500)
    assert wait_for(lambda: pointer.pos() == (900, 500))
    proc = subprocess.Popen([sys.executable, "-c", _PLAYER, xvfb.display], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "moving"
        assert act.system_held() == [True]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_for(lambda: act.system_held() == [False])  # the watchdog released the key
        at = pointer.pos()
        time.sleep(0.6)  # longer than the rest of the period the dead player had planned
        assert pointer.pos() == at and at[0] < 1300  # motion died with it: not the whole 400 counts
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_demo_game_under_the_mouse_driver_stays_on_the_road(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log_path = tmp_path / "mouse.csv"
    g = DemoProcess("--autodrive", "--mouse", "--duration", "3", "--seed", "4", "--log", str(log_path),
                    display=xvfb.display)
    assert g.wait() == 0, g.stderr
    log = load_log(log_path)
    assert len(log) > 60
    assert log["on_road"].mean() >= 0.95
    moved = log["dx"] != 0
    assert moved.mean() > 0.3  # the game read motion on most frames: smooth, not one jump now and then
    # The game applied what the driver sent: everything but the last tick or two still in flight at exit,
    # to within the fraction the output carries.
    tail = np.abs(log["sent_dx"][-3:]).sum() + 1
    assert abs(int(log["dx"].sum()) - float(log["sent_dx"].sum())) <= tail
    # ... and the car moved by exactly the dx logged (MOUSE_GAIN per count; no keys, no gusts): the log's dx
    # is what the game applied.
    moves = np.diff(log["car_x"].astype(np.float64))
    assert np.abs(moves - log["dx"][1:] * MOUSE_GAIN * 320).max() <= 0.011  # car_x is logged to 2 decimals


@pytest.mark.skipif(not HAVE_UINPUT, reason=NO_UINPUT)
def test_uinput_pad_is_left_neutral(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import evdev

    out = UinputOutput(["pad_a", "pad_up"], axes=["pad_lx", "pad_rt", "mouse_dx"], fps=30)
    try:
        devices = [evdev.InputDevice(p) for p in evdev.list_devices()]
        dev = next(d for d in devices if d.name == "engine virtual pad")
        out.apply(np.array([1, 1], np.uint8))
        out.apply_axes(np.array([0.5, 1.0, 0.0], np.float32))
        assert wait_for(lambda: dev.absinfo(evdev.ecodes.ABS_X).value == round(0.5 * 32767))
        assert evdev.ecodes.BTN_SOUTH in dev.active_keys()
        out.release_all()
        assert wait_for(lambda: dev.absinfo(evdev.ecodes.ABS_X).value == 0 and not dev.active_keys())
        assert dev.absinfo(evdev.ecodes.ABS_RZ).value == 0 and dev.absinfo(evdev.ecodes.ABS_HAT0Y).value == 0
    finally:
        out.close()


@pytest.mark.skipif(HAVE_UINPUT, reason="checks the message where /dev/uinput is missing")
def test_a_pad_without_uinput_is_one_clear_line() -> None:
    with pytest.raises(EngineError) as e:
        UinputOutput(["pad_a"], axes=["pad_lx"], fps=30, settle_s=0)
    assert "uinput" in str(e.value) and "\n" not in str(e.value)


# -- engine-play with a model that has axes (runs once axlearn's sidecar axes and Decoder.decode_axes are
# merged: skipped before). The model is the real brighter_half .tflite, its two outputs read as one key
# (left) and one raw axis block: a real model with an axis output, decoded by the real Decoder.

def _axis_model(tmp_path: Path, axis: str) -> Path:
    pytest.importorskip("engine.axes_spec", reason="needs the sidecar's axes (axlearn's branch, merged separately)")
    import json

    model = tmp_path / f"{axis}.tflite"
    model.write_bytes((MODELS / "brighter_half.tflite").read_bytes())
    side = json.loads((MODELS / "brighter_half.json").read_text())
    side.update(format_version=2, actions=["left"], thresholds=[0.5], axes=[{"name": axis, "encoding": "raw"}])
    model.with_suffix(".json").write_text(json.dumps(side))
    return model


def _play(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.play", *args], capture_output=True, text=True,
                          timeout=60)


def test_a_pad_model_on_xtest_is_one_clear_line(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = _play("--model", str(_axis_model(tmp_path, "pad_lx")), "--output", "xtest", "--countdown", "0",
                 "--duration", "1", "--display", xvfb.display)
    errs = [ln for ln in proc.stderr.splitlines() if ln.startswith("engine-play:")]
    assert proc.returncode == 2 and len(errs) == 1
    assert "XTest cannot send pad_lx: X has no gamepads; use --output uinput" in errs[0]


def test_dry_run_and_replay_carry_the_axes(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.session import SessionWriter

    model = _axis_model(tmp_path, "mouse_dx")
    proc = _play("--model", str(model), "--dry-run", "--countdown", "0", "--duration", "1", "--display",
                 xvfb.display, "--log", str(tmp_path / "dry.npz"))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^axes: mouse_dx=[+-]\d+\.\d\d$", proc.stdout, re.MULTILINE), proc.stdout
    log = np.load(tmp_path / "dry.npz")
    assert log["axis_names"].tolist() == ["mouse_dx"] and log["axes"].shape == (len(log["tick"]), 1)
    # Replay: 40 frames whose right half is brighter, the recorded mouse_dx 0 throughout: the error is the
    # mean of what the model decided, which the telemetry also holds.
    frames = np.full((40, 24, 32), 60, np.uint8)
    frames[:, :, 16:] = 220
    with SessionWriter.create(tmp_path, name="s", game="t", fps=30.0, frame_shape=(24, 32), color="gray",
                              actions=["left"], axes=["mouse_dx"], resize=(32, 24), source={}) as w:
        w.frames_buffer(40)[:] = frames
        w.commit(40, 10**9 + np.arange(40, dtype=np.int64) * 33_333_333, np.zeros((40, 1), np.uint8),
                 np.zeros((40, 1), np.float32))
    proc = _play("--model", str(model), "--replay", str(tmp_path / "sessions" / "s"), "--log",
                 str(tmp_path / "replay.npz"))
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"^mean absolute error per axis: mouse_dx (\S+)$", proc.stdout, re.MULTILINE)
    assert m, proc.stdout
    decided = np.load(tmp_path / "replay.npz")["axes"][:, 0]
    assert float(m.group(1)) == pytest.approx(float(np.abs(decided).mean()), rel=1e-2, abs=1e-3)
