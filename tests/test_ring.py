"""Frame rings: a native producer at full speed against a Python consumer, both modes.

Every frame is accounted for (received or counted dropped) and none is torn: each frame's bytes are a
function of its sequence number (native/tests/stress_producer.hpp, built into engine._native_testing),
checked in full.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from engine import _native
from engine._pacer import monotonic_ns

SHAPE = (48, 64)
FRAME_BYTES = SHAPE[0] * SHAPE[1]
_K = np.arange(FRAME_BYTES, dtype=np.uint64)


def expected(seq: int) -> np.ndarray:
    """The stress producer's pattern: bytes [0, 8) hold seq, byte k holds (seq * 131 + k) & 0xff."""
    f = ((np.uint64(seq) * np.uint64(131) + _K) & np.uint64(0xFF)).astype(np.uint8)
    f[:8] = np.frombuffer(np.uint64(seq).tobytes(), np.uint8)
    return f.reshape(SHAPE)


def seq_of(frame: np.ndarray) -> int:
    return int(np.frombuffer(frame.reshape(-1)[:8].tobytes(), np.uint64)[0])


@pytest.mark.parametrize("capacity", [4, 64])
def test_queue_every_frame_received_or_counted_dropped(capacity: int, native_testing: ModuleType) -> None:
    n = 20000
    queue = _native.FrameQueue(capacity, SHAPE)
    producer = native_testing.StressProducer(queue, n)
    frames = np.empty((256, *SHAPE), np.uint8)
    t_ns = np.empty(256, np.int64)
    ticks = np.empty(256, np.uint64)
    received: list[int] = []
    producer.start()
    while not producer.done or queue.available():
        got = queue.pop_into(frames, t_ns, ticks) if queue.wait(0.01) else 0
        for i in range(got):
            seq = seq_of(frames[i])
            assert seq == ticks[i]
            assert np.array_equal(frames[i], expected(seq)), f"frame {seq} torn"
            received.append(seq)
    producer.join()
    assert received == sorted(received) and len(set(received)) == len(received)
    assert len(received) == producer.published
    assert len(received) + queue.dropped == n
    assert producer.dropped == queue.dropped


def test_queue_in_place_views_are_zero_copy_and_read_only(native_testing: ModuleType) -> None:
    queue = _native.FrameQueue(8, SHAPE)
    producer = native_testing.StressProducer(queue, 5)
    producer.start()
    producer.join()
    assert queue.available() == 5
    view = queue.frame(2)
    assert not view.flags.writeable and not view.flags.owndata
    assert np.array_equal(view, expected(2)) and queue.tick(2) == 2
    queue.pop(3)
    assert queue.available() == 2 and seq_of(queue.frame(0)) == 3
    with pytest.raises(IndexError):
        queue.frame(2)


def test_latest_ring_windows_are_contiguous_recent_and_never_torn(native_testing: ModuleType) -> None:
    """A reader that always wants the newest window sees every published frame either as the newest of
    a window it accepted or as skipped over between two such windows (a torn copy is one way to skip:
    the next attempt is on a newer frame). Every accepted window is checked byte for byte."""
    n, window = 30000, 4
    ring = _native.LatestRing(window, SHAPE, slack=2)
    producer = native_testing.StressProducer(ring, n)
    out = np.empty((window, *SHAPE), np.uint8)
    accepted = skipped = 0
    accepted_ends: set[int] = set()
    torn: set[int] = set()  # ends whose copy the producer overwrote meanwhile: reported, never used
    last_end = -1  # frames 0..window-2 are skipped by construction: no complete window ends there

    def take(end: int) -> bool:
        nonlocal accepted, skipped, last_end
        stamp = ring.copy_window(end, out)
        if stamp is None:
            torn.add(end)
            return False
        for k in range(window):
            assert np.array_equal(out[k], expected(end - window + 1 + k)), f"torn frame in window {end}"
        assert stamp[1] == end
        assert end > last_end, f"window {end} taken twice or out of order (after {last_end})"
        accepted += 1
        accepted_ends.add(end)
        skipped += end - last_end - 1
        last_end = end
        return True

    producer.start()
    while not producer.done:
        # A complete window strictly newer than the last accepted one.
        after = max(last_end + 1, window - 1)
        published = ring.wait_newer(after, 0.05)
        if published > after:
            take(published - 1)
    producer.join()
    assert ring.published == producer.published == n
    if last_end < n - 1:
        assert take(n - 1), "the final window tore with no producer running"
    assert last_end == n - 1
    assert accepted + skipped == ring.published  # every frame accepted as a newest or skipped over
    assert len(accepted_ends) == accepted > 100
    # A torn end is never accepted later (its slots stay overwritten): it is one of the skipped frames.
    assert not torn & accepted_ends
    assert len(torn) <= skipped


def test_latest_ring_keeps_the_newest_window(native_testing: ModuleType) -> None:
    ring = _native.LatestRing(3, SHAPE)
    producer = native_testing.StressProducer(ring, 10)
    producer.start()
    producer.join()
    out = np.empty((3, *SHAPE), np.uint8)
    assert ring.copy_window(9, out) == (ring.t_ns(9), 9)
    assert [seq_of(f) for f in out] == [7, 8, 9]
    with pytest.raises(IndexError):
        ring.copy_window(10, out)


def test_bad_ring_arguments() -> None:
    with pytest.raises(ValueError, match="capacity"):
        _native.FrameQueue(0, SHAPE)
    with pytest.raises(ValueError, match="positive"):
        _native.FrameQueue(4, (0, 3))
    queue = _native.FrameQueue(4, SHAPE)
    with pytest.raises(ValueError, match="frame shape"):
        queue.pop_into(np.empty((2, 3, 3), np.uint8), np.empty(2, np.int64), np.empty(2, np.uint64))
    with pytest.raises(ValueError, match="t_ns"):
        queue.pop_into(np.empty((2, *SHAPE), np.uint8), np.empty(2, np.float64), np.empty(2, np.uint64))


def test_latest_ring_stamps_publish_and_wake_in_order_and_locks() -> None:
    # The play latency breakdown's "published" and "woken" instants (issue #19): a frame is published after
    # its capture stamp, and the wait that returned it saw it after it was published.
    ring = _native.LatestRing(2, (24, 32), 2)
    assert ring.lock() is ring.locked  # True where RLIMIT_MEMLOCK allows 10 pages, never an error
    frame = np.zeros((24, 32), np.uint8)
    for i in range(3):
        t = monotonic_ns()
        _native.push_frame(ring, frame, t, i)
        assert ring.wait_newer(i, 1.0) == i + 1
        assert t <= ring.t_published(i) <= ring.woken_ns <= monotonic_ns()
    assert ring.t_ns(2) <= ring.t_published(2)
