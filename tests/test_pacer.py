"""The pacer: absolute deadlines, no drift, late ticks dropped and counted (no timing assertions)."""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import Pacer, _native, monotonic_ns, sleep_until_ns
from engine._pacer import Realtime


def test_many_ticks_at_1khz_have_no_cumulative_drift() -> None:
    pacer = Pacer(1000.0)
    ticks = [pacer.wait() for _ in range(2000)]
    for t in ticks:
        # The schedule is absolute: tick i is due at start + i * period, whatever happened before.
        assert t.deadline_ns == pacer.start_ns + t.index * pacer.period_ns
        assert t.now_ns >= t.deadline_ns and t.lateness_ns == t.now_ns - t.deadline_ns
    indices = [t.index for t in ticks]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert pacer.ticks == 2000
    assert ticks[-1].index + 1 == pacer.ticks + pacer.late_ticks  # every deadline served or counted late


def test_a_tick_over_a_period_late_is_dropped_not_caught_up() -> None:
    pacer = Pacer(period_ns=2_000_000)
    pacer.wait()
    late_before = pacer.late_ticks  # the first wait may have dropped ticks itself, on a busy machine
    sleep_until_ns(monotonic_ns() + 9_000_000)  # the deadlines at 2, 4 and 6 ms pass unserved
    before = monotonic_ns()
    t = pacer.wait()
    assert t.skipped >= 3 and pacer.late_ticks - late_before == t.skipped
    # The tick taken is the latest one due when wait() read the clock (at or after `before`), not the
    # oldest: no burst of catch-up ticks follows. (No bound here depends on the machine's speed.)
    assert before - pacer.period_ns < t.deadline_ns <= t.now_ns
    nxt = pacer.wait()
    assert nxt.index == t.index + 1 + nxt.skipped and nxt.deadline_ns > t.deadline_ns


def test_restart_after_a_pause_counts_nothing_late() -> None:
    pacer = Pacer(period_ns=1_000_000)
    first = pacer.wait()
    late_before = pacer.late_ticks
    sleep_until_ns(monotonic_ns() + 5_000_000)  # 5 deadlines pass unserved
    due = monotonic_ns() + 20_000_000  # in the future, so no preemption before wait() can make it late
    pacer.restart(due)
    t = pacer.wait()
    assert t.skipped == 0 and t.index == first.index + 1 and pacer.late_ticks == late_before
    assert t.deadline_ns == due and t.now_ns >= due


def test_clock_is_the_native_clock() -> None:
    a = monotonic_ns()
    b = _native.monotonic_ns()
    c = monotonic_ns()
    assert a <= b <= c


@pytest.mark.parametrize("kwargs", [{"fps": 0.0}, {"fps": -5.0}, {"period_ns": -1}])
def test_bad_rates_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Pacer(**kwargs)


def test_capture_loop_counts_every_tick(xvfb: object) -> None:
    from engine.capture import CaptureStream, open_source

    stream = CaptureStream(open_source(region=(0, 0, 64, 48)), fps=500, mode="latest", window=1)
    with stream:
        stream.sink.wait_newer(200, 5.0)
    stats = stream.stats()
    log = stream.lateness_log()
    assert stats["frames"] == stream.sink.published and stats["frames"] >= 200
    assert stats["ticks"] == stats["frames"]  # the latest ring never refuses a frame
    assert len(log) == stats["ticks"] and (log >= 0).all()


def _as_child(code: str, rtprio: int | None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child whose RLIMIT_RTPRIO is ``rtprio`` (None: as ours) and, when we are root, without
    CAP_SYS_NICE (dropped from its bounding set, so the limit is what decides)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before the fork: only the call runs in the child
    root = os.geteuid() == 0

    def drop() -> None:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (rtprio, rtprio))
        if root:
            pr_capbset_drop, cap_sys_nice = 24, 23  # linux/prctl.h, linux/capability.h
            prctl(pr_capbset_drop, cap_sys_nice, 0, 0, 0)

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=None if rtprio is None else drop, cwd=Path(__file__).parent)


