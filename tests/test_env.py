"""engine.env on a real Xvfb with the real demo game: Gymnasium's checker, episodes, timing guarantees, the
demo model scored against engine-play on the same road, and every key released on every exit.

Scores come from the game's own log (engine.demo.models.drive.score: the simulation's on-road flag per
presented frame, on the same monotonic clock as the env's info), never from what the env reports.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

gymnasium = pytest.importorskip("gymnasium", reason="gymnasium is not installed (pip install engine[env])")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from engine import _native  # noqa: E402
from engine.actions.outputs import NullOutput  # noqa: E402
from engine.demo.game import WINDOW_TITLE  # noqa: E402
from engine.demo.models import DEMO_MODEL  # noqa: E402
from engine.demo.models.drive import DemoGame, drive_model, score  # noqa: E402
from engine.demo.sim import ACTIONS  # noqa: E402
from engine.env import DEMO_RESET, ENV_ID, FrameSpec, GameEnv, TFLitePolicy, demo_done, demo_reward, on_road  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.play import Model  # noqa: E402
from engine.play.loop import Player  # noqa: E402
from engine.sidecar import ModelSidecar  # noqa: E402

MODELS = Path(__file__).parent / "fixtures" / "models"
ROAD = 5  # not trained on; with no keys the car leaves it within 1.5 s
KEYS = list(ACTIONS)


def server_keys(display: str, keys: list[str] = KEYS) -> list[bool]:
    """What the X server believes is held (XQueryKeymap, a connection of its own)."""
    return list(_native.XTestActuator(display, keys).system_held())




@pytest.fixture
def game(xvfb, tmp_path: Path) -> Iterator[DemoGame]:  # type: ignore[no-untyped-def]
    with DemoGame(tmp_path / "game.csv", ROAD) as g:
        yield g


def truth_at(log: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """The game's on-road flag of the frame on screen at each instant (the last one presented before it)."""
    rows = np.searchsorted(log["t_ns"], t_ns) - 1
    assert (rows >= 0).all()
    return log["on_road"][rows].astype(bool)


@pytest.mark.parametrize("history", [0, 3])
def test_gymnasium_env_checker_passes_on_the_demo_game(game, history: int) -> None:  # type: ignore[no-untyped-def]
    sidecar = ModelSidecar.load(DEMO_MODEL.with_suffix(".json"))
    env = gymnasium.make(ENV_ID, window=WINDOW_TITLE, sidecar=sidecar, history=history, reward=demo_reward,
                         done=demo_done, max_steps=100)
    try:
        check_env(env.unwrapped)  # warnings are errors in this suite: it must pass without any
        obs, _ = env.reset()
        frames = obs["frames"] if history else obs
        assert frames.shape == (60, 80, 12) and frames.dtype == np.uint8
        if history:
            assert obs["actions"].shape == (history, 3)
    finally:
        env.close()
    assert server_keys(os.environ["DISPLAY"]) == [False] * 3


def test_random_agent_runs_episodes(game) -> None:  # type: ignore[no-untyped-def]
    # Episodes end off the road (demo_done) or after 30 steps; each reset restarts the road (R, DEMO_RESET).
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), reward=demo_reward, done=demo_done, max_steps=30,
                  reset_sequence=DEMO_RESET)
    env.action_space.seed(0)
    episodes = []
    try:
        obs, info = env.reset(seed=0)
        steps = total = 0
        while len(episodes) < 3:
            assert steps or (on_road(obs[-1]) and info["keys_held"] == () and info["episode_step"] == 0)
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert obs in env.observation_space and reward in (0.0, 1.0)
            assert terminated == (reward == 0.0)  # demo_done ends the episode exactly when off the road
            steps += 1
            total += reward
            if terminated or truncated:
                episodes.append((steps, total, terminated))
                assert info["episode_step"] == steps <= 30
                obs, info = env.reset()
                steps = total = 0
    finally:
        env.close()
    print(f"random agent episodes (steps, reward, off road): {episodes}")
    assert all(steps > 1 for steps, _, _ in episodes)  # each started on the road again
    assert server_keys(os.environ["DISPLAY"]) == [False] * 3


