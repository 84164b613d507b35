"""engine-record on a real Xvfb: real windows, real XTest keys, real files (the demo-game checks of frame
content against the game's own log live in test_record_demo.py)."""

from __future__ import annotations

import io
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenes import scene

from engine import _native, monotonic_ns
from engine.dataset.kernels import max_gap_ns, segment_bounds
from engine.record import RecordConfig, Recorder, auto_size
from engine.record.labeler import Labeler, label_reference
from engine.session import HEADER_BYTES, Session, sessions


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


class Said(io.StringIO):
    """A recorder's ``out``: every line it says, stamped on the engine's clock when it was said, so a test
    can wait for "paused" or "press F9" instead of sleeping and hoping."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int, str]] = []
        self._cond = threading.Condition()

    def write(self, s: str) -> int:
        with self._cond:
            t = monotonic_ns()
            self.lines += [(t, line.strip()) for line in s.splitlines() if line.strip()]
            self._cond.notify_all()
        return super().write(s)

    def wait_for(self, text: str, after: int = 0, timeout: float = 60.0) -> int:
        """The engine-clock time of the first line containing ``text`` said at or after ``after``."""
        def said() -> int | None:
            return next((t for t, line in self.lines if text in line and t >= after), None)

        with self._cond:
            assert self._cond.wait_for(lambda: said() is not None, timeout), f"never said {text!r}: {self.lines}"
            t = said()
        assert t is not None
        return t


class Status:
    """A recorder's ``on_status``: lets a test wait until the recorder has committed frames."""

    def __init__(self) -> None:
        self.frames = 0
        self._cond = threading.Condition()

    def __call__(self, text: str) -> None:
        with self._cond:
            self.frames = int(re.search(r"\| (\d+) frames \|", text).group(1))  # type: ignore[union-attr]
            self._cond.notify_all()

    def wait_frames(self, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.frames >= n, timeout), f"only {self.frames} frames"


def _wait_for_flushed(path: Path, done: Callable[[Session], bool], timeout: float = 60.0) -> None:
    """Poll the session as a reader sees it (its writer's last flush) until ``done``; a deadline, not a pace."""
    deadline = time.monotonic() + timeout
    while not ((path / "meta.json").exists() and done(Session.open(path))):
        assert time.monotonic() < deadline, "the recorder never flushed what was expected"
        time.sleep(0.05)


def _record_with_keys(tmp_path: Path, display: str, script: list[tuple[float, list[int]]],
                      actions: list[str], **kw: object) -> tuple[Session, list[tuple[int, int, int]]]:
    """Record while a thread plays `script` [(delay_s, state)] through XTest; returns the session and what
    was sent as (t_ns just before sending, action, value).

    The script starts once the recorder has committed a frame (so every key comes after the first frame)
    and the recording stops once a reader sees every sent event logged and a frame captured after the last
    one: the test never relies on how long anything takes."""
    sent: list[tuple[int, int, int]] = []
    all_keys = actions + [k for k in ("q", "a") if k not in actions]  # extra keys that must NOT be recorded
    act = _native.XTestActuator(display, all_keys)
    status = Status()
    cfg = RecordConfig(actions=actions, data_dir=tmp_path, countdown=0, game="keys", name="keys",
                       **kw)  # type: ignore[arg-type]
    rec = Recorder(cfg, out=io.StringIO())
    path = tmp_path / "sessions" / "keys"

    def play() -> None:
        try:
            status.wait_frames(1)
            held = np.zeros(len(all_keys), np.uint8)
            for delay, state in script:
                time.sleep(delay)
                new = np.array(state + [1, 1][: len(all_keys) - len(actions)], np.uint8)
                new[len(actions):] = state[0] if state else 0  # press the unconfigured keys along with action 0
                t = monotonic_ns()
                act.apply(new)
                for i in np.flatnonzero(new[: len(actions)] != held[: len(actions)]):
                    sent.append((t, int(i), int(new[i])))
                held = new
            act.release_all()
            _wait_for_flushed(path, lambda s: len(s.events) >= len(sent) and len(s) > 0
                              and s.timestamps[-1] >= s.events["t_ns"][-1])
        finally:
            rec.stop("script done")

    thread = threading.Thread(target=play)
    thread.start()
    summary = rec.run(install_signals=False, on_status=status)
    thread.join()
    return Session.open(summary.path), sent