def test_realtime_is_granted_up_to_rlimit_rtprio_and_refused_without_it() -> None:
    code = "from engine._pacer import Realtime\nr = Realtime(20)\nprint(r.granted, r.priority, r.detail)\nr.close()"
    refused = _as_child(code, 0)
    assert refused.returncode == 0, refused.stderr
    assert refused.stdout.startswith("False 0 SCHED_FIFO refused"), refused.stdout
    if resource.getrlimit(resource.RLIMIT_RTPRIO)[1] >= 5:
        granted = _as_child(code, 5)  # asked for 20, allowed 5: clamped to the limit
        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.strip() == "True 5 SCHED_FIFO 5 granted"
    elif os.geteuid() == 0:  # no room under the hard limit, but root's CAP_SYS_NICE grants it
        granted = _as_child(code, None)
        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.strip() == "True 20 SCHED_FIFO 20 granted"
    else:
        pytest.skip("granting needs root or a hard RLIMIT_RTPRIO >= 5")


def test_realtime_restores_the_thread_policy() -> None:
    before = os.sched_getscheduler(0)
    with Realtime(10) as rt:
        if rt.granted:
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
            rt.relax()
            assert os.sched_getscheduler(0) == before
            rt.boost()
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
    assert os.sched_getscheduler(0) == before


def test_play_summary_says_realtime_was_refused_and_plays_anyway() -> None:
    # A replay run (no display) in a child with RLIMIT_RTPRIO 0: the loop plays, and the summary line says so.
    code = (
        "import numpy as np\n"
        "from engine.actions.outputs import NullOutput\n"
        "from engine.play import Model\n"
        "from engine.play.loop import Player\n"
        "m = Model.load('fixtures/models/brighter_half.tflite')\n"
        "p = Player(m, NullOutput(len(m.spec.actions)), kill_key=None)\n"
        "s = p.replay(np.zeros((20, 24, 32), np.uint8), np.arange(20, dtype=np.int64) * 10_000_000,"
        " install_signals=False)\n"
        "print(s.decisions, s.scheduling)\n"
    )
    out = _as_child(code, 0)
    assert out.returncode == 0, out.stderr
    decisions, line = out.stdout.strip().split(" ", 1)
    assert int(decisions) > 0 and line.startswith("play loop SCHED_FIFO refused (")


def _cpu_wake_latency_us() -> int:
    """The kernel's current PM QoS CPU latency target (what every idle CPU honours): 2000 s when nobody asks."""
    import struct

    with open("/dev/cpu_dma_latency", "rb") as f:
        return int(struct.unpack("i", f.read(4))[0])


def test_capture_asks_for_no_wake_up_latency_while_it_runs(xvfb: object) -> None:
    """With real-time scheduling asked for, the capture thread holds a PM QoS request of 0 us while it runs (the
    kernel's own value says so), drops it when it stops, and asks for nothing with realtime=0. The value can
    only be read where it can be written (root), so the refused line is checked only where that differs."""
    from engine.capture import CaptureStream, open_source

    if not os.access("/dev/cpu_dma_latency", os.R_OK):
        pytest.skip("/dev/cpu_dma_latency is not readable here (not root): the kernel's value cannot be checked")
    before = _cpu_wake_latency_us()  # 2000 s unless something else holds a request (then the checks weaken)
    for realtime in (0, 20):
        stream = CaptureStream(open_source(region=(0, 0, 64, 48)), fps=200, mode="latest", window=1, realtime=realtime)
        with stream:
            stream.sink.wait_newer(20, 5.0)
            during, line = _cpu_wake_latency_us(), stream.scheduling
        assert _cpu_wake_latency_us() == before  # released with the thread
        if realtime == 0:
            assert during == before and "PM QoS" not in line
        elif os.access("/dev/cpu_dma_latency", os.W_OK):
            assert during == 0 and line.endswith(", wake-up latency 0 us (PM QoS) granted"), line
        else:
            assert during == before and "wake-up latency 0 us (PM QoS) refused (" in line, line


_SCHED_ATTR = "IIQiIQQQII"  # struct sched_attr, SCHED_ATTR_SIZE_VER1 (56 bytes); field 5 is sched_runtime


