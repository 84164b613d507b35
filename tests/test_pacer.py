"""The pacer: absolute deadlines, no drift, late ticks dropped and counted (no timing assertions)."""

from __future__ import annotations

import pytest

from engine import Pacer, _native, monotonic_ns, sleep_until_ns


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
