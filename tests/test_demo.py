"""engine-demo on a real Xvfb: the window, the frame stamp read back from real grabs, real XTest keys
reaching the game, the scripted driver, clean exits. Plus unit tests of the stamp, the log and the
driver's policy. No timing assertions: waits have generous timeouts and only guard against hangs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import HELPERS, scene
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import _native
from engine.cli.demo import main as demo_main
from engine.demo import pattern
from engine.demo.driver import Driver, simulate
from engine.demo.game import IND_OFF, IND_ON, WINDOW_TITLE, indicator_rects
from engine.demo.log import COLUMNS, LogWriter, load_log, read_meta
from engine.demo.process import DemoProcess
from engine.demo.sim import ACTIONS, LEFT, RIGHT, UP, Sim
from engine.xvfb import Xvfb

W, H = 320, 240
TIMEOUT = 20.0  # a guard against hangs, never a performance claim


def bgra_of(rgb: np.ndarray) -> np.ndarray:
    out = np.zeros((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = rgb[..., ::-1]
    return out


# ---------------------------------------------------------------- frame stamp


def stamped(number: int, seed: int = 0) -> np.ndarray:
    img = scene(H, W, seed=seed)
    pattern.draw(img, number)
    return img


@settings(max_examples=150, deadline=None)
@given(number=st.integers(0, pattern.MODULUS - 1), width=st.integers(80, 320), color=st.sampled_from(["gray", "rgb"]))
def test_stamp_survives_gray_and_area_resize_at_any_scale_1_to_4(number: int, width: int, color: str) -> None:
    scale = W / width
    height = max(1, round(H / scale))
    frame = _native.convert_resize(bgra_of(stamped(number, seed=number % 7)), width, height, color)
    assert pattern.decode(frame, scale) == number


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_stamp_reads_on_rgb_bgra_and_gray_at_integer_scales(scale: int) -> None:
    img = stamped(0xABCDEF)
    bgra = bgra_of(img)
    assert pattern.decode(img, 1) == 0xABCDEF
    assert pattern.decode(bgra, 1) == 0xABCDEF
    small = _native.convert_resize(bgra, W // scale, H // scale, "gray")
    assert pattern.decode(small, scale) == 0xABCDEF
    # A plain NumPy box filter (the area resize's definition for integer factors) as an independent oracle.
    h, w = H // scale, W // scale
    box = img[: h * scale, : w * scale].reshape(h, scale, w, scale, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    assert pattern.decode(box, scale) == 0xABCDEF


def test_encode_layout_matches_the_documented_geometry() -> None:
    bits = pattern.encode(0x800001)
    assert bits.shape == (pattern.ROWS, pattern.COLS) == (2, 18)
    assert list(bits[0, :3]) == [1, 0, 1]  # marker 1 0, then data bit 23
    assert list(bits[1, :2]) == [0, 1]  # marker 0 1
    assert bits[1, 9] == 1  # data bit 0 is the last data block
    crc = int("".join(map(str, bits[1, 10:])), 2)
    assert crc == pattern.crc8(bytes([0x80, 0x00, 0x01]))
    img = np.zeros((H, W), np.uint8)
    pattern.draw(img, 0x800001)
    assert img[:16, :144].any() and not img[16:, :].any() and not img[:, 144:].any()
    assert set(np.unique(img)) == {0, 255}
    assert pattern.crc8(b"123456789") == 0xF4  # the CRC-8/SMBUS check value


def test_crc_detects_every_error_of_up_to_three_bits() -> None:
    # The code is linear (init 0), so an error pattern goes unnoticed iff it is itself a codeword.
    for k in (1, 2, 3):
        for positions in itertools.combinations(range(32), k):
            e = sum(1 << p for p in positions)
            assert pattern.crc8((e >> 8).to_bytes(3, "big")) != e & 0xFF


@pytest.mark.parametrize("number", [0, 1, 0x5A5A5A, pattern.MODULUS - 1])
def test_any_one_or_two_damaged_blocks_read_as_none(number: int) -> None:
    img = np.zeros((pattern.HEIGHT, pattern.WIDTH), np.uint8)
    pattern.draw(img, number)
    cells = [(r, c) for r in range(pattern.ROWS) for c in range(pattern.COLS)]
    for k in (1, 2):
        for damaged in itertools.combinations(cells, k):
            bad = img.copy()
            for r, c in damaged:
                block = bad[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]
                block[...] = 255 - block
            assert pattern.decode(bad, 1) is None


def test_unreadable_frames_read_as_none() -> None:
    img = stamped(12345)
    assert pattern.decode(img, 1) == 12345
    grey = img.copy()
    grey[4, 4 + 8 * 5] = 128  # one block centre neither black nor white
    assert pattern.decode(grey, 1) is None
    for seed in range(20):
        assert pattern.decode(scene(H, W, seed=seed), 1) is None  # no stamp
    assert pattern.decode(np.zeros((H, W), np.uint8), 1) is None
    assert pattern.decode(np.full((H, W), 255, np.uint8), 1) is None
    assert pattern.decode(img[:10, :100], 1) is None  # too small to hold a stamp
    with pytest.raises(ValueError):
        pattern.decode(img.astype(np.float32), 1)
    with pytest.raises(ValueError):
        pattern.decode(img, 0)
    with pytest.raises(ValueError):
        pattern.encode(pattern.MODULUS)


# ---------------------------------------------------------------- simulation, driver policy, log


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_keeps_the_car_on_the_road_with_holds_boosts_and_taps(seed: int) -> None:
    stats = simulate(seed, 60.0)
    assert stats["on_road"] >= 0.9
    assert stats["taps"] > 0
    assert stats["left"] > 0.02 and stats["right"] > 0.02 and stats["up"] > 0.02
    assert simulate(seed, 60.0) == stats  # deterministic from the seed


def test_sim_steps_are_pure_and_keys_move_the_car() -> None:
    a, b = Sim(5), Sim(5)
    for keys in [RIGHT, RIGHT, LEFT | UP, 0, UP]:
        a.step(keys)
        b.step(keys)
    assert (a.car_x, a.u) == (b.car_x, b.u)
    s = Sim(5)
    x0 = s.car_x
    s.step(RIGHT)
    assert s.car_x > x0
    x1 = s.car_x
    s.step(0, pressed=LEFT)  # a tap: pressed and released before the poll
    assert s.car_x < x1
    fast, slow = Sim(1), Sim(1)
    fast.step(UP)
    slow.step(0)
    assert fast.u > slow.u
    assert Sim(1).road != Sim(2).road


def test_gusts_blow_whatever_the_keys_and_the_driver_comes_back_from_far_off_the_line() -> None:
    windy_a, windy_b, calm = Sim(4, gusts=True), Sim(4, gusts=True), Sim(4)
    gusts_a, gusts_b = [], []
    for _ in range(3600):
        windy_a.step(RIGHT)
        windy_b.step(LEFT | UP)
        calm.step(0)
        gusts_a.append(windy_a.gust)
        gusts_b.append(windy_b.gust)
        assert calm.gust == 0.0
    assert gusts_a == gusts_b  # drawn from the seed and the step count, never from the keys
    g = np.array(gusts_a)
    assert (g > 0).any() and (g < 0).any() and 0.02 < (g != 0).mean() < 0.3
    assert windy_a.car_x != calm.car_x or windy_a.u != calm.u
    for seed in (0, 1, 2):
        still, windy = simulate(seed, 60.0), simulate(seed, 60.0, gusts=True)
        assert still["max_error"] < 15 < 40 < windy["max_error"]  # recoveries from well off the line
        assert windy["on_road"] >= 0.95
        assert simulate(seed, 60.0, gusts=True) == windy


def test_driver_taps_only_free_steering_keys() -> None:
    sim, drv = Sim(3), Driver(3)
    for _ in range(3600):
        d = drv.decide(sim)
        assert d.tap in (0, LEFT, RIGHT)
        assert not d.tap & d.held and not (d.tap and d.held & (LEFT | RIGHT))
        sim.step(d.held, d.tap)


def test_log_round_trip_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = LogWriter(path, {"seed": 3, "tick_hz": 60.0}, flush_every=2)
    for i in range(5):
        log.write(i, 1000 + i, i & 7, 1, 10.5 + i, 11.25, i % 2 == 0, 2, 1 if i == 3 else 0, 2_000_000 if i == 3 else 0)
    log.close()
    log.close()
    rows = load_log(path)
    assert rows.dtype.names == COLUMNS
    assert list(rows["frame"]) == [0, 1, 2, 3, 4] and list(rows["t_ns"]) == [1000, 1001, 1002, 1003, 1004]
    assert list(rows["on_road"]) == [True, False, True, False, True]
    assert rows["car_x"][4] == np.float32(14.5) and rows["tap_ns"][3] == 2_000_000
    assert read_meta(path) == {"seed": "3", "tick_hz": "60.0"}
    with open(path, "a") as f:
        f.write("5,1005,0,0,1")  # what a kill -9 in the middle of a write leaves
    assert len(load_log(path)) == 5


# ---------------------------------------------------------------- the real game on Xvfb


class Game(DemoProcess):
    """engine-demo in a subprocess on the session's Xvfb."""

    def __init__(self, display: str, *args: str) -> None:
        super().__init__(*args, display=display, timeout=TIMEOUT)


