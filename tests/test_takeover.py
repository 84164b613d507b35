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
