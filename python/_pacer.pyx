# cython: language_level=3, boundscheck=False, wraparound=False, autotestdict=False
# distutils: language = c++
"""engine._pacer: the native pacer (native/timing/pacer.hpp) behind a thin, typed, GIL-free wrapper.

wait() sleeps without the GIL until the next absolute deadline on the engine's monotonic clock, so
other Python threads run meanwhile; Ctrl-C is seen at most one period later.
"""
from collections import namedtuple

from libc.stdint cimport int64_t, uint64_t
from libcpp.string cimport string


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


cdef extern from "timing/realtime.hpp" namespace "engine":
    cdef cppclass CSchedState "engine::SchedState":
        int policy
        int priority

    cdef cppclass CSchedResult "engine::SchedResult":
        bint granted
        int priority
        string detail

    CSchedState c_current_sched "engine::current_sched"() nogil
    void c_restore_sched "engine::restore_sched"(const CSchedState& s) nogil
    CSchedResult c_request_realtime "engine::request_realtime"(int priority) nogil
    bint c_pin_thread "engine::pin_thread"(int cpu) nogil


cdef class Realtime:
    """SCHED_FIFO for the calling thread (native/timing/realtime.hpp), asked for once at construction.

    ``granted`` and ``detail`` ("SCHED_FIFO 10 granted" or why it was refused) say what the system allowed;
    a refusal is not an error, the thread just keeps its ordinary policy. ``relax()`` puts the thread back on
    its previous policy (e.g. around a long model invoke, so it does not hold a core against the game),
    ``boost()`` raises it again, ``close()`` (or leaving the ``with`` block) restores it for good. Call every
    method from the thread that created it."""

    cdef CSchedState _saved
    cdef readonly bint granted
    cdef readonly int priority
    cdef readonly str detail
    cdef bint _boosted

    def __cinit__(self, int priority):
        cdef CSchedResult r
        self._saved = c_current_sched()
        r = c_request_realtime(priority)
        self.granted = r.granted
        self.priority = r.priority
        self.detail = r.detail.decode()
        self._boosted = r.granted

    def relax(self):
        """Back to the thread's previous policy until boost()."""
        if self._boosted:
            c_restore_sched(self._saved)
            self._boosted = False

    def boost(self):
        """SCHED_FIFO again (only if it was granted)."""
        if self.granted and not self._boosted:
            self._boosted = c_request_realtime(self.priority).granted

    def close(self):
        self.relax()
        self.granted = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pin_thread(int cpu):
    """Pin the calling thread to one CPU (< 0: leave it as it is); False if that CPU is not available."""
    return c_pin_thread(cpu)
