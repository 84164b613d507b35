"""engine-play --takeover on a real Xvfb: a second XInput2 master plays the person through its own XTest slave.

How the person is played (measured on Xvfb): `xinput create-master` alone is no use, because the X server
removes a master when the client that created it disconnects. XTestOutput(master="Person") creates the
master on its own connection (XIChangeHierarchy) and sends through that master's XTest slave with
XTestFakeDeviceKeyEvent (XInput 1's device-aware XTest call), so its events carry the source id of
"Person XTEST keyboard" while the engine's come from "Virtual core XTEST keyboard". XQueryKeymap reads the
core keyboard, so the X server's core key state (server_keys) shows the engine's keys only.

The model is the brighter_half fixture (tests/test_play.py): with the left half bright it holds `left`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from engine import _native
from engine._pacer import monotonic_ns
from engine.actions.inputs import X11Input, human_mask
from engine.actions.outputs import XTestOutput
from engine.record.labeler import label_reference
from engine.session import Session

MODELS = Path(__file__).parent / "fixtures" / "models"
H, W = 96, 128
ACTIONS = ["left", "right"]


def left_bright() -> np.ndarray:
    img = np.full((H, W, 3), 60, np.uint8)
    img[:, : W // 2] = 220
    return img


def server_keys(display: str) -> list[bool]:
    return list(_native.XTestActuator(display, ACTIONS).system_held())


def wait_for(pred, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_events_name_their_source_device(xvfb) -> None:  # type: ignore[no-untyped-def]
    listener = X11Input(ACTIONS, ["f11"], xvfb.display)
    listener.start()
    engine = XTestOutput(ACTIONS, xvfb.display, watchdog=False)
    person = XTestOutput(ACTIONS, xvfb.display, watchdog=False, master="Person")  # made after start():
    try:  # the listener learns of its XTest slaves from XI_HierarchyChanged
        assert engine.devices and person.devices and not set(engine.devices) & set(person.devices)
        engine.apply(np.array([1, 0], np.uint8))
        person.apply(np.array([1, 1], np.uint8))  # left held on both devices: two held keys
        person.release_all()
        engine.release_all()
        got: list = []
        assert wait_for(lambda: got.append(listener.poll_sources()[0]) or sum(len(g[0]) for g in got) >= 6, 5)
        t, a, v, dev, inj = (np.concatenate(x) for x in zip(*got, strict=True))
    finally:
        listener.stop()
        person.close()
        engine.close()
    kb_engine, kb_person = engine.devices[0], person.devices[0]
    # Two connections: their events interleave in any order, each device's in its own order.
    def of(device: int) -> list[tuple[int, int]]:
        return [(int(x), int(y)) for x, y, d in zip(a, v, dev, strict=True) if d == device]
    assert of(kb_engine) == [(0, 1), (0, 0)]
    assert of(kb_person) == [(0, 1), (1, 1), (0, 0), (1, 0)]
    assert inj.tolist() == [1] * 6  # both are XTest slaves...
    human = human_mask((t, a, v, dev, inj), engine.devices)  # ...told apart by which one
    assert human.tolist() == (dev == kb_person).tolist()


def _play(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.play", "--countdown", "0", "--model",
                             str(MODELS / "brighter_half.tflite"), "--takeover", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def test_takeover_releases_hands_back_and_records_what_happened(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image_window(left_bright(), title="takeover-run")
    handback = 0.5
    observer = X11Input(ACTIONS, [], xvfb.display)  # every key event of the run, with its source
    observer.start()
    person = XTestOutput(ACTIONS, xvfb.display, watchdog=False, master="Person")
    proc = _play("--window", "takeover-run", "--handback", str(handback), "--record", "--name", "tk",
                 "--data-dir", str(tmp_path))
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])  # the model holds left
        person.apply(np.array([0, 1], np.uint8))  # the person steers right
        assert wait_for(lambda: server_keys(xvfb.display) == [False, False])  # the engine let go of left
        time.sleep(0.4)
        person.apply(np.array([0, 0], np.uint8))
        t_release = monotonic_ns()
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])  # handed back: left again
        t_back = monotonic_ns()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        person.close()
    got = observer.poll_sources()[0]
    observer.stop()
    assert proc.returncode == 0, err
    assert "takeovers 1, person in control" in out
    assert "takeover 1: the person has control" in err and "control back to the model after" in err  # status
    assert t_back - t_release >= handback * 1e9

    # The log: after the person's first press the engine's next event releases left, and it presses
    # nothing until the person has been quiet for --handback.
    t, a, v, dev, _ = got
    mine = np.isin(dev, person.devices)
    first = int(np.flatnonzero(mine)[0])
    engine_after = [(int(t[i]), int(a[i]), int(v[i])) for i in range(first + 1, len(t)) if not mine[i]]
    assert engine_after[0][1:] == (0, 0)
    presses = [e for e in engine_after if e[2] == 1]
    last_person = int(t[mine][-1])
    assert presses and presses[0][0] - last_person >= handback * 1e9

    s = Session.open(tmp_path / "sessions" / "tk")
    assert s.meta["status"] == "complete" and s.actions_names == ACTIONS
    control, model = s.control, s.model_actions
    assert control is not None and model is not None
    spans = s.meta["takeover"]["spans_ns"]
    assert len(spans) == 1
    start, end = spans[0]
    ev = s.events
    # The person's events, as the observer saw them (each process stamps arrival on the one clock).
    assert list(zip(ev["action"].tolist(), ev["value"].tolist(), strict=True)) == list(
        zip(a[mine].tolist(), v[mine].tolist(), strict=True))
    assert start == int(ev["t_ns"][0])  # the takeover began at the person's first press
    ts = np.asarray(s.timestamps)
    np.testing.assert_array_equal(control, ((ts >= start) & (ts < end)).astype(np.uint8))
    assert control.sum() > 0
    # The person's actions, labelled as engine-record labels them, from the person's events only.
    np.testing.assert_array_equal(s.actions, label_reference(ts, ev["t_ns"], ev["action"], ev["value"], 2))
    assert s.actions[:, 0].sum() == 0 and s.actions[:, 1].sum() > 0  # the engine's left is never the person's
    # The model proposed left on every frame, while the person drove too.
    assert (np.asarray(model) == [1, 0]).all()


def test_kill_9_during_a_takeover_leaves_no_key_held(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image_window(left_bright(), title="takeover-kill9")
    person = XTestOutput(ACTIONS, xvfb.display, watchdog=False, master="Person")
    proc = _play("--window", "takeover-kill9", "--handback", "30")
    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])
        person.apply(np.array([0, 1], np.uint8))
        assert wait_for(lambda: server_keys(xvfb.display) == [False, False])
        proc.kill()
        proc.communicate(timeout=20)
        person.release_all()
        time.sleep(0.5)  # the watchdog has had its chance to do harm, too
        assert server_keys(xvfb.display) == [False, False]
    finally:
        if proc.poll() is None:
            proc.kill()
        person.close()



def test_the_demos_assisting_driver_is_a_second_person(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # engine-demo --assist: the scripted driver takes over through the "Person" master once the car is off
    # the line. Its keys reach the game (the master was given the game's focus), from another device.
    from engine.demo.models.drive import DemoGame

    observer = X11Input(["left", "right", "up"], [], xvfb.display)
    observer.start()
    game = DemoGame(tmp_path / "game.csv", 3, "--assist", "12", display=xvfb.display)
    try:
        time.sleep(4)
    finally:
        log = game.stop()
        got = observer.poll_sources()[0]
        observer.stop()
    sent = log["sent"] != 0
    assert sent.any() and (log["keys"][1:][sent[:-1]] != 0).any()  # it drove, and the game saw its keys
    t, _, _, dev, inj = got
    assert len(t) and (inj == 1).all()
    core = _native.XTestActuator(xvfb.display, ACTIONS)
    assert not np.isin(dev, core.devices).any()  # none from the core XTest device the engine uses


def test_bad_takeover_flags_are_one_line(xvfb, image_window) -> None:  # type: ignore[no-untyped-def]
    image_window(left_bright(), title="takeover-flags")
    for flags, message in ((["--record"], "needs --takeover"),
                           (["--takeover", "--takeover-key", "left"], "--takeover-key left is one of the model's")):
        done = subprocess.run([sys.executable, "-m", "engine.cli.play", "--countdown", "0", "--model",
                               str(MODELS / "brighter_half.tflite"), "--window", "takeover-flags", *flags],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("engine-play: ")
    assert server_keys(xvfb.display) == [False, False]


# -- axes (issue 14): the person's mouse or pad past a dead zone takes over ---------------------------------

class _Script:
    """An InputSource that hands out queued events (the listener's part is tested on Xvfb below)."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int, int, int, int]] = []
        self.axes: list[tuple[int, int, float, int, int]] = []

    def start(self) -> None: ...
    def stop(self) -> None: ...
    error = ""

    def poll(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def poll_sources(self):  # type: ignore[no-untyped-def]
        k, self.keys = self.keys, []
        cols = list(zip(*k, strict=True)) or [(), (), (), (), ()]
        return (np.array(cols[0], np.int64), np.array(cols[1], np.int16), np.array(cols[2], np.int8),
                np.array(cols[3], np.int32), np.array(cols[4], np.uint8)), []

    def poll_axes(self):  # type: ignore[no-untyped-def]
        a, self.axes = self.axes, []
        cols = list(zip(*a, strict=True)) or [(), (), (), (), ()]
        return (np.array(cols[0], np.int64), np.array(cols[1], np.int16), np.array(cols[2], np.float32),
                np.array(cols[3], np.int32), np.array(cols[4], np.uint8))


MS = 1_000_000


def test_axis_dead_zones_count_the_persons_net_motion_and_deflection_only() -> None:
    from engine.play.takeover import AxisWatch

    watch = AxisWatch(["mouse_dx", "mouse_x", "pad_lx"])  # defaults: 4 counts / 100 ms, 0.02, 0.15

    def feed(*events: tuple[int, int, float, bool]) -> tuple[int, int]:
        t, a, v, h = zip(*events, strict=True)
        return watch.feed(np.array(t, np.int64), np.array(a, np.int16), np.array(v, np.float32), np.array(h))

    t0 = 10**9
    # A resting mouse's jitter nets out; a slow drift (1 count per 40 ms) stays under 4 counts per 100 ms.
    assert feed(*[(t0 + i * 10 * MS, 0, (-1) ** i, True) for i in range(20)]) == (0, 0)
    assert feed(*[(t0 + 300 * MS + i * 40 * MS, 0, 1.0, True) for i in range(10)]) == (0, 0)
    # The engine's own motion, however large, is not the person's.
    assert feed((t0 + 800 * MS, 0, 50.0, False)) == (0, 0)
    # Two moves of 2 counts 30 ms apart: past the dead zone at the second, which the window spans across calls.
    assert feed((t0 + 1000 * MS, 0, 2.0, True)) == (0, 0)
    assert feed((t0 + 1030 * MS, 0, 2.0, True)) == (t0 + 1030 * MS,) * 2
    # The pointer: the engine's warps move it too, only the person's moves count.
    t1 = t0 + 2000 * MS
    assert feed((t1, 1, 0.5, False), (t1 + MS, 1, 0.505, True), (t1 + 2 * MS, 1, 0.9, False),
                (t1 + 3 * MS, 1, 0.905, True)) == (0, 0)
    assert feed((t1 + 4 * MS, 1, 0.93, True)) == (t1 + 4 * MS,) * 2
    # A stick: past 0.15 from centre takes over and is held there until it comes back.
    t2 = t0 + 3000 * MS
    assert feed((t2, 2, 0.1, True)) == (0, 0) and not watch.held
    assert feed((t2 + MS, 2, 0.9, False)) == (0, 0) and not watch.held  # the engine's pad
    assert feed((t2 + 2 * MS, 2, -0.2, True)) == (t2 + 2 * MS,) * 2 and watch.held
    assert feed((t2 + 3 * MS, 2, -0.05, True)) == (0, t2 + 3 * MS) and not watch.held  # let go: an act


def test_a_held_stick_keeps_control_until_it_is_back_and_quiet() -> None:
    from engine.actions.outputs import NullOutput
    from engine.play.takeover import Takeover

    class Counted(NullOutput):
        releases = 0

        def release_all(self) -> int:
            self.releases += 1
            return 0

    script, out, said = _Script(), Counted(1, ["mouse_dx", "pad_lx"]), []
    tk = Takeover(script, out, [7], n_actions=1, handback_s=0.5, keep_events=True, say=said.append,
                  axes=["mouse_dx", "pad_lx"])
    state = np.array([1], np.uint8)
    t0 = 10**9
    script.axes = [(t0, 0, 40.0, 7, 1), (t0 + MS, 1, 1.0, 7, 1)]  # the engine moves and steers: its own
    assert tk.gate(state, t0 + 2 * MS) is state and out.releases == 0
    script.axes = [(t0 + 10 * MS, 1, 0.6, 3, 0)]  # the person's stick
    assert tk.gate(state, t0 + 11 * MS) is None and out.releases == 1
    assert tk.stats.active_since == t0 + 10 * MS and said[-1] == "takeover 1: the person has control (pad_lx)"
    assert tk.gate(state, t0 + 5000 * MS) is None  # held: no hand-back however long
    script.axes = [(t0 + 6000 * MS, 1, 0.0, 3, 0)]
    assert tk.gate(state, t0 + 6000 * MS + 499 * MS) is None
    assert tk.gate(state, t0 + 6500 * MS) is state and tk.stats.spans == [(t0 + 10 * MS, t0 + 6500 * MS)]
    t, _, v, dev, _ = tk.take_axis_events()
    assert t.tolist() == [t0 + 10 * MS, t0 + 6000 * MS] and v.tolist() == [np.float32(0.6), 0.0] and (dev == 3).all()
    # Motion in the same poll as a key press: the earlier one starts the takeover.
    script.keys = [(t0 + 7020 * MS, 0, 1, 3, 0)]
    script.axes = [(t0 + 7000 * MS, 0, 3.0, 3, 0), (t0 + 7010 * MS, 0, 3.0, 3, 0)]
    assert tk.gate(state, t0 + 7030 * MS) is None and tk.stats.active_since == t0 + 7010 * MS
    assert said[-1].endswith("(mouse_dx)") and out.releases == 2


def test_takeover_deadzone_flag() -> None:
    import pytest

    from engine.errors import EngineError
    from engine.play.takeover import DEFAULT_DEADZONE, parse_deadzone

    assert parse_deadzone(None, ["mouse_dx", "wheel"]) == {"mouse_dx": DEFAULT_DEADZONE["mouse_dx"], "wheel": 1.0}
    assert parse_deadzone("mouse_dx=8", ["mouse_dx", "wheel"]) == {"mouse_dx": 8.0, "wheel": 1.0}
    for text, message in (("mouse_dx=0", "must be a positive number"), ("mouse_dx", "wants AXIS=VALUE"),
                          ("pad_lx=0.2", "the model has no such axis (its axes: mouse_dx, wheel)"),
                          ("mouse_dx=x", "must be a positive number")):
        with pytest.raises(EngineError, match=re.escape(message)):
            parse_deadzone(text, ["mouse_dx", "wheel"])


def _axis_model(tmp_path: Path, axis: str = "mouse_dx") -> Path:
    """brighter_half read as one key and one axis: outputs [left, right] -> key `left`, mouse_dx = right / 0.001
    (scaled). On :func:`slightly_left` frames (130 | 122) left is 0.84 (held) and right 0.0096: ~9.6 counts
    a frame, a mouse the engine moves on every decision while it holds a key."""
    import json

    model = tmp_path / f"{axis}.tflite"
    model.write_bytes((MODELS / "brighter_half.tflite").read_bytes())
    side = json.loads((MODELS / "brighter_half.json").read_text())
    side.update(format_version=2, actions=["left"], thresholds=[0.5],
                axes=[{"name": axis, "encoding": "scaled", "scale": 0.001, "clip": 1.0}])
    model.with_suffix(".json").write_text(json.dumps(side))
    return model


def slightly_left() -> np.ndarray:
    img = np.full((H, W, 3), 122, np.uint8)
    img[:, : W // 2] = 130
    return img


class _Observed:
    """Every key and mouse_dx event on the display, with its source device, gathered as it comes."""

    def __init__(self, display: str) -> None:
        self.listener = X11Input(ACTIONS, [], display, axes=["mouse_dx"])
        self.keys: list = []
        self.axes: list = []
        self.listener.start()

    def poll(self) -> None:
        self.keys.append(self.listener.poll_sources()[0])
        self.axes.append(self.listener.poll_axes())

    def stop(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        self.poll()
        self.listener.stop()
        return (tuple(np.concatenate(x) for x in zip(*self.keys, strict=True)),
                tuple(np.concatenate(x) for x in zip(*self.axes, strict=True)))


def test_the_persons_mouse_takes_over_and_the_engines_own_motion_never_does(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.record.labeler import frame_axes_reference

    image_window(slightly_left(), title="takeover-mouse")
    core = _native.XTestActuator(xvfb.display, ACTIONS)
    core.warp(0, 540)  # room to move right for the whole run (raw motion is counted, not where it ends)
    engine_devices = list(core.devices)
    handback = 0.5
    seen = _Observed(xvfb.display)
    person = XTestOutput(ACTIONS, xvfb.display, watchdog=False, master="Person", axes=["mouse_dx"], fps=30.0)
    proc = _play_model(_axis_model(tmp_path), "--window", "takeover-mouse", "--handback", str(handback), "--record",
                       "--name", "tkm", "--data-dir", str(tmp_path))

    def engine_moved() -> float:
        seen.poll()
        _, _, v, dev, _ = (np.concatenate(x) for x in zip(*seen.axes, strict=True))
        return float(v[np.isin(dev, engine_devices)].sum())

    try:
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])  # the model holds left...
        assert wait_for(lambda: engine_moved() >= 60)  # ...and moves the mouse, ten times the dead zone
        assert server_keys(xvfb.display) == [True, False]  # its own motion took nothing over
        person.apply_axes(np.array([12], np.float32))  # the person moves: 3 counts every 8 ms
        assert wait_for(lambda: server_keys(xvfb.display) == [False, False])  # the engine let go of left
        for _ in range(8):
            time.sleep(1 / 30)
            person.apply_axes(np.array([-12], np.float32))
        assert person.wait_motion(2.0)
        assert wait_for(lambda: server_keys(xvfb.display) == [True, False])  # handed back: left again
        assert wait_for(lambda: engine_moved() >= 200)  # and moving again
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        person.close()
        (kt, ka, kv, kdev, _), (at, _, av, adev, _) = seen.stop()
    assert proc.returncode == 0, err
    assert "takeovers 1, person in control" in out
    assert "takeover 1: the person has control (mouse_dx)" in err

    # The observer's view (one process, one clock): after the person's first motion the engine releases left,
    # and from that release to its next press of left (the hand-back) it sends no motion at all.
    mine = np.isin(adev, person.devices)
    assert mine.any() and not np.isin(kdev, person.devices).any()
    first_person, last_person = int(at[mine][0]), int(at[mine][-1])
    eng_keys = [(int(t), int(v)) for t, a, v, d in zip(kt, ka, kv, kdev, strict=True)
                if d in engine_devices and a == 0 and t >= first_person]
    assert eng_keys[0][1] == 0 and eng_keys[1][1] == 1
    released, pressed = eng_keys[0][0], eng_keys[1][0]
    eng_motion = at[np.isin(adev, engine_devices)]
    assert eng_motion[eng_motion < first_person].size  # it was moving before...
    assert not ((eng_motion > released) & (eng_motion < pressed)).any()  # ...and not while the person drove
    assert (eng_motion > pressed).any()
    # Hand-back after --handback of quiet. With a motion axis each process stamps events from the X server's
    # time, at most 2 ms late and never early: the observer's stamp of the last move may be that much later.
    assert pressed - last_person >= handback * 1e9 - 2_000_000

    s = Session.open(tmp_path / "sessions" / "tkm")
    assert s.meta["status"] == "complete" and s.actions_names == ["left"] and s.axis_names == ["mouse_dx"]
    assert s.meta["takeover"]["model_axes"] == "model_axes.npy"
    ev = s.axis_events
    # The person's axis events, as the observer saw them (and none of the engine's).
    assert list(zip(ev["axis"].tolist(), ev["value"].tolist(), strict=True)) == [
        (0, float(v)) for v in av[mine]]
    # The takeover began at the first event whose net motion over the last 100 ms reached 4 counts.
    te, ve = ev["t_ns"], ev["value"].astype(np.float64)
    crossing = next(int(t) for t in te if abs(ve[(te > t - 100_000_000) & (te <= t)].sum()) >= 4)
    spans = s.meta["takeover"]["spans_ns"]
    assert len(spans) == 1 and spans[0][0] == crossing
    ts = np.asarray(s.timestamps)
    control = np.asarray(s.control)
    np.testing.assert_array_equal(control, ((ts >= spans[0][0]) & (ts < spans[0][1])).astype(np.uint8))
    assert control.sum() > 0 and control[0] == 0
    # The person's axes per frame, framed as engine-record frames them; they pressed no key.
    np.testing.assert_array_equal(s.axes, frame_axes_reference(ts, te, ev["axis"], ev["value"], ["mouse_dx"],
                                                               np.iinfo(np.int64).min))
    assert s.axes.sum() == float(av[mine].sum()) == 12 - 8 * 12 and not s.actions.any()
    # The model proposed left and ~9.6 counts on every frame it decided on, while the person drove too.
    assert (np.asarray(s.model_actions) == 1).all()
    proposed = np.asarray(s.model_axes)[:, 0]
    decided = proposed != 0  # a frame the loop skipped proposes no motion
    assert decided.mean() > 0.5 and np.allclose(proposed[decided], 9.59, atol=0.05)
    assert (proposed[control == 1] != 0).any()


def _play_model(model: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.play", "--countdown", "0", "--model", str(model),
                             "--takeover", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def test_bad_axis_takeover_flags_are_one_line(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image_window(slightly_left(), title="takeover-axis-flags")
    for model, flags, message in (
            ("pad_lx", ["--takeover", "--dry-run"], "--takeover of a pad model (pad_lx) needs the person's pad: "
                                                     "pass --input evdev"),
            ("mouse_dx", ["--takeover-deadzone", "mouse_dx=8"], "--takeover-deadzone says when the person takes "
                                                                  "over: it needs --takeover"),
            ("mouse_dx", ["--takeover", "--takeover-deadzone", "mouse_dx=-1"], "must be a positive number")):
        done = subprocess.run([sys.executable, "-m", "engine.cli.play", "--countdown", "0", "--model",
                               str(_axis_model(tmp_path, model)), "--window", "takeover-axis-flags", *flags],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("engine-play: ")
    assert server_keys(xvfb.display) == [False, False]
