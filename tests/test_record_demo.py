"""engine-record against the demo game, played by its scripted XTest driver (real X server, real window,
real keys): the recorded frames are the game's frames and the labels are the keys the game saw."""

from __future__ import annotations

import numpy as np
import pytest
from test_demo import Game

from engine.demo.log import load_log
from engine.demo.pattern import decode
from engine.record import RecordConfig, Recorder
from engine.session import Session

ACTIONS = ["left", "right", "up"]  # the demo log's key bits, in order
FPS = 30.0


def bits(row_mask: int) -> np.ndarray:
    return np.array([(row_mask >> k) & 1 for k in range(3)], np.uint8)


@pytest.fixture(scope="module")
def recording(xvfb, tmp_path_factory) -> tuple[Session, np.ndarray, object]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("demo-record")
    log = tmp / "game.csv"
    game = Game(xvfb.display, "--autodrive", "--seed", "5", "--log", str(log))
    try:
        cfg = RecordConfig(fps=FPS, window="engine demo", actions=ACTIONS, data_dir=tmp, countdown=0, duration=10.0,
                           game="demo")
        summary = Recorder(cfg).run(install_signals=False)
    finally:
        game.stop()
    return Session.open(summary.path), load_log(log), summary


def test_every_recorded_frame_is_the_game_frame_on_screen_at_its_capture_instant(recording) -> None:  # type: ignore[no-untyped-def]
    ses, glog, summary = recording
    assert ses.meta["frame_shape"] == [240, 320]  # 320x240 window, auto size keeps it
    numbers = np.array([decode(np.asarray(f), 1.0) for f in ses.frames], dtype=object)
    assert all(n is not None for n in numbers), "a recorded frame without a readable stamp"
    g = numbers.astype(np.int64)
    assert np.all(np.diff(g) >= 0)
    t = ses.timestamps[:]
    row = {f: i for i, f in enumerate(glog["frame"].tolist())}
    # Bounds that hold however processes are scheduled: frame i is stamped t[i] just before its grab is
    # sent, and grab i completes before grab i+1 is stamped. The game reads its keys for frame g
    # (poll_ns) before drawing it, and stamps t_ns after its flip of g has reached the server.
    for i, gi in enumerate(g.tolist()):
        if gi + 1 in row:  # frame gi+1 reached the server after our grab, which was sent after t[i]
            assert glog["t_ns"][row[gi + 1]] > t[i], (i, gi)
        if i + 1 < len(t):  # frame gi was drawn before our grab ended, before t[i+1]
            assert glog["poll_ns"][row[gi]] < t[i + 1], (i, gi)
    # Accounting: every tick of the schedule is a frame or a counted drop.
    period = 1e9 / FPS
    ticks = round((t[-1] - t[0]) / period) + 1
    assert abs(ticks - (len(t) + summary.dropped)) <= 1
    gaps = np.diff(t) / period
    print(f"frames {len(t)}, dropped {summary.dropped}, interval p50 {np.median(gaps):.3f} "
          f"min {gaps.min():.3f} max {gaps.max():.3f} periods")


def test_labels_are_the_keys_the_game_saw(recording) -> None:  # type: ignore[no-untyped-def]
    ses, glog, _ = recording
    row = {f: i for i, f in enumerate(glog["frame"].tolist())}
    g = np.array([decode(np.asarray(f), 1.0) for f in ses.frames], np.int64)
    t = ses.timestamps[:]
    ev = ses.events
    # Held at each capture instant, from the recorder's own event log.
    held = np.zeros((len(t), 3), np.uint8)
    for k in range(3):
        mine = ev[ev["action"] == k]
        idx = np.searchsorted(mine["t_ns"], t, side="right") - 1
        held[:, k] = np.where(idx >= 0, mine["value"][np.maximum(idx, 0)], 0)
    exact = 0
    for i, gi in enumerate(g.tolist()):
        near = [row[f] for f in (gi - 1, gi, gi + 1) if f in row]
        keys = [bits(int(glog["keys"][r])) for r in near]
        taps = [bits(int(glog["pressed"][r])) for r in near]
        # The recorder and the game each stamp or poll X events as they arrive. Per key, the state the
        # recorder held at the grab is one the game polled around that frame (one frame of tolerance),
        # or a tap the game saw there (a grab can fall inside a 2 ms tap).
        for k in range(3):
            assert held[i, k] in {int(b[k]) for b in keys} or (held[i, k] == 1 and any(tp[k] for tp in taps)), \
                (i, gi, k, held[i], keys, taps)
        exact += gi in row and gi + 1 in row and any(
            np.array_equal(held[i], bits(int(glog["keys"][row[f]]))) for f in (gi, gi + 1))
    print(f"held state equal to the game's poll of frame g or g+1 on {exact} of {len(t)} frames")
    # Every event was sent by the driver after a frame it had presented, never before.
    first_shown = glog["t_ns"][0]
    assert (ev["t_ns"] > first_shown).all()
    # Labels are that state plus the presses since the previous frame (the tap rule).
    from engine.record.labeler import label_reference

    assert np.array_equal(ses.actions[:], label_reference(t, ev["t_ns"], ev["action"], ev["value"], 3))
    assert ses.actions[:].any(axis=0).all()  # every key was used in this run


def test_taps_shorter_than_a_frame_are_in_the_labels(recording) -> None:  # type: ignore[no-untyped-def]
    ses, glog, _ = recording
    ev = ses.events
    t = ses.timestamps[:]
    taps = 0
    for k in range(3):
        press = ev["t_ns"][(ev["action"] == k) & (ev["value"] == 1)]
        release = ev["t_ns"][(ev["action"] == k) & (ev["value"] == 0)]
        for p in press:
            after = release[release > p]
            if len(after) and after[0] - p < 1e9 / FPS and t[0] < p <= t[-1]:
                taps += 1
                frame = np.searchsorted(t, p)  # the first frame captured after the press
                assert ses.actions[frame, k] == 1
    driver_taps = glog["tap"][(glog["t_ns"] > t[0]) & (glog["t_ns"] < t[-1] - 50_000_000)]
    assert np.count_nonzero(driver_taps) >= 3
    assert taps >= np.count_nonzero(driver_taps) - 1  # the last one may straddle the end of the recording


def test_the_offscreen_game_draws_what_the_window_showed(recording) -> None:  # type: ignore[no-untyped-def]
    # engine.demo.dagger chooses between models by simulated drives (engine.demo.models.rollout): the game's
    # simulation replayed with the keys the game logged, drawn off screen, must give every recorded frame.
    from engine import _native
    from engine.demo.models.rollout import OffscreenGame

    ses, glog, _ = recording
    g = np.array([decode(np.asarray(f), 1.0) for f in ses.frames], np.int64)
    want = {int(gi): i for i, gi in enumerate(g.tolist())}  # game frame -> a recorded frame showing it
    game = OffscreenGame(5)
    checked = 0
    for r in range(len(glog)):
        game.sim.step(int(glog["keys"][r]), int(glog["pressed"][r]))
        assert abs(game.sim.car_x - float(glog["car_x"][r])) <= 0.006, r  # the game state (the log keeps 2 decimals)
        i = want.get(int(glog["frame"][r]))
        if i is None:
            continue
        lit = int(glog["keys"][r]) | int(glog["pressed"][r])
        drawn = _native.convert_resize(game.frame(int(glog["frame"][r]), lit), 320, 240, "gray")
        assert np.array_equal(drawn, np.asarray(ses.frames[i])), (i, int(glog["frame"][r]))
        checked += 1
    assert checked == len(want)