def test_records_frames_labels_and_events_of_configured_actions_only(xvfb, image_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    win = image_window(scene(120, 160, seed=21), title="record-me")
    taps = [(0.05, [1, 0]), (0.15, [0, 0]), (0.1, [0, 1]), (0.003, [0, 0])] * 4  # right: 3 ms taps
    ses, sent = _record_with_keys(tmp_path, xvfb.display, taps, ["left", "right"], fps=30.0, window="record-me")
    m = ses.meta
    assert m["status"] == "complete" and m["actions"] == ["left", "right"] and m["fps"] == 30.0
    assert m["source"]["window"] == "record-me" and m["frame_shape"] == [120, 160]
    ts = ses.timestamps[:]
    assert ses.frames.shape[0] == m["frames"] == len(ts) > 0 and (np.diff(ts) > 0).all()
    ref = _native.convert_resize(np.ascontiguousarray(win.bgra), 160, 120, "gray")
    assert all(np.array_equal(f, ref) for f in ses.frames[:: max(1, len(ses.frames) // 10)])
    # The raw log holds exactly the configured actions' transitions that were sent, in order.
    ev = ses.events
    assert [(int(a), int(v)) for a, v in zip(ev["action"], ev["value"], strict=True)] == \
        [(a, v) for _, a, v in sent]
    assert set(np.unique(ev["action"]).tolist()) <= {0, 1}  # 'q' and 'a' were pressed too, never recorded
    # Stamped on the engine's clock on arrival: never before the key was sent, and in order.
    assert (ev["t_ns"] >= np.array([t for t, _, _ in sent])).all() and (np.diff(ev["t_ns"]) >= 0).all()
    # Labels are exactly the definition applied to the recorded timestamps and events...
    want = label_reference(ts, ev["t_ns"], ev["action"], ev["value"], 2)
    assert np.array_equal(ses.actions[:], want)
    # ...so every press, the 3 ms taps of 'right' included, is in the first frame captured at or after it
    # (every key went after the first frame, and a frame was captured after the last one).
    presses = ev["value"] == 1
    assert presses.sum() == 8 and ts[0] < ev["t_ns"][0] and ev["t_ns"][-1] <= ts[-1]
    first = np.searchsorted(ts, ev["t_ns"][presses])
    assert (ses.actions[first, ev["action"][presses]] == 1).all()


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


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, int]:
    """engine-record in its own process; returns once a reader sees flushed frames, and how many."""
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.record", "--countdown", "0", "--region",
                             "0,0,320,240", "--fps", "60", "--data-dir", str(tmp_path), "--name", "run", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "sessions" / "run"
    try:
        _wait_for_flushed(path, lambda s: len(s) > 0)
    except BaseException:
        proc.kill()
        raise
    return proc, path, len(Session.open(path))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_session_cleanly(xvfb, tmp_path, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    proc, path, seen = _start(tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"stopped by {sig.name}" in out and str(path) in out and "Traceback" not in err
    ses = Session.open(path)
    assert ses.meta["status"] == "complete" and len(ses) == ses.meta["frames"] >= seen > 0


def _committed(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the writer has committed, read from the files as they are, past the headers' counts: a frame is
    committed once its timestamp (written after its pixels and actions) is in the zero-filled preallocated
    area. Returns (timestamps, frames, actions)."""
    raw = np.fromfile(path / "timestamps.npy", np.int64, offset=HEADER_BYTES)
    n = int(np.argmin(raw > 0)) if (raw <= 0).any() else len(raw)
    shape, a = tuple(meta["frame_shape"]), len(meta["actions"])
    frames = np.fromfile(path / "frames.npy", np.uint8, count=n * int(np.prod(shape)), offset=HEADER_BYTES)
    actions = np.fromfile(path / "actions.npy", np.uint8, count=n * a, offset=HEADER_BYTES)
    return raw[:n], frames.reshape(n, *shape), actions.reshape(n, a)


def _freeze(pid: int) -> None:
    """SIGSTOP, then wait until every thread of the process is stopped (kill() may return while a thread on
    another core still runs)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 30
    while not all(Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "tT"
                  for tid in os.listdir(f"/proc/{pid}/task")):
        assert time.monotonic() < deadline, "the recorder did not stop on SIGSTOP"
        time.sleep(0.001)


def test_kill_9_keeps_every_committed_frame(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The guarantee (engine.session): after kill -9 the next open recovers every frame the recorder had
    committed, pixels, timestamp and labels, including those committed after its last flush (the headers
    and meta.json lag by up to FLUSH_INTERVAL_NS). What is lost is only what was not committed yet: frames
    still in the capture queue, held back HOLDBACK_NS plus at most a batch, or longer on a writer the machine
    starves, which is why the guarantee is stated in commits and not in seconds.

    The recorder is frozen (SIGSTOP) so the files can be read as the kill will leave them, and frozen again
    until the committed frames run past the flushed ones, the case recovery exists for."""
    proc, path, _ = _start(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            _freeze(proc.pid)
            live = Session.open(path)  # the frozen writer still holds its lock: read as of its last flush
            assert live.meta["status"] == "recording"
            flushed, live_t = len(live), np.array(live.timestamps)
            t, frames, actions = _committed(path, live.meta)
            if len(t) > flushed or time.monotonic() > deadline:
                break
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert len(t) > flushed, "never caught the writer with frames committed after its last flush"
    assert (np.diff(t) > 0).all() and np.array_equal(t[:flushed], live_t)

    ses = Session.open(path)
    assert ses.meta["status"] == "recovered" and len(ses) == ses.meta["frames"] == len(t)
    assert np.array_equal(ses.timestamps[:], t)
    assert np.array_equal(ses.frames[:], frames) and np.array_equal(ses.actions[:], actions)
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


def _tap(act: Any, i: int, n: int) -> int:
    """Press and release key i of an n-key XTest actuator; returns the engine-clock time just before."""
    t = monotonic_ns()
    state = np.zeros(n, np.uint8)
    state[i] = 1
    act.apply(state)
    act.apply(np.zeros(n, np.uint8))
    return t


def test_the_listener_counts_hotkey_presses_before_they_are_taken(xvfb) -> None:  # type: ignore[no-untyped-def]
    """What lets the recorder take events only before a drain: a hotkey press shows in the listener's count
    at once, before any poll; action keys and releases do not count."""
    from engine.actions.inputs import X11Input

    act = _native.XTestActuator(xvfb.display, ["left", "f12"])
    src = X11Input(["left"], ["f12"], xvfb.display)
    src.start()
    try:
        assert src.hotkey_presses == 0
        _tap(act, 0, 2)  # an action key: not counted
        _tap(act, 1, 2)
        _tap(act, 1, 2)
        deadline = time.monotonic() + 5
        while src.hotkey_presses < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert src.hotkey_presses == 2
        (_, a, v), hot = src.poll()
        assert hot == [0, 0] and a.tolist() == [0, 0] and v.tolist() == [1, 0]
        assert src.hotkey_presses == 2  # taking them does not reset the count
    finally:
        src.stop()
        act.release_all()


def test_pause_leaves_a_gap_the_segmenter_finds_and_stop_hotkey_stops(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """While paused nothing is captured: at most one frame (a tick already under way when the pause came) is
    stamped between the recorder saying "paused" and the resume key, so the dataset's gap detector splits
    the session there however long the pause lasted."""
    act = _native.XTestActuator(xvfb.display, ["f10", "f12"])
    out, status = Said(), Status()
    fps = 50.0
    sent: dict[str, int] = {}

    def script() -> None:
        try:
            status.wait_frames(5)
            _tap(act, 0, 2)  # pause
            sent["paused"] = out.wait_for("paused")
            time.sleep(0.3)  # any length: the assertions are on the stamps, not on this
            sent["resume"] = _tap(act, 0, 2)
            out.wait_for("resumed")
            status.wait_frames(status.frames + 5)
        finally:
            _tap(act, 1, 2)  # stop

    t = threading.Thread(target=script)
    t.start()
    cfg = RecordConfig(region=(0, 0, 64, 48), fps=fps, actions=["left"], data_dir=tmp_path, countdown=0)
    summary = Recorder(cfg, out=out).run(install_signals=False, on_status=status)
    t.join()
    assert "F12" in summary.stop_reason
    ts = Session.open(summary.path).timestamps[:]
    during = (ts > sent["paused"]) & (ts < sent["resume"])
    assert during.sum() <= 1
    before = int(np.flatnonzero(ts <= sent["paused"])[-1])
    after = int(np.flatnonzero(ts > sent["resume"])[0])
    bounds = segment_bounds(ts, max_gap_ns(fps))
    run_of = np.searchsorted(bounds, [before, after], side="right")
    assert run_of[0] != run_of[1]  # no training window crosses the pause


def test_wait_for_start_hotkey(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    act = _native.XTestActuator(xvfb.display, ["f9"])
    out = Said()
    sent: list[int] = []

    def start_when_asked() -> None:
        out.wait_for("press F9 to start")
        sent.append(_tap(act, 0, 1))

    t = threading.Thread(target=start_when_asked)
    t.start()
    cfg = RecordConfig(region=(0, 0, 64, 48), fps=30, actions=["left"], data_dir=tmp_path, duration=0.5,
                       wait_for_start=True)
    summary = Recorder(cfg, out=out).run(install_signals=False)
    t.join()
    ts = Session.open(summary.path).timestamps[:]
    assert summary.frames == len(ts) > 0
    assert ts[0] > sent[0]  # nothing before the start hotkey


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
    assert sum(line.startswith("warning: ") for line in summary.lines()) == len(summary.warnings)
    # The region is the empty (black) root window, so the blank-frame warning comes too.
    assert len([w for w in summary.warnings if not w.startswith("blank frames: ")]) == 2, summary.warnings
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
