"""engine-record on a real Xvfb: real windows, real XTest keys, real files (the demo-game checks of frame
content against the game's own log live in test_record_demo.py)."""

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
from hypothesis import given, settings
from hypothesis import strategies as st
from scenes import scene

from engine import _native, monotonic_ns
from engine.record import RecordConfig, Recorder, auto_size
from engine.record.labeler import Labeler, label_reference
from engine.session import Session, sessions


def _events_strategy() -> st.SearchStrategy:
    return st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), st.integers(0, 1)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.integers(0, 10**6), min_size=1, max_size=60, unique=True), events=_events_strategy(),
       cuts=st.lists(st.integers(0, 60), max_size=4))
def test_labeler_equals_its_definition(frames: list[int], events: list, cuts: list[int]) -> None:
    t_f = np.array(sorted(frames), np.int64)
    ev = sorted(events)
    t_e = np.array([e[0] for e in ev], np.int64)
    a_e = np.array([e[1] for e in ev], np.int16)
    v_e = np.array([e[2] for e in ev], np.int8)
    want = label_reference(t_f, t_e, a_e, v_e, 3)
    lab = Labeler(3)
    lab.add_events(t_e, a_e, v_e)
    bounds = sorted({0, len(t_f), *(c for c in cuts if c < len(t_f))})
    got = np.concatenate([lab.label(t_f[a:b]) for a, b in itertools.pairwise(bounds)])
    assert np.array_equal(got, want)


def test_a_tap_between_frames_is_never_lost() -> None:
    lab = Labeler(1)
    lab.add_events(np.array([110, 112], np.int64), np.array([0, 0], np.int16), np.array([1, 0], np.int8))
    assert lab.label(np.array([100, 133, 166], np.int64))[:, 0].tolist() == [0, 1, 0]


def test_auto_size_keeps_aspect_with_an_integer_factor() -> None:
    assert auto_size(1920, 1080) == (320, 180)
    assert auto_size(320, 240) == (320, 240)
    assert auto_size(800, 600) == (267, 200)


def _record_with_keys(tmp_path: Path, display: str, script: list[tuple[float, list[int]]],
                      actions: list[str], **kw: object) -> tuple[Session, list[tuple[int, int, int]]]:
    """Record while a thread plays `script` [(delay_s, state)] through XTest; returns the session and what
    was sent as (t_ns after sending, action, value)."""
    sent: list[tuple[int, int, int]] = []
    all_keys = actions + [k for k in ("q", "a") if k not in actions]  # extra keys that must NOT be recorded
    act = _native.XTestActuator(display, all_keys)

    def play() -> None:
        time.sleep(0.4)
        held = np.zeros(len(all_keys), np.uint8)
        for delay, state in script:
            time.sleep(delay)
            new = np.array(state + [1, 1][: len(all_keys) - len(actions)], np.uint8)
            new[len(actions):] = state[0] if state else 0  # press the unconfigured keys along with action 0
            act.apply(new)
            t = monotonic_ns()
            for i in np.flatnonzero(new[: len(actions)] != held[: len(actions)]):
                sent.append((t, int(i), int(new[i])))
            held = new
        act.release_all()

    thread = threading.Thread(target=play)
    cfg = RecordConfig(actions=actions, data_dir=tmp_path, countdown=0, game="keys", **kw)  # type: ignore[arg-type]
    thread.start()
    summary = Recorder(cfg).run(install_signals=False)
    thread.join()
    return Session.open(summary.path), sent