def test_pixel_reward_agrees_with_the_game(game) -> None:  # type: ignore[no-untyped-def]
    # Steer off the road to the right, then back across it to the left: frames on and off the road.
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), reward=demo_reward)
    rows = []
    try:
        env.reset()
        for i in range(180):
            _, reward, _, _, info = env.step([0, 1, 0] if i < 60 else [1, 0, 0])
            rows.append((info["t_capture_ns"], reward))
    finally:
        env.close()
    t, pixels = np.array(rows).T
    truth = truth_at(game.stop(), t.astype(np.int64))
    agree = float(((pixels == 1.0) == truth).mean())
    print(f"on-road from pixels agrees with the game on {agree:.1%} of {len(t)} frames "
          f"(game: on the road {truth.mean():.0%})")
    assert truth.any() and not truth.all()
    assert agree >= 0.9


def test_step_timing_guarantees(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), fps=30, output="none")
    period = env.period_ns
    infos = []
    try:
        _, first = env.reset()
        for i in range(30):
            if i >= 15:  # a slow agent: three periods between steps
                time.sleep(3 * period / 1e9)
            infos.append(env.step([0, 0, 0])[4])
    finally:
        env.close()
    frame = np.array([first["frame"]] + [i["frame"] for i in infos])
    sent = np.array([i["t_sent_ns"] for i in infos])
    cap = np.array([i["t_capture_ns"] for i in infos])
    assert (cap >= sent).all()  # every observation was captured after its keys were sent
    assert (np.diff(frame) >= 1).all()  # never the same frame twice, never an old one
    assert [i["skipped"] for i in infos] == list(np.diff(frame) - 1)
    assert all((i["lateness_ns"] > 0) == i["overran"] for i in infos)
    assert infos[-1]["overruns"] == sum(i["overran"] for i in infos)
    slow = infos[15:]
    # Keys sent three periods after the previous observation missed the next tick: late, counted, and the
    # ticks in between skipped, not delivered in a burst.
    assert all(i["overran"] and i["lateness_ns"] >= period for i in slow)
    assert any(i["skipped"] >= 1 for i in slow)  # (a starved capture thread may itself have dropped some ticks)
    assert all(i["frame_age_ns"] >= 0 for i in infos)


