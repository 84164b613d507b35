"""engine-play on a real Xvfb: real .tflite models run by LiteRT, real windows, keys checked on the X server.

The fixture model brighter_half presses `left` when the left half of the newest frame is brighter and
`right` when the right half is (tests/fixtures/models/make_models.py); the window under test shows
such images, and the X server's own key map (XQueryKeymap) must follow.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

from engine import _native
from engine._pacer import monotonic_ns
from engine.actions.outputs import DryRunOutput, NullOutput, UinputOutput, XTestOutput
from engine.capture import open_source
from engine.play import Decoder, Model
from engine.play.loop import Player, PlayStopped
from engine.session import Session, SessionWriter
from engine.sidecar import ModelSidecar
from engine.telemetry import STAGES

MODELS = Path(__file__).parent / "fixtures" / "models"
H, W = 96, 128  # the window; the model sees it resized to 32x24 gray


def half_image(which: str) -> np.ndarray:
    img = np.full((H, W, 3), 60, np.uint8)
    if which == "left":
        img[:, : W // 2] = 220
    elif which == "right":
        img[:, W // 2 :] = 220
    return img


def server_keys(display: str) -> list[bool]:
    """What the X server believes is held for left, right (a separate connection from the player's)."""
    return list(_native.XTestActuator(display, ["left", "right"]).system_held())




def play_in_thread(player: Player, window: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = player.live(open_source(window=window), install_signals=False)
        except PlayStopped as e:
            result["stopped"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


@pytest.mark.parametrize("model", ["brighter_half", "brighter_half_uint8"])
def test_keys_follow_the_model_and_are_released_at_the_end(xvfb, image_window, model: str) -> None:  # type: ignore[no-untyped-def]
    win = image_window(half_image("none"), title=f"play-{model}")
    m = Model.load(MODELS / f"{model}.tflite")
    player = Player(m, XTestOutput(["left", "right"], xvfb.display, watchdog=False), duration=30, kill_key=None)
    thread, result = play_in_thread(player, f"play-{model}")
    try:
        win.show(half_image("left"))
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
        win.show(half_image("right"))
        assert wait_for(lambda: server_keys(xvfb.display) == [False, True])
        win.show(half_image("none"))
        assert wait_for(lambda: server_keys(xvfb.display) == [False, False])
        win.show(half_image("left"))
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
    finally:
        player.stop("test over")
        thread.join()
    assert server_keys(xvfb.display) == [False, False]  # released on the way out
    summary = result["summary"]
    data = player.telemetry.arrays()
    assert summary.decisions == len(data["tick"]) >= 4 and summary.stop_reason == "test over"
    assert (data["t_sent_ns"] >= data["t_invoke_ns"]).all() and (data["t_invoke_ns"] >= data["t_capture_ns"]).all()
    assert np.all(np.diff(data["tick"]) >= 1)  # each decision on a newer frame, never queued
    # Every stage column (engine.telemetry.STAGES), in time order in every row, and the summary says where
    # the time went and what scheduling the capture thread and the loop were given.
    stamps = [data["t_invoke_ns"] + data["invoke_ns"] if c == "t_invoked_ns" else data[c] for _, c in STAGES]
    assert all((later >= earlier).all() for earlier, later in itertools.pairwise(stamps))
    assert summary.stages.startswith("stages p50/p99 ms") and "sent+flushed" in summary.stages
    sched = summary.scheduling  # granted or refused, whichever this machine allows: never an error
    assert sched.startswith("capture thread SCHED_FIFO ") and "; play loop SCHED_FIFO " in sched


def test_kill_switch_releases_everything(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    image_window(half_image("left"), title="play-kill")
    out = XTestOutput(["left", "right"], xvfb.display, watchdog=False)
    player = Player(Model.load(MODELS / "brighter_half.tflite"), out, duration=30, kill_key="f12", display=xvfb.display)
    thread, result = play_in_thread(player, "play-kill")
    assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
    f12 = _native.XTestActuator(xvfb.display, ["f12"])
    f12.apply(np.ones(1, np.uint8))
    f12.apply(np.zeros(1, np.uint8))
    thread.join(10)
    assert not thread.is_alive() and "F12" in result["summary"].stop_reason
    assert server_keys(xvfb.display) == [False, False]


def test_window_disappearing_releases_everything(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    win = image_window(half_image("left"), title="play-vanish")
    out = XTestOutput(["left", "right"], xvfb.display, watchdog=False)
    player = Player(Model.load(MODELS / "brighter_half.tflite"), out, duration=30, kill_key=None)
    thread, result = play_in_thread(player, "play-vanish")
    assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
    win.close()
    thread.join(10)
    assert not thread.is_alive()
    assert "closed" in str(result["stopped"]) or "hidden" in str(result["stopped"])
    assert server_keys(xvfb.display) == [False, False]


# Fault injection: the real model, decoder and output, one of which raises on its FAIL_AT-th call, noting
# what the X server held at that moment (so the test shows a key was down and then released).
FAIL_AT = 20


class _Fault:
    def __init__(self, display: str, what: str) -> None:
        self.display, self.what, self.calls = display, what, 0
        self.held_at_failure: list[bool] = []

    def tick(self) -> None:
        self.calls += 1
        if self.calls == FAIL_AT:
            self.held_at_failure = server_keys(self.display)
            raise RuntimeError(f"{self.what} failed (injected)")


class FailingModel(Model):
    """The real model; its invoke raises once (``fault`` set by the test), as a runtime failing mid-game."""

    fault: _Fault | None = None

    def invoke(self) -> np.ndarray:
        if self.fault is not None:
            self.fault.tick()
        return super().invoke()


class FailingDecoder(Decoder):
    def __init__(self, spec: ModelSidecar, fault: _Fault) -> None:
        super().__init__(spec)
        self.fault = fault

    def decode(self, output: np.ndarray) -> np.ndarray:
        self.fault.tick()
        return super().decode(output)


class DecodeFailingModel(Model):
    """The real model, handing the loop a real decoder that raises once."""

    fault: _Fault | None = None

    def decoder(self) -> Decoder:
        assert self.fault is not None
        return FailingDecoder(self.spec, self.fault)


class FailingOutput(XTestOutput):
    """A real XTest output whose apply raises once, as a failing actuation would mid-game."""

    def __init__(self, display: str, fault: _Fault) -> None:
        super().__init__(["left", "right"], display, watchdog=False)
        self.fault = fault

    def apply(self, state: np.ndarray) -> int:
        self.fault.tick()
        return super().apply(state)


@pytest.mark.parametrize("where", ["invoke", "decode", "apply"])
def test_exception_in_the_loop_releases_everything(xvfb, image_window, where: str) -> None:  # type: ignore[no-untyped-def]
    image_window(half_image("left"), title=f"play-raise-{where}")
    fault = _Fault(xvfb.display, where)
    path = MODELS / "brighter_half.tflite"
    if where == "apply":
        model: Model = Model.load(path)
        out = FailingOutput(xvfb.display, fault)
    else:
        cls = FailingModel if where == "invoke" else DecodeFailingModel
        model = cls.load(path)
        model.fault = fault  # type: ignore[attr-defined]
        out = XTestOutput(["left", "right"], xvfb.display, watchdog=False)
    player = Player(model, out, duration=30, kill_key=None)
    thread, result = play_in_thread(player, f"play-raise-{where}")
    thread.join(20)
    assert not thread.is_alive()
    assert f"{where} failed (injected)" in str(result["stopped"])
    assert fault.held_at_failure == [True, False]  # left was down when it raised...
    assert server_keys(xvfb.display) == [False, False]  # ...and nothing is now
    assert result["stopped"].summary.stop_reason == "error"


def _play_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.play", "--countdown", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_release_everything(xvfb, image_window, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    image_window(half_image("left"), title=f"play-{sig.name}")
    proc = _play_cli("--model", str(MODELS / "brighter_half.tflite"), "--window", f"play-{sig.name}")
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False], 20)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"stopped by {sig.name}" in out
    assert server_keys(xvfb.display) == [False, False]


def test_ctrl_c_in_a_terminal_stops_cleanly(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    # A terminal's Ctrl-C signals the whole foreground process group, watchdog included: play must still
    # end cleanly (the watchdog lives in its own session).
    image_window(half_image("left"), title="play-ctrl-c")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.play", "--countdown", "0", "--model",
                             str(MODELS / "brighter_half.tflite"), "--window", "play-ctrl-c"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False], 20)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "stopped by SIGINT" in out
    assert server_keys(xvfb.display) == [False, False]


def test_kill_9_is_covered_by_the_watchdog(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    # XTest presses outlive their sender: only the watchdog process can release them after kill -9.
    image_window(half_image("left"), title="play-kill9")
    proc = _play_cli("--model", str(MODELS / "brighter_half.tflite"), "--window", "play-kill9")
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False], 20)
        proc.kill()
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_for(lambda: server_keys(xvfb.display) == [False, False])


def test_dry_run_prints_decisions_and_sends_nothing(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image_window(half_image("right"), title="play-dry")
    log = tmp_path / "t.csv"
    proc = _play_cli("--model", str(MODELS / "brighter_half.tflite"), "--window", "play-dry", "--dry-run",
                     "--duration", "1.5", "--log", str(log))
    seen = []
    while proc.poll() is None:
        seen.append(server_keys(xvfb.display))
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "decision: right" in out and not any(any(s) for s in seen)
    table = np.loadtxt(log, delimiter=",", skiprows=1, dtype=np.int64)
    header = log.read_text().splitlines()[0].split(",")
    assert header[:5] == ["tick", "t_capture_ns", "t_invoke_ns", "invoke_ns", "t_sent_ns"]
    assert len(table) > 10 and (table[:, header.index("held_right")] == 1).all()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "/nonexistent.tflite"], "does not exist"),
        (["--model", str(MODELS / "brighter_half.json")], "not a TensorFlow Lite model"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--frames", "3"], "pass --frames 2"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--frame-size", "64x48"], "32x24"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--kill-key", "left"], "kill key left"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--window", "no such window"], "no window titled"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--output", "joystick"], "invalid choice"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--replay", "nope"], "no session 'nope'"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--scale", "1,2,3"], "at most two numbers"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--log", "/nonexistent/dir/t.csv"],
         "directory /nonexistent/dir does not exist"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--log", "tel.log"], ".npz or .csv"),
        (["--model", str(MODELS / "brighter_half.tflite"), "--log", "/tmp"], "is a directory"),
    ],
)
def test_bad_input_is_one_line(xvfb, flags: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    proc = _play_cli("--duration", "1", *flags)
    _, err = proc.communicate(timeout=60)
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("INFO:", "model "))]
    assert proc.returncode == 2, err
    assert len(lines) == 1 and message in lines[0], err


