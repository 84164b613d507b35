"""Recording mouse axes on a real Xvfb (issue 14): relative motion, wheel notches and the pointer position
injected through XTest (XTestFakeRelativeMotionEvent and friends, called through ctypes) and recorded by
engine.record.Recorder with its real XInput2 listener, into real session files.

Measured on Xvfb before writing these: XTestFakeRelativeMotionEvent reaches XI_RawMotion with raw_values
equal to the deltas sent (unclipped at the screen edge), from the "Virtual core XTEST pointer" slave;
XTest buttons 4/5 reach XI_RawButtonPress. An absolute XTestFakeMotionEvent's raw values are screen
coordinates, indistinguishable from deltas, so these tests move the pointer absolutely only where mouse_dx
and mouse_dy are not recorded.

What is asserted is what the engine guarantees, never a timing: every injected delta is in the axis log,
in order, stamped on the engine's clock no earlier than it was sent; each frame's relative value is
exactly the sum of the logged deltas in (t[i-1], t[i]] (frame 0: since capture started), so the frames
add up to every delta sent after capture started, none lost or counted twice across the writer's batches.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import monotonic_ns
from engine.actions.inputs import X11Input
from engine.cli.record import main as record_main
from engine.record import RecordConfig, Recorder, RecordSummary
from engine.record.labeler import AxisFramer, frame_axes_reference
from engine.session import Session
from engine.session.layout import AXIS_EVENT_DTYPE

REGION = (0, 0, 64, 48)
SIZE = (32, 24)


class XTest:
    """Relative motion, absolute motion and buttons through libXtst on a connection of its own."""

    def __init__(self, display: str) -> None:
        self._x = ctypes.CDLL("libX11.so.6")
        self._t = ctypes.CDLL("libXtst.so.6")
        self._x.XOpenDisplay.restype = ctypes.c_void_p
        self._x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self._x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self._t.XTestFakeRelativeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
        self._t.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                 ctypes.c_ulong]
        self._t.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        self._dpy = self._x.XOpenDisplay(display.encode())
        assert self._dpy, f"cannot open {display}"

    def move_by(self, dx: int, dy: int) -> None:
        self._t.XTestFakeRelativeMotionEvent(self._dpy, dx, dy, 0)
        self._x.XSync(self._dpy, 0)

    def move_burst(self, deltas: list[int]) -> None:
        """Horizontal moves sent in one go: the server works through them without waiting for anyone."""
        for d in deltas:
            self._t.XTestFakeRelativeMotionEvent(self._dpy, d, 0, 0)
        self._x.XSync(self._dpy, 0)

    def move_to(self, x: int, y: int) -> None:
        self._t.XTestFakeMotionEvent(self._dpy, -1, x, y, 0)
        self._x.XSync(self._dpy, 0)

    def click(self, button: int) -> None:
        self._t.XTestFakeButtonEvent(self._dpy, button, 1, 0)
        self._t.XTestFakeButtonEvent(self._dpy, button, 0, 0)
        self._x.XSync(self._dpy, 0)

    def close(self) -> None:
        self._x.XCloseDisplay(self._dpy)


# -- the framer against its definition ----------------------------------------------------------------

NAMES = ["mouse_dx", "pad_lx", "wheel"]


@settings(max_examples=150, deadline=None)
@given(frames=st.lists(st.integers(1, 10**6), min_size=1, max_size=40, unique=True),
       events=st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 2), st.integers(-50, 50)), max_size=60),
       cuts=st.lists(st.integers(0, 40), max_size=4), start=st.integers(0, 10**5), shuffle=st.randoms())
def test_axis_framer_equals_its_definition_however_batched(frames: list[int], events: list, cuts: list[int],
                                                          start: int, shuffle: random.Random) -> None:
    t_f = np.array(sorted(frames), np.int64)
    start = min(start, int(t_f[0]) - 1)  # capture starts before its first frame
    ev = sorted(events)
    t_e = np.array([e[0] for e in ev], np.int64)
    a_e = np.array([e[1] for e in ev], np.int16)
    v_e = np.array([e[2] / (50.0 if NAMES[e[1]] == "pad_lx" else 1.0) for e in ev], np.float32)
    want = frame_axes_reference(t_f, t_e, a_e, v_e, NAMES, start)
    framer = AxisFramer(NAMES)
    framer.skip(np.iinfo(np.int64).min, start)
    got = []
    bounds = sorted({0, len(t_f), *(c for c in cuts if c <= len(t_f))})
    fed = 0
    for lo, hi in itertools.pairwise(bounds):
        # Events arrive in batches too: those up to this batch's last frame, plus a few after it.
        upto = int(np.searchsorted(t_e, t_f[hi - 1], side="right")) + 2
        # In any order within a batch (several devices): the framer sorts them in. Events at one instant keep
        # their order (which of two same-instant values of an absolute axis is last is the arrival order).
        order = np.arange(fed, min(upto, len(t_e)))
        shuffle.shuffle(order)  # type: ignore[arg-type]
        for t in np.unique(t_e[order]):
            at = np.flatnonzero(t_e[order] == t)
            order[at] = np.sort(order[at])
        framer.add_events(t_e[order], a_e[order], v_e[order])
        fed = max(fed, min(upto, len(t_e)))
        got.append(framer.frame(t_f[lo:hi]))
    np.testing.assert_array_equal(np.concatenate(got), want)


def test_axis_framer_refuses_what_the_axis_log_may_not_hold() -> None:
    framer = AxisFramer(["mouse_dx", "mouse_dy"])
    for t, a, v in (([0], [0], [1.0]), ([5], [2], [1.0]), ([5], [-1], [1.0]), ([5], [0], [np.nan]),
                    ([5], [65536], [1.0])):  # 65536 as int16 would be axis 0
        with pytest.raises(ValueError, match=r"t_ns > 0, axis in \[0, 2\) and finite"):
            framer.add_events(np.array(t), np.array(a, np.int64), np.array(v, np.float32))
    with pytest.raises(ValueError, match="one length"):
        framer.add_events(np.array([5, 6]), np.array([0], np.int16), np.array([1.0], np.float32))
    assert framer.queued == 0  # a refused batch queues nothing
    rec = framer.add_events(np.array([7, 5]), np.array([1, 0], np.int16), np.array([2, -3], np.float32))
    # The log's records as given (arrival order), the frame from their sums.
    np.testing.assert_array_equal(rec.view(AXIS_EVENT_DTYPE)["t_ns"], [7, 5])
    out = np.zeros((1, 2), np.float32)
    assert framer.frame(np.array([10]), out=out) is out
    np.testing.assert_array_equal(out, [[-3, 2]])
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        framer.frame(np.array([11]), out=np.zeros((2, 2), np.float32))


def test_axis_framer_skips_pauses_and_settles_to_flat_memory() -> None:
    framer = AxisFramer(["mouse_dx", "mouse_x"])
    framer.skip(np.iinfo(np.int64).min, 100)  # capture starts at 100
    framer.add_events(np.array([50, 150, 160]), np.array([0, 1, 0], np.int16), np.array([7, 0.25, 2], np.float32))
    np.testing.assert_array_equal(framer.frame(np.array([200])), [[2, 0.25]])  # 7 was before the start
    framer.skip(300, 400)  # paused in (300, 400]
    framer.add_events(np.array([250, 350, 360, 450]), np.array([0, 0, 1, 0], np.int16),
                      np.array([1, 100, 0.5, 3], np.float32))
    np.testing.assert_array_equal(framer.frame(np.array([420, 500])), [[1, 0.5], [3, 0.5]])
    # Waiting or paused with no frame to come: 10 000 events fold into the state instead of queueing.
    for i in range(100):
        t = 1000 + i * 100 + np.arange(100, dtype=np.int64)
        framer.add_events(t, (np.arange(100) % 2).astype(np.int16), np.full(100, 0.75, np.float32))
        framer.settle(int(t[-1]))
        assert framer.queued == 0
    np.testing.assert_array_equal(framer.frame(np.array([10**6])), [[0, 0.75]])


# -- recording on Xvfb --------------------------------------------------------------------------------


def _record(tmp_path: Path, display: str, actions: list[str], inject, name: str,  # type: ignore[no-untyped-def]
            statuses: list[str] | None = None) -> tuple[Session, RecordSummary]:
    """Record while `inject(xtest, sent)` runs in a thread once the first frame is committed; stop once a
    reader sees a frame captured after everything the injector logged was sent."""
    cfg = RecordConfig(region=REGION, size=SIZE, fps=60, actions=actions, data_dir=tmp_path, countdown=0,
                       display=display, name=name, game="axes")
    rec = Recorder(cfg, out=io.StringIO())
    path = tmp_path / "sessions" / name
    first = threading.Event()
    failure: list[BaseException] = []

    def status(text: str) -> None:
        if statuses is not None:
            statuses.append(text)
        if " 0 frames" not in text:
            first.set()

    def run() -> None:
        xt = XTest(display)
        try:
            assert first.wait(30)
            inject(xt)
            t_done = monotonic_ns()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if (path / "meta.json").exists():
                    ts = Session.open(path).timestamps
                    if len(ts) and ts[-1] > t_done + 50_000_000:
                        break
                time.sleep(0.05)
        except BaseException as e:  # re-raised in the test's thread
            failure.append(e)
        finally:
            xt.close()
            rec.stop("injected")

    thread = threading.Thread(target=run)
    thread.start()
    summary = rec.run(install_signals=False, on_status=status)
    thread.join()
    if failure:
        raise failure[0]
    return Session.open(summary.path), summary


def _frame_sums(ses: Session, axis: int, start_ns: int) -> np.ndarray:
    """The definition of a relative axis per frame, from the session's own axis log and timestamps."""
    log = ses.axis_events
    mine = log[log["axis"] == axis]
    edges = np.concatenate([[start_ns], ses.timestamps[:]])
    out = np.zeros(len(ses), np.float64)
    for i in range(len(ses)):
        sel = (mine["t_ns"] > edges[i]) & (mine["t_ns"] <= edges[i + 1])
        out[i] = mine["value"][sel].astype(np.float64).sum()
    return out