def test_demo_model_drives_as_in_engine_play_and_decides_the_same(xvfb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seconds = 6.0  # was 10: road 5 bends within the first seconds (no keys leaves it in 1.5 s)
    policy = TFLitePolicy(DEMO_MODEL)
    observations, decisions, sent = [], [], []
    with DemoGame(tmp_path / "env-game.csv", ROAD) as g:
        env = policy.make_env(window=WINDOW_TITLE, reward=demo_reward)
        try:
            obs, _ = env.reset()
            policy.reset()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                action = policy(obs)
                observations.append(obs)
                decisions.append(action)
                obs, _, _, _, info = env.step(action)
                sent.append(info["t_sent_ns"])
        finally:
            env.close()
        log = g.stop()
    env_on, frames, _, _ = score(log, sent[0], sent[-1])
    play = drive_model(DEMO_MODEL, seconds, ROAD, tmp_path)
    print(f"demo model in the env: on the road {env_on:.1%} of {frames} game frames, {len(sent)} steps; "
          f"in engine-play: {play.on_road:.1%} of {play.frames}")
    assert abs(env_on - play.on_road) <= 0.05

    # The same windows through engine-play's own loop (Player.replay: the native feed from a frame ring
    # through the model's table, invoke, Decoder): each observation's frames pushed in order, 3 ms apart.
    spec = policy.spec
    obs_arr = np.array(observations[:200])
    n, h, w = len(obs_arr), spec.height, spec.width
    frames_in = obs_arr.reshape(n, h, w, spec.window, 3).transpose(0, 3, 1, 2, 4).reshape(n * spec.window, h, w, 3)
    stamps = np.arange(n * spec.window, dtype=np.int64) * 3_000_000
    player = Player(policy.model, NullOutput(3), kill_key=None, out=io.StringIO())
    player.replay(np.ascontiguousarray(frames_in), stamps, install_signals=False)
    tel = player.telemetry.arrays()
    ends = tel["tick"] % spec.window == spec.window - 1  # windows that are exactly one observation
    which = tel["tick"][ends] // spec.window
    assert len(which) >= n // 2  # the replay may skip windows on a loaded machine; most are decided
    same = (tel["decision"][ends] == np.array(decisions)[which]).all(axis=1)
    print(f"engine-play decided {len(which)} of the {n} observations; same keys on {same.mean():.1%}")
    assert same.all()


@pytest.mark.parametrize(("name", "overrides"), [
    ("brighter_half", {}), ("brighter_half_uint8", {}), ("brighter_half_int8", {}), ("combo_rgb", {}),
    ("history", {}), ("brighter_half", {"skip": 2, "hysteresis": 0.1}),
])
def test_policy_decides_as_engine_plays_feed_on_every_model_kind(name: str, overrides: dict) -> None:
    # float32 / uint8 / int8 inputs, frames and channels layouts, gray and RGB, multihot and combo, a history
    # input, skip and hysteresis: engine-play's step (native feed from the ring through the model's table,
    # invoke, Decoder, history of the actions sent) against the policy on the env's observation of the same
    # ring (the native feed through the identity table).
    path = MODELS / f"{name}.tflite"
    play, policy = Model.load(path, overrides=overrides), TFLitePolicy(path, overrides=overrides)
    spec = play.spec
    fs = FrameSpec.from_sidecar(spec)
    ring = _native.LatestRing(fs.span, fs.frame_shape, 4)
    lut, decoder = play.input_lut(), play.decoder()
    history = np.zeros(play.history_shape, np.uint8) if play.history_shape else None
    identity = np.arange(256, dtype=np.uint8)
    rng = np.random.default_rng(1)
    decisions = []
    for i in range(80):
        frame = rng.integers(40, 80, fs.frame_shape, dtype=np.uint8)
        side = rng.integers(0, 3)  # left half bright, right half bright, or neither
        if side < 2:
            half = fs.width // 2
            frame[:, side * half:(side + 1) * half] += 150
        _native.push_frame(ring, frame, i, i)
        if i + 1 < fs.span:
            continue
        buf = play.input_buffer()
        assert _native.feed_window(ring, i, spec.window, spec.skip, lut, spec.layout, buf) is not None
        del buf
        want = decoder.decode(play.invoke()).astype(np.uint8)
        if history is not None:
            history[:-1] = history[1:]
            history[-1] = want
            play.set_history(history)
        obs = np.empty(fs.shape, np.uint8)
        assert _native.feed_window(ring, i, spec.window, spec.skip, identity, spec.layout, obs) is not None
        got = policy(obs)
        assert np.array_equal(got, want), (i, got, want)
        decisions.append(tuple(want))
    assert len(set(decisions)) >= 2  # the frames made the model change its mind


def _hold_keys(env: GameEnv) -> None:
    env.reset()
    env.step([1, 0, 1])
    assert wait_for(lambda: server_keys(os.environ["DISPLAY"]) == [True, False, True])


def test_close_releases_every_key(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60))
    _hold_keys(env)
    env.close()
    env.close()  # idempotent
    assert server_keys(os.environ["DISPLAY"]) == [False] * 3
    with pytest.raises(EngineError, match="closed"):
        env.step([0, 0, 0])


def test_an_exception_in_step_releases_every_key(game) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def reward(frame: np.ndarray, info: dict) -> float:
        calls.append(info["keys_held"])
        if len(calls) == 2:
            raise ZeroDivisionError("user reward failed")
        return 0.0

    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), reward=reward)
    try:
        _hold_keys(env)
        with pytest.raises(ZeroDivisionError):
            env.step([1, 1, 0])
        assert calls[1] == ("left", "right")
        assert server_keys(os.environ["DISPLAY"]) == [False] * 3
        # An exception in the user's own code inside `with env:` releases through close().
        with pytest.raises(RuntimeError), env:
            env.step([0, 1, 1])
            raise RuntimeError("agent crashed")
        assert server_keys(os.environ["DISPLAY"]) == [False] * 3
    finally:
        env.close()


