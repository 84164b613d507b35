# cython: language_level=3, boundscheck=False, wraparound=False, autotestdict=False
# distutils: language = c++
"""engine._pacer: the native pacer (native/timing/pacer.hpp) behind a thin, typed, GIL-free wrapper.

wait() sleeps without the GIL until the next absolute deadline on the engine's monotonic clock, so
other Python threads run meanwhile; Ctrl-C is seen at most one period later.
"""
from collections import namedtuple

from libc.stdint cimport int64_t, uint64_t


cdef extern from "common/clock.hpp" namespace "engine":
    int64_t c_monotonic_ns "engine::monotonic_ns"() nogil


cdef extern from "timing/pacer.hpp" namespace "engine":
    cdef struct CTick "engine::Tick":
        int64_t index
        int64_t deadline_ns
        int64_t now_ns
        int64_t lateness_ns
        int64_t skipped

    cdef cppclass CPacer "engine::Pacer":
        CPacer(int64_t period_ns, int64_t spin_ns, int64_t start_ns) except +
        CTick wait() nogil
        void restart(int64_t start_ns) nogil
        int64_t period_ns()
        int64_t spin_ns()
        int64_t start_ns()
        uint64_t ticks()
        uint64_t late_ticks()

    void c_sleep_until_ns "engine::sleep_until_ns"(int64_t deadline_ns, int64_t spin_ns) nogil
    int64_t kDefaultSpinNs "engine::Pacer::kDefaultSpinNs"


Tick = namedtuple("Tick", "index deadline_ns now_ns lateness_ns skipped")
Tick.__doc__ = "One pacer tick: deadline index, due time, wake time, lateness and ticks dropped before it (ns)."

DEFAULT_SPIN_NS = kDefaultSpinNs


def monotonic_ns():
    """The engine's clock (CLOCK_MONOTONIC / QueryPerformanceCounter) in int64 nanoseconds."""
    return c_monotonic_ns()


def sleep_until_ns(int64_t deadline_ns, int64_t spin_ns=kDefaultSpinNs):
    """Sleep (without the GIL) until an absolute monotonic deadline, spinning the last spin_ns."""
    with nogil:
        c_sleep_until_ns(deadline_ns, spin_ns)


cdef class Pacer:
    """Fixed-rate ticks on absolute deadlines: start + i * period. No drift; a tick more than a period
    late is dropped and counted (``skipped``), never caught up in a burst."""

    cdef CPacer* _p

    def __cinit__(self, double fps=0.0, *, int64_t period_ns=0, int64_t spin_ns=kDefaultSpinNs,
                  int64_t start_ns=0):
        if period_ns <= 0:
            if not fps > 0:
                raise ValueError(f"fps must be positive, got {fps!r}")
            period_ns = <int64_t>(1e9 / fps + 0.5)
        self._p = new CPacer(period_ns, spin_ns, start_ns)

    def __dealloc__(self):
        del self._p

    def wait(self):
        """Sleep until the next tick; returns its Tick."""
        cdef CTick t
        with nogil:
            t = self._p.wait()
        return Tick(t.index, t.deadline_ns, t.now_ns, t.lateness_ns, t.skipped)

    def restart(self, int64_t start_ns=0):
        """Shift the schedule so the next tick is due at start_ns (0: now), e.g. after a pause."""
        self._p.restart(start_ns)

    @property
    def period_ns(self):
        return self._p.period_ns()

    @property
    def start_ns(self):
        return self._p.start_ns()

    @property
    def ticks(self):
        return self._p.ticks()

    @property
    def late_ticks(self):
        return self._p.late_ticks()