def test_records_frames_labels_and_events_of_configured_actions_only(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    win = image_window(scene(120, 160, seed=21), title="record-me")
    taps = [(0.05, [1, 0]), (0.15, [0, 0]), (0.1, [0, 1]), (0.003, [0, 0])] * 4  # right: 3 ms taps
    ses, sent = _record_with_keys(tmp_path, xvfb.display, taps, ["left", "right"], fps=30.0, window="record-me",
                                  duration=3.0)
    m = ses.meta
    assert m["status"] == "complete" and m["actions"] == ["left", "right"] and m["fps"] == 30.0
    assert m["source"]["window"] == "record-me" and m["frame_shape"] == [120, 160]
    assert ses.frames.shape[0] == m["frames"] >= 60
    ref = _native.convert_resize(np.ascontiguousarray(win.bgra), 160, 120, "gray")
    assert all(np.array_equal(f, ref) for f in ses.frames[:: max(1, len(ses.frames) // 10)])
    # The raw log holds exactly the configured actions' transitions that were sent, in order.
    ev = ses.events
    assert [(int(a), int(v)) for a, v in zip(ev["action"], ev["value"], strict=True)] == \
        [(a, v) for _, a, v in sent]
    assert set(np.unique(ev["action"]).tolist()) <= {0, 1}  # 'q' and 'a' were pressed too, never recorded
    # Listener stamps (arrival) follow the sender's stamps by little.
    lag = ev["t_ns"] - np.array([t for t, _, _ in sent])
    assert (np.abs(lag) < 50_000_000).all()
    # Labels are exactly the definition applied to the recorded timestamps and events...
    want = label_reference(ses.timestamps[:], ev["t_ns"], ev["action"], ev["value"], 2)
    assert np.array_equal(ses.actions[:], want)
    # ...so every 3 ms tap of 'right' is in some frame.
    presses = ev["t_ns"][(ev["action"] == 1) & (ev["value"] == 1)]
    in_range = presses[(presses > ses.timestamps[0]) & (presses <= ses.timestamps[-1])]
    first = np.searchsorted(ses.timestamps[:], in_range)
    assert len(in_range) >= 3 and (ses.actions[first, 1] == 1).all()


def run_cli(*args: str, env: dict | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.record", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=120, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fps", "0"], "--fps: must be a positive number"),
        (["--fps", "abc"], "'abc' is not a number"),
        (["--fps", "5000"], "--fps must be in (0, 1000]"),
        (["--size", "160"], "not WIDTHxHEIGHT"),
        (["--region", "1,2,3"], "not X,Y,W,H"),
        (["--region", "1900,0,100,100"], "outside the screen"),
        (["--region", "-10,0,100,100"], "region -10,0,100,100 is outside the screen"),  # not "expected one argument"
        (["--size", "99999x99999"], "each side must be at most 8192"),
        (["--region", "0,0,200,100", "--size", "400x300"], "larger than the captured area 200x100"),
        (["--window", "there is no such window"], "no window titled"),
        (["--actions", "left,jump"], "unknown action 'jump'"),
        (["--actions", "left,left"], "left given twice"),
        (["--actions", "left,f12"], "hotkey f12 is also a recorded action"),
        (["--hotkeys", "stop=zz"], "unknown hotkey 'zz'"),
        (["--color", "sepia"], "invalid choice"),
        (["--input", "joystick"], "invalid choice"),
        (["--duration", "-1"], "--duration: must be a positive number"),
        (["--monitor", "9"], "monitor 9 does not exist"),
        (["--config", "/nonexistent.toml"], "cannot read config"),
        (["--data-dir", "/proc/engine-test"], "data"),
    ],
)
def test_bad_flags_get_one_clear_line_and_exit_2(xvfb, flags: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("--countdown", "0", "--duration", "1", *flags)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_no_display_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = run_cli("--countdown", "0", "--duration", "1", "--data-dir", str(tmp_path), env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "DISPLAY is not set" in r.stderr
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.record", "--countdown", "0", "--region",
                             "0,0,320,240", "--fps", "60", "--data-dir", str(tmp_path), "--name", "run", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "sessions" / "run"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (path / "meta.json").exists() and Session.open(path).meta["frames"] >= 60:
            break
        time.sleep(0.1)
    return proc, path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_session_cleanly(xvfb, tmp_path, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    proc, path = _start(tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"stopped by {sig.name}" in out and str(path) in out and "Traceback" not in err
    ses = Session.open(path)
    assert ses.meta["status"] == "complete" and len(ses) == ses.meta["frames"] >= 60


def test_kill_9_loses_at_most_the_last_second(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc, path = _start(tmp_path)
    time.sleep(1.5)
    before = Session.open(path).meta["frames"]  # flushed at most ~1 s ago: all of these must come back
    proc.kill()
    proc.communicate(timeout=30)
    ses = Session.open(path)
    assert ses.meta["status"] == "recovered"
    assert len(ses) >= before and np.all(np.diff(ses.timestamps[:]) > 0)
    assert np.load(path / "frames.npy", mmap_mode="r").shape[0] == len(ses)


def test_disk_full_stops_keeps_what_was_written_and_says_so(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import resource

    limit = 6 << 20

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = run_cli("--countdown", "0", "--region", "0,0,320,240", "--fps", "120", "--duration", "30", "--data-dir",
                str(tmp_path), "--name", "full", preexec_fn=cap)
    assert r.returncode == 1, r.stderr
    assert "recording stopped on a storage error: file size limit" in r.stderr and "Traceback" not in r.stderr
    assert "stopped by storage error" in r.stderr
    # The frames lost with the disk are not a slow machine: no rate warning about them.
    assert "below 95%" not in r.stderr
    ses = Session.open(tmp_path / "sessions" / "full")
    assert len(ses) > 0 and ses.frames.shape[0] == len(ses) and "error" in ses.meta


def test_stop_and_pause_hotkeys(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    act = _native.XTestActuator(xvfb.display, ["f10", "f12"])

    def press(i: int) -> None:
        state = np.zeros(2, np.uint8)
        state[i] = 1
        act.apply(state)
        act.apply(np.zeros(2, np.uint8))

    def script() -> None:
        time.sleep(1.0)
        press(0)  # pause
        time.sleep(0.6)
        press(0)  # resume
        time.sleep(0.6)
        press(1)  # stop

    t = threading.Thread(target=script)
    t.start()
    cfg = RecordConfig(region=(0, 0, 64, 48), fps=50, actions=["left"], data_dir=tmp_path, countdown=0,
                       duration=60)
    summary = Recorder(cfg).run(install_signals=False)
    t.join()
    assert "F12" in summary.stop_reason
    ts = Session.open(summary.path).timestamps[:]
    gaps = np.diff(ts) / 1e9
    assert gaps.max() > 0.4  # the pause is a visible gap (so no training window crosses it)
    assert (gaps > 0.1).sum() == 1


def test_wait_for_start_hotkey(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    act = _native.XTestActuator(xvfb.display, ["f9"])
    t0 = monotonic_ns()

    def start_later() -> None:
        time.sleep(0.8)
        act.apply(np.ones(1, np.uint8))
        act.apply(np.zeros(1, np.uint8))

    threading.Thread(target=start_later).start()
    cfg = RecordConfig(region=(0, 0, 64, 48), fps=30, actions=["left"], data_dir=tmp_path, duration=0.5,
                       wait_for_start=True)
    summary = Recorder(cfg).run(install_signals=False)
    ts = Session.open(summary.path).timestamps[:]
    assert ts[0] - t0 > 700_000_000  # nothing before the start hotkey
    assert summary.frames >= 10


def test_status_lines_go_to_a_stderr_that_is_not_a_terminal(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("--countdown", "0", "--region", "0,0,64,48", "--duration", "2", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    status = [line for line in r.stderr.splitlines() if line.startswith("rec ")]
    assert status and all(" frames | " in line and "\r" not in line for line in status), r.stderr
    assert "recorded " in r.stdout


def test_summary_warns_when_frames_drop_and_the_rate_falls(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A writer held up for a second (a slow disk, a busy machine) with a 16-frame queue at 100 fps: the
    capture thread keeps its rate and drops what does not fit, so the summary must say so."""
    held: list[str] = []

    def stall(text: str) -> None:
        if not held:
            held.append(text)
            time.sleep(1.0)  # the writer thread (this one) drains nothing meanwhile

    cfg = RecordConfig(region=(0, 0, 64, 48), fps=100, actions=["left"], data_dir=tmp_path, countdown=0,
                       duration=2.0, queue_seconds=0.05)
    summary = Recorder(cfg).run(install_signals=False, on_status=stall)
    assert summary.queue_drops > 0 and summary.dropped >= summary.queue_drops
    assert any("below 95% of the target 100" in w for w in summary.warnings), summary.warnings
    assert any(f"{summary.dropped} frames dropped" in w for w in summary.warnings), summary.warnings
    assert sum(line.startswith("warning: ") for line in summary.lines()) == len(summary.warnings) == 2
    ses = Session.open(summary.path)
    assert ses.meta["dropped"] == summary.dropped and len(ses) == summary.frames


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('fps = "abc"', "fps in [g] must be a positive number, got 'abc'"),
        ("fps = -3", "fps in [g] must be a positive number, got -3"),
        ("fps = true", "fps in [g] must be a positive number, got True"),
        ('countdown = "x"', "countdown in [g] must be a number >= 0, got 'x'"),
        ('monitor = "first"', "monitor in [g] must be an integer, got 'first'"),
        ("size = 5", 'size in [g] must be a size "WxH"'),
        ('region = "1,2,3"', 'region in [g] must be a rectangle "X,Y,W,H"'),
        ('color = "sepia"', "color in [g] must be one of gray, rgb, got 'sepia'"),
        ('input = "joystick"', "input in [g] must be one of"),
        ('hotkeys = "stop"', "hotkeys in [g] must be hotkeys like"),
        ("wait = 1", "wait in [g] must be true or false, got 1"),
        ("actions = {left = 1}", "actions in [g] must be a string"),
        ("bogus = 1", "unknown key 'bogus' in [g]; valid keys: fps, window, region"),
        ("[g.inner]\nfps = 1", "unknown key 'inner' in [g]"),
    ],
)
def test_bad_toml_values_get_one_line_naming_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    conf = tmp_path / "games.toml"
    conf.write_text(f"[g]\n{toml}\n")
    r = run_cli("--config", str(conf), "--game", "g", "--data-dir", str(tmp_path))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"engine-record: config {conf}: ") and message in lines[0], \
        r.stderr
    assert not (tmp_path / "sessions").exists()


def test_toml_values_take_the_flags_forms(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "games.toml"
    conf.write_text('countdown = "0"\n[g]\nfps = "20"\nregion = [0, 0, 64, 48]\nsize = [32, 24]\n'
                    'actions = ["left", "up"]\nhotkeys = "stop=f11"\n')
    r = run_cli("--config", str(conf), "--game", "g", "--duration", "0.3", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    (info,) = sessions(tmp_path, game="g")
    meta = Session.open(info.path).meta
    assert meta["fps"] == 20 and meta["frame_shape"] == [24, 32] and meta["actions"] == ["left", "up"]


def test_toml_config_per_game_and_flags_win(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "games.toml"
    conf.write_text('countdown = 0\n[racer]\nfps = 40\nregion = "0,0,200,100"\nsize = "100x50"\n'
                    'actions = "left,right"\ncolor = "rgb"\n')
    r = run_cli("--config", str(conf), "--game", "racer", "--duration", "0.5", "--fps", "25", "--data-dir",
                str(tmp_path))
    assert r.returncode == 0, r.stderr
    (info,) = sessions(tmp_path, game="racer")
    meta = Session.open(info.path).meta
    assert meta["fps"] == 25 and meta["frame_shape"] == [50, 100, 3] and meta["actions"] == ["left", "right"]