def test_garbage_collection_releases_every_key(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60))
    _hold_keys(env)
    del env
    gc.collect()
    assert server_keys(os.environ["DISPLAY"]) == [False] * 3


def test_the_window_closing_releases_every_key(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), frame_timeout_s=1.0)
    try:
        _hold_keys(env)
        game.stop()  # the game's window goes away while the env holds keys
        with pytest.raises(EngineError, match="every key was released") as e:
            for _ in range(100):
                env.step([1, 0, 1])
        assert "\n" not in str(e.value)
        assert server_keys(os.environ["DISPLAY"]) == [False] * 3
    finally:
        env.close()


HOLD_AND_WAIT = f"""
import sys, time
from engine.env import GameEnv
env = GameEnv({KEYS!r}, window={WINDOW_TITLE!r}, frame_size=(80, 60))
env.reset()
env.step([1, 0, 1])
print("HOLDING", flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)  # no close(): the interpreter's exit must release
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "kill -9", "SIGTERM"])
def test_exit_without_close_and_kill_9_release_every_key(game, how: str) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([sys.executable, "-c", HOLD_AND_WAIT, how.split()[0]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if how != "exit" and line == "HOLDING":
            assert server_keys(os.environ["DISPLAY"]) == [True, False, True]
            # Neither runs the env's cleanup (SIGTERM's default action ends the process at once): only the
            # crash watchdog can release now.
            proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert line == "HOLDING", err
    assert "Traceback" not in err, err
    assert wait_for(lambda: server_keys(os.environ["DISPLAY"]) == [False] * 3)


def test_reset_releases_then_plays_the_user_sequence(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), reset_sequence=[("left,up", 0.3), ("", 0.1)])
    try:
        env.reset()
        env.step([0, 1, 0])
        t0 = time.monotonic_ns()
        _, info = env.reset()
        t1 = time.monotonic_ns()
        assert info["keys_held"] == () and server_keys(os.environ["DISPLAY"]) == [False] * 3
        assert info["t_capture_ns"] >= info["t_sent_ns"] >= t0
    finally:
        env.close()
    log = game.stop()
    during = log["keys"][(log["t_ns"] >= t0) & (log["t_ns"] <= t1)]
    # The game saw right released, then left+up held for the sequence's 0.3 s, then nothing.
    assert (during == 0b101).sum() >= 10 and not (during & 0b010)[-3:].any() and during[-1] == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"actions": ["left", "jump"]}, "unknown action 'jump'"),
    ({"actions": None}, "no actions given"),
    ({"frame_size": (0, 60)}, "frame_size must be"),
    ({"frame_size": (128, 48)}, "larger than the captured area 64x48"),
    ({"frames": 0}, "window (frames per observation) must be a whole number"),
    ({"color": "bgr"}, "color must be"),
    ({"history": -1}, "history must be"),
    ({"reset_sequence": [("enter",)]}, "a reset step is (keys, seconds)"),
    ({"reset_sequence": [("f13", 1)]}, "unknown reset key 'f13'"),
])
def test_bad_arguments_are_one_line(xvfb, kwargs: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    args = {"actions": KEYS, "region": (0, 0, 64, 48), "output": "none", **kwargs}
    with pytest.raises(EngineError) as e:
        GameEnv(args.pop("actions"), **args)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_actions_and_observations_are_one_line(game) -> None:  # type: ignore[no-untyped-def]
    env = GameEnv(KEYS, window=WINDOW_TITLE, frame_size=(80, 60), output="none")
    try:
        obs, _ = env.reset()
        with pytest.raises(EngineError, match=r"3 values of 0 or 1 \(one per left, right, up\)"):
            env.step([1, 0])
        with pytest.raises(EngineError, match="needs RGB uint8"):
            on_road(obs[0, ..., 0])
        with pytest.raises(EngineError, match=r"shaped \(60, 80, 12\)"):
            TFLitePolicy(DEMO_MODEL)(obs)
    finally:
        env.close()


def test_without_gymnasium_the_import_says_what_to_install() -> None:
    code = "import sys; sys.modules['gymnasium'] = None\nimport engine.env\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: engine.env needs gymnasium: pip install 'engine[env]' (or 'gymnasium>=1.0')")