@pytest.fixture
def game(xvfb: Xvfb) -> Iterator[Callable[..., Game]]:
    games: list[Game] = []

    def start(*args: str) -> Game:
        g = Game(xvfb.display, *args)
        games.append(g)
        return g

    yield start
    for g in games:
        g.stop()


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def stamp_of(src: engine.CaptureSource) -> int | None:
    return pattern.decode(src.grab_frame(), 1)


def test_window_is_found_by_title_and_stamps_decode_from_real_grabs(game: Callable[..., Game]) -> None:
    g = game("--seed", "4")
    src = engine.open_source(window=WINDOW_TITLE)
    assert src.width == W and src.height == H
    assert src.window_id == g.window_id
    seen: list[int] = []
    for _ in range(6):
        bgra = np.array(src.grab())
        numbers = {s: pattern.decode(_native.convert_resize(bgra, W // s, H // s, "gray"), s) for s in (1, 2, 4)}
        assert None not in numbers.values(), numbers
        assert len(set(numbers.values())) == 1, numbers  # one grab, one frame number at every scale
        seen.append(numbers[1])  # type: ignore[arg-type]
        time.sleep(0.05)
        wait_for(lambda: stamp_of(src) != seen[-1], "the game to draw a new frame")
    assert all(b > a for a, b in itertools.pairwise(seen)), seen
    assert g.signal(signal.SIGTERM) == 0


def indicator_state(src: engine.CaptureSource) -> dict[str, bool | None]:
    """For each key box: True if lit, False if unlit, None if neither colour (should not happen)."""
    rgb = src.grab_frame(color="rgb")
    out: dict[str, bool | None] = {}
    for name, (x, y, w, h) in indicator_rects((W, H)).items():
        px = tuple(rgb[y + h // 2, x + w // 2])
        out[name] = True if px == IND_ON else False if px == IND_OFF else None
    return out


def test_xtest_keys_reach_the_game_log_and_light_the_indicators(game: Callable[..., Game], xvfb: Xvfb,
                                                                 tmp_path: Path) -> None:
    log_path = tmp_path / "keys.csv"
    g = game("--log", str(log_path))
    src = engine.open_source(window=WINDOW_TITLE)
    assert indicator_state(src) == {"left": False, "up": False, "right": False}
    act = _native.XTestActuator(xvfb.display, list(ACTIONS))
    times: dict[str, tuple[int, int, int, int]] = {}
    for i, name in enumerate(ACTIONS):
        state = np.zeros(len(ACTIONS), np.uint8)
        state[i] = 1
        t_press0 = time.monotonic_ns()
        assert act.apply(state) == 1
        t_press1 = time.monotonic_ns()
        wait_for(lambda n=name: indicator_state(src) == {k: k == n for k in ACTIONS}, f"{name} to light up")
        t_release0 = time.monotonic_ns()
        assert act.apply(np.zeros(len(ACTIONS), np.uint8)) == 1
        t_release1 = time.monotonic_ns()
        wait_for(lambda: indicator_state(src) == dict.fromkeys(ACTIONS, False), f"{name} to go dark")
        times[name] = (t_press0, t_press1, t_release0, t_release1)
    assert g.signal(signal.SIGTERM) == 0
    rows = load_log(log_path)
    t = rows["t_ns"]
    for i, name in enumerate(ACTIONS):
        t_press0, _, t_release0, t_release1 = times[name]
        bit = (rows["keys"] >> i) & 1
        assert bit.any(), name
        # Frames presented before the press was sent never show it; from the first frame that shows it
        # until the release was sent, every frame does; after the release it goes and stays gone.
        first_on = t[bit == 1].min()
        assert first_on > t_press0, f"{name} showed up in a frame presented before it was sent"
        assert bit[(t >= first_on) & (t < t_release0)].all(), name
        after = bit[t > t_release1]
        assert after.size and not after[-1] and np.all(np.diff(after.astype(np.int8)) <= 0), name
        assert ((rows["pressed"] >> i) & 1).sum() == 1  # one press event, seen with the first held frame
        assert (rows["pressed"][t == first_on] >> i) & 1
    assert not rows["keys"].any() or not rows["keys"][-1]
    assert act.system_held() == [False, False, False]


@pytest.mark.parametrize("gusts", [False, True])
def test_autodrive_stays_on_the_road_and_taps(game: Callable[..., Game], tmp_path: Path, gusts: bool) -> None:
    log_path = tmp_path / "drive.csv"
    g = game("--autodrive", "--duration", "4", "--seed", "7", "--log", str(log_path), *(["--gusts"] if gusts else []))
    assert g.wait() == 0
    assert "on road" in g.stdout and "(duration)" in g.stdout
    rows = load_log(log_path)
    assert len(rows) > 60
    assert rows["on_road"].mean() >= 0.9
    tapped = rows["tap"] != 0
    assert tapped.any() and (rows["tap_ns"][tapped] > 0).all()
    assert ((rows["pressed"] & ~rows["keys"]) != 0).any(), "the game never saw a tap through X"
    assert ((rows["keys"] & (LEFT | RIGHT)) != 0).any(), "no steering was held"
    assert np.all(np.diff(rows["frame"]) >= 1) and np.all(np.diff(rows["t_ns"]) > 0)
    assert read_meta(log_path)["gusts"] == str(int(gusts))
    # The game is a pure function of the seed and the keys it saw: replaying them reproduces every frame.
    sim = Sim(7, gusts=gusts)
    replay = []
    for row in rows:
        sim.step(int(row["keys"]), int(row["pressed"]))
        replay.append((sim.car_x, sim.road_x))
    np.testing.assert_allclose(np.array(replay), np.stack([rows["car_x"], rows["road_x"]], axis=1), atol=0.01)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_leaves_a_complete_log_and_no_key_held(game: Callable[..., Game], xvfb: Xvfb, tmp_path: Path,
                                                        sig: int) -> None:
    log_path = tmp_path / "signal.csv"
    g = game("--autodrive", "--seed", "2", "--log", str(log_path))
    src = engine.open_source(window=WINDOW_TITLE)
    probe = _native.XTestActuator(xvfb.display, list(ACTIONS))
    # Stop it while the driver holds a key, so the release on exit is what is being tested.
    wait_for(lambda: any(probe.system_held()), "the driver to hold a key")
    last_seen = stamp_of(src)
    assert g.signal(sig) == 0
    assert signal.Signals(sig).name in g.stdout
    assert probe.system_held() == [False, False, False]
    assert "watchdog" not in g.stderr  # the game released its keys itself
    assert log_path.read_text().endswith("\n")
    rows = load_log(log_path)
    assert last_seen is not None and rows["frame"][-1] >= last_seen
    assert np.all(np.diff(rows["frame"]) >= 1)
    assert rows["frame"][0] == 0


def test_a_kill_9_leaves_no_key_held(game: Callable[..., Game], xvfb: Xvfb) -> None:
    g = game("--autodrive", "--seed", "5")
    probe = _native.XTestActuator(xvfb.display, list(ACTIONS))
    wait_for(lambda: any(probe.system_held()), "the driver to hold a key")
    # SIGKILL skips every handler and finally; the watchdog child releases what is still down. wait()
    # returns once it is done: the watchdog holds the game's stdout until it exits.
    assert g.signal(signal.SIGKILL) == -signal.SIGKILL
    assert probe.system_held() == [False, False, False]


def test_the_window_manager_close_request_quits(game: Callable[..., Game], xvfb: Xvfb) -> None:
    g = game("--autodrive")
    close = subprocess.run([sys.executable, str(HELPERS / "demo_close.py"), xvfb.display, str(g.window_id)],
                           timeout=TIMEOUT)
    assert close.returncode == 0
    assert g.wait() == 0
    assert "(window closed)" in g.stdout


def test_escape_quits(game: Callable[..., Game], xvfb: Xvfb) -> None:
    g = game()
    act = _native.XTestActuator(xvfb.display, ["escape"])
    act.apply(np.ones(1, np.uint8))
    act.apply(np.zeros(1, np.uint8))
    assert g.wait() == 0
    assert "(escape)" in g.stdout


def test_stopped_keys_refuse_to_press(xvfb: Xvfb) -> None:
    from engine.actions.outputs import XTestOutput
    from engine.demo.driver import Decision, DriverKeys

    keys = DriverKeys(XTestOutput(list(ACTIONS), xvfb.display))
    try:
        keys.send(Decision(held=LEFT | UP))
        assert keys.system_held() == LEFT | UP
        keys.stop()
        assert keys.system_held() == 0
        assert keys.send(Decision(held=RIGHT, tap=LEFT)) == 0
        assert keys.system_held() == 0
        keys.stop()
    finally:
        keys.close()


@pytest.mark.parametrize("argv", [
    ["--bogus"],
    ["--size", "big"],
    ["--size", "10x10"],
    ["--tick-hz", "0"],
    ["--tick-hz", "5000"],
    ["--seed", "-1"],
    ["--duration", "soon"],
    ["--pos", "1"],
])
def test_bad_flags_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = demo_main(argv)
    except SystemExit as e:
        code = e.code  # type: ignore[assignment]
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("engine-demo: "), err


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.demo", *args], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def test_no_display_or_a_dead_one_is_one_line_and_exit_2(xvfb: Xvfb, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = run_cli(env=env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "DISPLAY" in r.stderr and "Xvfb" in r.stderr
    r = run_cli("--display", ":987", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and ":987" in r.stderr, r.stderr
    r = run_cli("--log", str(tmp_path / "missing" / "log.csv"), env=dict(os.environ, DISPLAY=xvfb.display))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "log" in r.stderr, r.stderr


def test_the_mouse_driver_stays_on_the_road_in_simulation() -> None:
    """The mouse driver's policy, without X (its motion applied on the next tick in whole counts, as the
    output sends it): what engine-demo --mouse --autodrive plays."""
    from engine.demo.driver import simulate_mouse

    for seed in range(4):
        assert simulate_mouse(seed, 20.0) >= 0.97
        assert simulate_mouse(seed, 20.0, gusts=True) >= 0.95