def _sched_attr(pid: int) -> list[int]:
    buf = ctypes.create_string_buffer(56)
    if ctypes.CDLL(None, use_errno=True).syscall(315, pid, buf, 56, 0) != 0:  # SYS_sched_getattr on x86_64
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return list(struct.unpack(_SCHED_ATTR, buf.raw))


def _slice_ns(pid: int) -> int:
    """The kernel's sched_getattr sched_runtime of a process (an ordinary thread's time slice, Linux 6.12+)."""
    return _sched_attr(pid)[5]


def _set_slice_ns(pid: int, ns: int) -> None:
    a = _sched_attr(pid)
    a[0], a[2], a[5] = 56, 0, ns
    buf = ctypes.create_string_buffer(struct.pack(_SCHED_ATTR, *a), 56)
    if ctypes.CDLL(None, use_errno=True).syscall(314, pid, buf, 0) != 0:  # SYS_sched_setattr on x86_64
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="the sched_getattr system call number is x86_64's")
def test_capture_gives_the_x_server_the_shortest_slice_while_it_runs(xvfb: Any) -> None:
    """With real-time scheduling asked for, the X server serving the grabs gets a 0.1 ms slice while capture
    runs (the kernel's own read-back of the Xvfb process says so) and its own back when capture stops;
    realtime=0 asks for nothing. A recording's capture thread grabs at ordinary priority with that slice too;
    a play capture (mode "latest") grabs under SCHED_FIFO, its wait for the server kicked. On a kernel
    without ordinary-thread slices the line says so and nothing changes."""
    import time

    from engine.capture import CaptureStream, open_source

    pid = xvfb.proc.pid
    if _slice_ns(pid) == 100_000:  # left by a capture an earlier test killed: start from the kernel's default
        _set_slice_ns(pid, 0)
    before = _slice_ns(pid)
    for realtime, mode in ((0, "latest"), (20, "queue"), (20, "latest")):
        stream = CaptureStream(open_source(region=(0, 0, 64, 48), display=xvfb.display), fps=200, mode=mode,
                               window=1, realtime=realtime)
        with stream:
            deadline = time.monotonic() + 5.0
            while stream.stats()["frames"] < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            during, line = _slice_ns(pid), stream.scheduling
        assert _slice_ns(pid) == before  # put back when the thread ended
        if realtime == 0:
            assert during == before and "slice" not in line, line
            continue
        if f"X server (pid {pid}) slice 0.1 ms granted" in line:
            assert during == 100_000, line
        else:
            assert during == before and f"X server (pid {pid}) slice 0.1 ms not supported" in line, line
        if not line.startswith("SCHED_FIFO 20 granted"):
            continue  # refused here: the thread keeps its ordinary policy, with the slice where the kernel has it
        if mode == "queue":
            assert line.startswith("SCHED_FIFO 20 granted (for its tick), slice 0.1 ms "), line
        else:
            assert line.startswith("SCHED_FIFO 20 granted (for its tick and grab, its wait for the server kicked "
                                   "every 0.15 ms), X server"), line
    # A Python backend (mss) names no server process: nothing asked of the server, its grab not kicked.
    with CaptureStream(open_source(region=(0, 0, 64, 48), display=xvfb.display, backend="mss"), fps=200,
                       mode="latest", window=1, realtime=20) as stream:
        deadline = time.monotonic() + 5.0
        while stream.stats()["frames"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        mss_line = stream.scheduling
    assert "kicked" not in mss_line and "slice not asked for (no local server process" in mss_line, mss_line
    assert _slice_ns(pid) == before
    if _slice_ns(pid) == 100_000 or "X server" not in line or "slice 0.1 ms granted" not in line.split("X server")[1]:
        return
    # A capture killed before it could put the slice back leaves it on the server: the next one puts back the
    # kernel's default (what the server had before any of this).
    _set_slice_ns(pid, 100_000)
    with CaptureStream(open_source(region=(0, 0, 64, 48), display=xvfb.display), fps=200, mode="queue") as stream:
        time.sleep(0.05)
    assert _slice_ns(pid) == before
