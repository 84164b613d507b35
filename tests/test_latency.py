"""engine-latency on a real Xvfb: real XTest presses into the real demo game, changes seen in real grabs.

No timing assertions: the timeouts only guard against hangs, and "within the timeout" is what a
detected probe means, not a performance claim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from scenes import scene

from engine import _native
from engine.cli.latency import main
from engine.demo.game import WINDOW_TITLE, indicator_rects
from engine.demo.process import DemoProcess
from engine.latency import LatencyConfig, measure
from engine.xvfb import Xvfb

TIMEOUT = 20.0  # a guard against hangs, never a performance claim
KEYS = ["left", "up", "right"]


@pytest.fixture
def demo(xvfb: Xvfb) -> Iterator[DemoProcess]:
    d = DemoProcess(display=xvfb.display, timeout=TIMEOUT)
    yield d
    d.stop()


def server_keys(display: str) -> list[bool]:
    """What the X server believes is down (its own key map, through a separate connection)."""
    return list(_native.XTestActuator(display, KEYS).system_held())


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse errors (engine.cli.args.Parser exits 2)
        return int(e.code or 0)


def test_every_probe_on_the_demo_game_is_detected_and_keys_end_released(demo: DemoProcess, xvfb: Xvfb) -> None:
    seen: list[int] = []
    cfg = LatencyConfig(key="left", window=WINDOW_TITLE, probes=12, timeout=5.0, spacing=(0.02, 0.06),
                        display=xvfb.display, seed=1, indicators={WINDOW_TITLE: indicator_rects})
    result = measure(cfg, on_probe=lambda i, p: seen.append(i))
    assert seen == list(range(12))
    assert result.demo and len(result.probes) == 12 and len(result.detected) == 12 and result.timeouts == 0
    # The default probe region is the left indicator box, in screen coordinates.
    x, y, w, h = indicator_rects()["left"]
    wx, wy = _native.X11Grabber(window_id=demo.window_id).rect[:2]
    assert result.probe_rect == (wx + x, wy + y, w, h)
    for p in result.probes:
        assert 0 <= p.latency_ns <= 5e9  # seen within the timeout, never before the press
        assert p.press_ns <= p.prev_ns <= p.seen_ns < p.release_ns <= p.reverted_ns
        assert p.diff >= cfg.threshold
    stats = result.latency_ms()
    assert 0 <= stats["min"] <= stats["p50"] <= stats["p99"] <= stats["max"] <= 5e3
    assert result.unstable == 0 and not result.warnings()
    assert server_keys(xvfb.display) == [False, False, False]


@pytest.mark.parametrize("key", ["up", "right"])
def test_cli_on_the_demo_writes_json_and_releases_keys(demo: DemoProcess, xvfb: Xvfb, tmp_path: Path, key: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lat.json"
    rc = run_main(["--window", WINDOW_TITLE, "--key", key, "--probes", "8", "--timeout", "5", "--spacing",
                   "0.02,0.05", "--countdown", "0", "--json", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert stdout.startswith(f"input-to-photon {key} on window \"{WINDOW_TITLE}\"") and "(8 of 8 probes)" in stdout
    data = json.loads(out.read_text())
    assert data["probes"] == data["detected"] == 8 and data["timeouts"] == 0 and data["demo"] is True
    assert data["key"] == key and data["probe_rect"][2:] == list(indicator_rects()[key][2:])
    lat = data["latency_ms"]
    assert set(lat) == {"p50", "p99", "min", "max", "mean"} and lat["p50"] >= 0
    assert [s["latency_ns"] for s in data["samples"]] == [s["seen_ns"] - s["press_ns"] for s in data["samples"]]
    assert all(0 <= s["latency_ns"] <= 5e9 for s in data["samples"])
    assert server_keys(xvfb.display) == [False, False, False]


def test_sigterm_mid_probe_releases_the_key(demo: DemoProcess, xvfb: Xvfb) -> None:
    env = dict(os.environ, DISPLAY=xvfb.display)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.latency", "--window", WINDOW_TITLE, "--key", "left",
                             "--probes", "1000", "--countdown", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while server_keys(xvfb.display)[0] is False:  # wait until it holds the key
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("engine-latency: interrupted after ") and last.endswith(" probes; the key was released")
    assert server_keys(xvfb.display) == [False, False, False]
    done = int(last.split()[3])  # the probes completed before SIGTERM are still reported
    assert out.startswith("input-to-photon left") and (f"of {done} probes)" in out if done else "no probe" in out)


def test_kill_9_mid_probe_is_covered_by_the_watchdog(xvfb: Xvfb, image_window: Callable[..., object]) -> None:
    # A window the key does not change: the probe holds the key for its whole --timeout, so when it is
    # killed the key is certainly down, and SIGKILL skips every finally: only the output's watchdog process
    # can release it. communicate() returns once the watchdog is done (it holds the probe's stdout/stderr).
    image_window(scene(60, 80, seed=5), title="latency-kill")
    env = dict(os.environ, DISPLAY=xvfb.display)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.latency", "--window", "latency-kill", "--key", "left",
                             "--probes", "1", "--timeout", "59", "--spacing", "0,0", "--countdown", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while server_keys(xvfb.display)[0] is False:  # wait until it holds the key
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.002)
        proc.kill()
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert "engine watchdog: a process died holding 1 xtest key(s); released them" in err
    assert server_keys(xvfb.display) == [False, False, False]


def test_a_window_that_never_changes_times_out_every_probe_with_one_clear_line(
        xvfb: Xvfb, image_window: Callable[..., object], capsys: pytest.CaptureFixture[str]) -> None:
    image_window(scene(60, 80, seed=3), title="latency-static")
    rc = run_main(["--window", "latency-static", "--key", "up", "--probes", "3", "--timeout", "0.2", "--spacing",
                   "0,0.01", "--countdown", "0"])
    captured = capsys.readouterr()
    assert rc == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("engine-latency: pressing up changed nothing"), captured.err
    assert "0 of 3" not in captured.out and "no change seen in 3 probes" in captured.out
    assert server_keys(xvfb.display) == [False, False, False]


def test_region_target_and_probe_region_inside_it(xvfb: Xvfb, image_window: Callable[..., object]) -> None:
    image_window(np.full((50, 70, 3), 90, np.uint8), title="latency-region", x=300, y=200)
    cfg = LatencyConfig(key="up", region=(300, 200, 70, 50), probe_region=(10, 5, 20, 20), probes=2, timeout=0.1,
                        spacing=(0.0, 0.0), display=xvfb.display)
    result = measure(cfg)
    assert result.probe_rect == (310, 205, 20, 20) and not result.demo and result.timeouts == 2
    assert server_keys(xvfb.display) == [False, False, False]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--key", "jump"], "unknown key 'jump'"),
        (["--key", "up", "--probe-region", "60,0,40,40"], "probe region 60,0,40,40 is outside the window (80x60)"),
        (["--key", "up", "--threshold", "300"], "--threshold must be in (0, 255]"),
        (["--key", "up", "--threshold", "0"], "--threshold: must be a positive number"),
        (["--key", "up", "--probes", "0"], "--probes: must be a positive integer"),
        (["--key", "up", "--spacing", "1"], "is not MIN,MAX seconds"),
        (["--key", "up", "--json", "/nonexistent/dir/x.json"], "not a writable directory"),
        (["--probes", "3"], "required: --key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(xvfb: Xvfb, image_window: Callable[..., object], flags: list[str],
                                          message: str, capsys: pytest.CaptureFixture[str]) -> None:
    image_window(scene(60, 80, seed=4), title="latency-bad")
    rc = run_main(["--window", "latency-bad", "--countdown", "0", *flags])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("engine-latency: "), err


def test_bad_window_or_missing_display_is_one_line(xvfb: Xvfb, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_main(["--window", "no such window anywhere", "--key", "up", "--countdown", "0"]) == 2
    assert "no window titled" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY")
    assert run_main(["--window", "x", "--key", "up", "--countdown", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "DISPLAY is not set" in err


def test_demo_keys_without_an_indicator_need_a_probe_region(demo: DemoProcess,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["--window", WINDOW_TITLE, "--key", "down", "--countdown", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shows no indicator for down" in err