def test_relative_motion_and_wheel_are_recorded_per_frame_exactly(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sent: list[tuple[int, int, int]] = []  # (t_ns just before sending, dx, dy)
    wheel_sent: list[int] = []
    rng = np.random.default_rng(14)

    def inject(xt: XTest) -> None:
        # ~600 moves as fast as XTest takes them (a high-rate mouse, spanning many writer batches),
        # with wheel notches among them.
        for i in range(600):
            dx, dy = int(rng.integers(-9, 10)), int(rng.integers(-9, 10))
            if dx == 0 and dy == 0:
                dx = 1
            t = monotonic_ns()
            xt.move_by(dx, dy)
            sent.append((t, dx, dy))
            if i % 50 == 7:
                button = 4 if i % 100 == 7 else 5
                xt.click(button)
                wheel_sent.append(1 if button == 4 else -1)
            if i % 100 == 99:
                time.sleep(0.03)  # let frames pass between bursts

    statuses: list[str] = []
    ses, summary = _record(tmp_path, xvfb.display, ["mouse_left", "mouse_dx", "mouse_dy", "wheel"], inject, "rel",
                           statuses)
    assert ses.meta["actions"] == ["mouse_left"] and ses.axis_names == ["mouse_dx", "mouse_dy", "wheel"]
    assert ses.axes.shape == (len(ses), 3) and ses.axes.dtype == np.float32
    log = ses.axis_events
    # Every injected delta is in the log, in order, stamped no earlier than it was sent.
    dx_log, dy_log = log[log["axis"] == 0], log[log["axis"] == 1]
    assert dx_log["value"].tolist() == [float(dx) for _, dx, _ in sent if dx != 0]
    assert dy_log["value"].tolist() == [float(dy) for _, _, dy in sent if dy != 0]
    t_sent_dx = np.array([t for t, dx, _ in sent if dx != 0], np.int64)
    assert (dx_log["t_ns"] >= t_sent_dx).all()
    wheel_log = log[log["axis"] == 2]
    assert wheel_log["value"].tolist() == [float(w) for w in wheel_sent]
    # Per frame: exactly the logged motion in (t[i-1], t[i]]; all of it once, since the first injection came
    # after the first frame and the recording ran past the last.
    start = int(ses.timestamps[0]) - 1  # nothing was sent before frame 0
    for axis, total in ((0, sum(dx for _, dx, _ in sent)), (1, sum(dy for _, _, dy in sent)), (2, sum(wheel_sent))):
        np.testing.assert_array_equal(ses.axes[:, axis].astype(np.float64), _frame_sums(ses, axis, start))
        assert float(ses.axes[:, axis].astype(np.float64).sum()) == total
    assert (ses.axes[:, 0] != 0).sum() >= 3  # the motion is spread over several frames, not one
    assert not ses.events.size  # no button was pressed
    # Every event came from the XTest pointer, flagged injected (what takeover tells the engine's own by).
    assert ses.meta["frames"] == summary.frames and summary.axis_events == len(log)
    assert f"axes mouse_dx, mouse_dy, wheel: {len(log)} events logged" in summary.lines()
    assert any(" axis events" in line for line in statuses)


def test_pointer_position_is_in_0_1_across_the_region(xvfb, tmp_path) -> None:  # type: ignore[no-untyped-def]
    x0, y0, w, h = REGION
    targets = [(x0 + 10, y0 + 20), (x0 + w - 1, y0 + h - 1), (x0 + 500, y0 + 400), (x0, y0)]
    sent: list[tuple[int, int, int]] = []

    def inject(xt: XTest) -> None:
        for x, y in targets:
            t = monotonic_ns()
            xt.move_to(x, y)
            sent.append((t, x, y))
            time.sleep(0.1)  # a few frames at each place

    ses, _ = _record(tmp_path, xvfb.display, ["mouse_left", "mouse_x", "mouse_y"], inject, "abs")
    assert ses.axis_names == ["mouse_x", "mouse_y"]
    ax = ses.axes[:]
    assert ((ax >= 0) & (ax <= 1)).all()
    ts = ses.timestamps[:]
    log = ses.axis_events
    for (t, x, y), (t_next, *_) in zip(sent, [*sent[1:], (np.iinfo(np.int64).max, 0, 0)], strict=True):
        want = (min(1.0, max(0.0, (x - x0) / (w - 1))), min(1.0, max(0.0, (y - y0) / (h - 1))))
        # Frames captured once the move was logged (or, when the position did not change and so nothing was
        # logged, once it was sent) and before the next move was sent show it.
        logged = log["t_ns"][(log["t_ns"] >= t) & (log["t_ns"] < t_next)]
        frames = (ts >= (logged.max() if len(logged) else t)) & (ts < t_next)
        assert frames.any(), f"no frame while the pointer was at {(x, y)}"
        np.testing.assert_allclose(ax[frames], np.broadcast_to(want, ax[frames].shape), atol=1e-6)
    for axis, value in ((0, 10 / 63), (1, 20 / 47), (0, 1.0), (1, 1.0), (0, 0.0), (1, 0.0)):
        assert np.isclose(log["value"][log["axis"] == axis], value, atol=1e-6).any(), (axis, value)


def test_unconfigured_axes_are_never_read(xvfb) -> None:  # type: ignore[no-untyped-def]
    xt = XTest(xvfb.display)
    wheel_only = X11Input(["mouse_left"], [], xvfb.display, axes=["wheel"])
    dx_only = X11Input(["mouse_left"], [], xvfb.display, axes=["mouse_dx"])
    keys_only = X11Input(["mouse_left"], [], xvfb.display)
    for src in (wheel_only, dx_only, keys_only):
        src.start()
    try:
        time.sleep(0.1)
        xt.move_by(0, 7)  # dy only
        xt.move_by(3, 0)
        xt.click(4)
        deadline = time.monotonic() + 10
        got: dict[int, list] = {0: [], 1: [], 2: []}
        sources: set[tuple[int, int]] = set()
        while time.monotonic() < deadline and not (got[0] and got[1]):
            for i, src in enumerate((wheel_only, dx_only, keys_only)):
                _, a, v, dev, inj = src.poll_axes()
                got[i] += list(zip(a.tolist(), v.tolist(), strict=True))
                sources |= set(zip(dev.tolist(), inj.tolist(), strict=True))
            time.sleep(0.02)
        assert got[0] == [(0, 1.0)]  # the notch; no motion
        assert got[1] == [(0, 3.0)]  # dx only: the dy move and the wheel are not read
        assert got[2] == []
        # Each event names its source: the XTest pointer slave, flagged injected (takeover's test).
        assert len(sources) == 1 and next(iter(sources))[1] == 1 and next(iter(sources))[0] > 0
    finally:
        for src in (wheel_only, dx_only, keys_only):
            src.stop()
        xt.close()


def test_raw_motion_is_read_while_another_client_grabs_the_pointer(xvfb) -> None:  # type: ignore[no-untyped-def]
    """Mouse-look games grab the pointer: raw motion still reaches the listener (it asks for XInput 2.2 on
    its event connection; before 2.1 the server sent raw events only to the grabbing client)."""
    x = ctypes.CDLL("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = ctypes.c_ulong
    x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x.XGrabPointer.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_uint, ctypes.c_int,
                               ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    game = x.XOpenDisplay(xvfb.display.encode())
    assert game
    xt = XTest(xvfb.display)
    src = X11Input(["mouse_left"], [], xvfb.display, axes=["mouse_dx", "mouse_dy"])
    src.start()
    try:
        pointer_motion, grab_async = 1 << 6, 1
        assert x.XGrabPointer(game, x.XDefaultRootWindow(game), 0, pointer_motion, grab_async, grab_async, 0, 0,
                              0) == 0  # GrabSuccess
        x.XSync(game, 0)
        for _ in range(5):
            xt.move_by(2, -3)
        deadline = time.monotonic() + 10
        got: list[tuple[int, float]] = []
        while time.monotonic() < deadline and len(got) < 10:
            _, a, v, _, _ = src.poll_axes()
            got += list(zip(a.tolist(), v.tolist(), strict=True))
            time.sleep(0.02)
        assert got == [(0, 2.0), (1, -3.0)] * 5
    finally:
        src.stop()
        xt.close()
        x.XCloseDisplay(game)


def test_a_burst_longer_than_one_read_arrives_whole_and_in_order(xvfb) -> None:  # type: ignore[no-untyped-def]
    """4000 raw motions (68 bytes each on the wire, ~270 KB) sent faster than the listener reads: its reads
    take up to 64 KB, so events straddle them; every delta comes out once, in order."""
    xt = XTest(xvfb.display)
    src = X11Input(["mouse_left"], [], xvfb.display, axes=["mouse_dx"])
    src.start()
    try:
        sent = [float((i % 13) - 6 or 7) for i in range(4000)]
        xt.move_burst([int(d) for d in sent])
        got: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(got) < len(sent):
            time.sleep(0.05)
            got += src.poll_axes()[2].tolist()
        assert got == sent
    finally:
        src.stop()
        xt.close()


def test_the_x_server_going_away_is_one_error_after_what_came(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.xvfb import Xvfb

    server = Xvfb().start()
    src = X11Input(["mouse_left"], [], server.display, axes=["mouse_dx"])
    src.start()
    try:
        xt = XTest(server.display)
        xt.move_by(4, 0)
        xt.close()
        got: list[float] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not got:
            got += src.poll_axes()[2].tolist()
            time.sleep(0.02)
        assert got == [4.0]
        server.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not src.error:
            assert len(src.poll_axes()[0]) == 0
            time.sleep(0.02)
        assert "connection" in src.error and "\n" not in src.error
    finally:
        src.stop()
        server.stop()


def test_bad_axis_configurations_are_one_line(xvfb, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    for actions, says in (("a,pad_a", "needs an evdev input"), ("a,pad_lx", "needs an evdev input"),
                          ("a,mouse_x", "--pad needs --input evdev")):
        extra = ["--pad", "xbox"] if "mouse_x" in actions else []
        code = record_main([*extra, "--actions", actions, "--region", "0,0,64,48", "--display", xvfb.display,
                            "--data-dir", str(tmp_path), "--countdown", "0", "--duration", "0.2"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and says in err[0], err
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())