def test_uinput_missing_or_denied_is_one_line_with_the_fix() -> None:
    if os.path.exists("/dev/uinput") and os.access("/dev/uinput", os.W_OK):
        pytest.skip("/dev/uinput is usable here; the failure message cannot be provoked")
    from engine.errors import EngineError

    with pytest.raises(EngineError, match=r"modprobe uinput|udev rule"):
        UinputOutput(["left"], settle_s=0)


def test_replay_reports_agreement_with_the_recording(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A recorded session in the model's own format: left-bright frames labelled left, then right-bright
    # frames labelled right, at 30 fps.
    frames = []
    labels = []
    for which, lab in [("left", [1, 0]), ("right", [0, 1]), ("none", [0, 0])]:
        small = _native.convert_resize(np.ascontiguousarray(np.dstack([half_image(which)[..., ::-1],
                                                                        np.zeros((H, W), np.uint8)])),
                                       32, 24, "gray")
        frames += [small] * 20
        labels += [lab] * 20
    with SessionWriter.create(tmp_path, name="halves", game="t", fps=30.0, frame_shape=(24, 32), color="gray",
                              actions=["up", "left", "right"], resize=(32, 24), source={}) as w:
        buf = w.frames_buffer(60)
        assert len(buf) == 60
        buf[:] = np.array(frames)
        t = 10**9 + np.arange(60, dtype=np.int64) * 33_333_333
        w.commit(60, t, np.array([[0, *lab] for lab in labels], np.uint8))
    proc = _play_cli("--model", str(MODELS / "brighter_half.tflite"), "--replay", "halves", "--data-dir",
                     str(tmp_path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("agreement"))
    # The first frame of each block has a mixed window (the model sees 2 frames): at most 1 miss per block.
    left, right = (float(x.split()[-1].rstrip("%")) for x in line.split(":")[1].split(","))
    assert left >= 90 and right >= 90
    assert Session.open(tmp_path / "sessions" / "halves").meta["frames"] == 60


def test_history_model_is_fed_the_actions_actually_sent(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    # history.tflite: brighter_half, or "held in the newest history row". A none-image keeps the key
    # held only through the history input, i.e. through what the engine really sent.
    win = image_window(half_image("left"), title="play-history")
    m = Model.load(MODELS / "history.tflite")
    player = Player(m, XTestOutput(["left", "right"], xvfb.display, watchdog=False), duration=30, kill_key=None)
    thread, _ = play_in_thread(player, "play-history")
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
        win.show(half_image("none"))  # returns once drawn: every frame captured from now on is a none-image
        shown = monotonic_ns()

        def decided_since() -> list[list[int]]:
            t = player.telemetry
            n = len(t.decisions)  # add() appends the row first: rows[:n] match decisions[:n]
            return [d.tolist() for row, d in zip(t.rows[:n], t.decisions[:n], strict=True) if row[1] > shown]

        # Enough decisions on none-images only (the model's window is 2 frames) that the brightness no
        # longer holds the key: every one of them held it through the history alone, and so does the server.
        assert wait_for(lambda: len(decided_since()) >= 5)
        assert all(d == [1, 0] for d in decided_since())
        assert server_keys(xvfb.display) == [True, False]  # latched by its own history
    finally:
        player.stop("test over")
        thread.join()
    assert server_keys(xvfb.display) == [False, False]


def test_a_slow_model_skips_frames_and_never_queues() -> None:
    # slow.tflite's invoke takes several frame periods at 240 fps: capture (the replay producer) keeps the
    # recorded spacing, each decision takes the newest window, and what it passed over is counted.
    model = Model.load(MODELS / "slow.tflite", overrides={"fps": 240.0})
    n = 120
    frames = np.random.default_rng(0).integers(0, 256, (n, 84, 84), dtype=np.uint8)
    t = 10**9 + np.arange(n, dtype=np.int64) * round(1e9 / 240)
    player = Player(model, NullOutput(2), kill_key=None)
    summary = player.replay(frames, t, install_signals=False)
    data = player.telemetry.arrays()
    ticks, skipped = data["tick"], data["skipped"]
    assert summary.skipped > 0 and summary.stop_reason == "end of replay"
    assert np.all(np.diff(ticks) > 0)  # each decision on a newer frame than the last
    assert np.array_equal(skipped[1:], np.diff(ticks) - 1)  # every frame passed over is counted...
    assert skipped.sum() == summary.skipped == ticks[-1] - ticks[0] + 1 - summary.decisions  # ...once
    assert ticks[-1] == n - 1 and summary.captured == n  # the newest frame always gets its decision
    lines = summary.lines()
    assert f"{summary.decisions} decisions" in lines[0] and f"{summary.skipped} skipped" in lines[0]
    every = round(n / summary.decisions)
    suffix = "th" if 10 <= every % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(every % 10, "th")
    slow = [w for w in lines if "slower than the frame period" in w]
    assert len(slow) == 1 and f"the model sees about every {every}{suffix} frame" in slow[0], lines


def test_dry_run_output_prints_changes_only() -> None:
    import io

    buf = io.StringIO()
    out = DryRunOutput(["left", "right"], buf)
    for s in ([1, 0], [1, 0], [0, 0], [0, 1]):
        out.apply(np.array(s, np.uint8))
    assert buf.getvalue().splitlines() == ["decision: left", "decision: (none)", "decision: right"]
