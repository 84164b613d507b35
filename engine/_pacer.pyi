"""engine._pacer: the native pacer (native/timing/pacer.hpp) behind a thin, typed, GIL-free wrapper
(python/_pacer.pyx; written by hand: stub generators do not read Cython). Checked against the module by
``make check`` (``python -m mypy.stubtest engine._native engine._pacer``)."""

from typing import NamedTuple

from typing_extensions import disjoint_base

DEFAULT_SPIN_NS: int

class Tick(NamedTuple):
    """One pacer tick: deadline index, due time, wake time, lateness and ticks dropped before it (ns)."""

    index: int  # type: ignore[assignment]  # a field named like tuple.index, as the runtime namedtuple has
    deadline_ns: int
    now_ns: int
    lateness_ns: int
    skipped: int

def monotonic_ns() -> int:
    """The engine's clock (CLOCK_MONOTONIC / QueryPerformanceCounter) in int64 nanoseconds."""

def sleep_until_ns(deadline_ns: int, spin_ns: int = ...) -> None:
    """Sleep (without the GIL) until an absolute monotonic deadline, spinning the last spin_ns."""

@disjoint_base
class Pacer:
    """Fixed-rate ticks on absolute deadlines: start + i * period. No drift; a tick more than a period
    late is dropped and counted (``skipped``), never caught up in a burst."""

    def __new__(cls, fps: float = 0.0, *, period_ns: int = 0, spin_ns: int = ..., start_ns: int = 0) -> Pacer: ...
    def wait(self) -> Tick:
        """Sleep until the next tick; returns its Tick."""
    def restart(self, start_ns: int = 0) -> None:
        """Shift the schedule so the next tick is due at start_ns (0: now), e.g. after a pause."""
    @property
    def period_ns(self) -> int: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def ticks(self) -> int: ...
    @property
    def late_ticks(self) -> int: ...

@disjoint_base
class Realtime:
    """SCHED_FIFO for the calling thread, asked for once at construction; ``detail`` says what was allowed."""

    @property
    def granted(self) -> bool: ...
    @property
    def priority(self) -> int: ...
    @property
    def detail(self) -> str: ...
    def __new__(cls, priority: int) -> Realtime: ...
    def relax(self) -> None:
        """Back to the thread's previous policy until boost()."""
    def boost(self) -> None:
        """SCHED_FIFO again (only if it was granted)."""
    def close(self) -> None: ...
    def __enter__(self) -> Realtime: ...
    def __exit__(self, *exc: object) -> None: ...

def pin_thread(cpu: int) -> bool:
    """Pin the calling thread to one CPU (< 0: leave it as it is); False if that CPU is not available."""
