"""Numba kernels of the dataset pipeline, and the validated Python entry points that call them.

Four kernels, each with a plain NumPy twin in :mod:`engine.dataset._reference` (the test oracle):

``segment_bounds``  gap detection: split a session's timestamps into runs of evenly spaced frames.
``window_ends``     window index generation: the last frame of every window that fits in a run.
``balance_select``  balancing: which windows (with repeats when oversampling) to keep per class.
``gather``          the batch gather: the frames of many windows, from the sessions' memory maps, into one
                    contiguous batch, as uint8 or as float32 through the play-time lookup table.

Every kernel that is worth running on several cores has a serial and a parallel driver around one shared
body, so both paths are tested against the same twin; ``parallel=None`` picks by problem size (thread
start-up costs a few microseconds, which small calls would not earn back). Kernels trust their inputs
(Numba does not bounds-check), so the entry points here validate them first, in O(n) NumPy.

Over 400 lines on purpose: each kernel sits beside the entry point that validates its inputs and its
serial/parallel drivers; apart, a kernel would lose the checks that make it safe to call.

All kernels are compiled with ``cache=True``: the first call in a fresh environment compiles (seconds),
later processes load the machine code from ``__pycache__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numba.typed import List as TypedList

# Work items a parallel chunk handles; large enough that scheduling is noise, small enough to balance.
_CHUNK = 1 << 16
# Below these sizes the serial driver is used when parallel=None.
_PARALLEL_MIN_ITEMS = 1 << 18  # timestamps / windows
_PARALLEL_MIN_BYTES = 1 << 21  # gathered bytes
# Frames per dynamically scheduled gather chunk. Static scheduling (Numba's default) makes a parallel call
# wait for its slowest thread, which on a busy 2-core machine was 4x slower than serial.
_GATHER_CHUNK = 8
_INT64_MAX = int(np.iinfo(np.int64).max)


# ---- gap detection -------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _is_break(ts: np.ndarray, i: int, max_gap_ns: int) -> bool:
    # A non-increasing timestamp cannot happen in a valid session; treat it as a break rather than
    # let a window span it.
    d = ts[i] - ts[i - 1]
    return d > max_gap_ns or d <= 0


@njit(cache=True)
def _count_breaks(ts: np.ndarray, max_gap_ns: int, lo: int, hi: int) -> int:
    k = 0
    for i in range(max(lo, 1), hi):
        if _is_break(ts, i, max_gap_ns):
            k += 1
    return k


@njit(cache=True)
def _fill_breaks(ts: np.ndarray, max_gap_ns: int, lo: int, hi: int, out: np.ndarray, pos: int) -> None:
    for i in range(max(lo, 1), hi):
        if _is_break(ts, i, max_gap_ns):
            out[pos] = i
            pos += 1


@njit(cache=True)
def _bounds_from_counts(ts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    n = ts.shape[0]
    if n == 0:
        return np.zeros(1, np.int64)
    out = np.empty(counts.sum() + 2, np.int64)
    out[0] = 0
    out[-1] = n
    return out


@njit(cache=True)
def _segment_bounds_serial(ts: np.ndarray, max_gap_ns: int) -> np.ndarray:
    counts = np.array([_count_breaks(ts, max_gap_ns, 0, ts.shape[0])], np.int64)
    out = _bounds_from_counts(ts, counts)
    if ts.shape[0]:
        _fill_breaks(ts, max_gap_ns, 0, ts.shape[0], out, 1)
    return out


@njit(cache=True, parallel=True)
def _segment_bounds_parallel(ts: np.ndarray, max_gap_ns: int) -> np.ndarray:
    n = ts.shape[0]
    chunks = (n + _CHUNK - 1) // _CHUNK
    counts = np.zeros(max(chunks, 1), np.int64)
    for c in prange(chunks):
        counts[c] = _count_breaks(ts, max_gap_ns, c * _CHUNK, min(n, (c + 1) * _CHUNK))
    out = _bounds_from_counts(ts, counts)
    first = np.empty(max(chunks, 1), np.int64)  # where each chunk's breaks go in out
    pos = 1
    for c in range(chunks):
        first[c] = pos
        pos += counts[c]
    for c in prange(chunks):
        _fill_breaks(ts, max_gap_ns, c * _CHUNK, min(n, (c + 1) * _CHUNK), out, first[c])
    return out


def max_gap_ns(fps: float, periods: float = 1.5) -> int:
    """The longest step between consecutive timestamps that is not a gap: ``periods`` frame periods,
    in whole ns (a step d is a gap when d > periods / fps; d is an integer, so comparing with the floor
    is the same test)."""
    if not fps > 0 or not periods > 0:
        raise ValueError(f"fps and the gap threshold must be > 0, got fps={fps}, periods={periods}")
    # Clamped to int64 (the kernels' type): no step between int64 timestamps exceeds it, so a larger
    # threshold means the same thing, "never a gap".
    ns = periods * 1e9 / fps
    return _INT64_MAX if ns >= _INT64_MAX else int(ns)


def segment_bounds(timestamps: np.ndarray, max_gap_ns: int, *, parallel: bool | None = None) -> np.ndarray:
    """Split frames into runs without gaps: returns ``bounds`` (S+1,) int64 with run s = frames
    ``[bounds[s], bounds[s+1])``, bounds[0] = 0 and bounds[-1] = T (just ``[0]`` when T = 0).

    Frame i > 0 starts a new run when ``timestamps[i] - timestamps[i-1]`` exceeds ``max_gap_ns`` (a
    pause, or dropped frames) or is not positive.
    """
    ts = np.ascontiguousarray(timestamps, dtype=np.int64)
    if ts.ndim != 1:
        raise ValueError(f"timestamps must be 1-D, got shape {ts.shape}")
    if parallel is None:
        parallel = ts.shape[0] >= _PARALLEL_MIN_ITEMS
    if not parallel:
        return _segment_bounds_serial(ts, int(max_gap_ns))
    with numba.parallel_chunksize(1):
        return _segment_bounds_parallel(ts, int(max_gap_ns))


# ---- window index generation ---------------------------------------------------------------------------
@njit(cache=True)
def _first_ends(bounds: np.ndarray, span: int, stride: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Per run: the first window end and the cumulative window counts (S+1,), starting at 0."""
    runs = bounds.shape[0] - 1
    first = np.empty(runs, np.int64)
    offs = np.zeros(runs + 1, np.int64)
    for s in range(runs):
        a = bounds[s]
        b = bounds[s + 1]
        # All frames end-span+1 .. end, and the label frame end+offset, lie in [a, b).
        lo = max(a + span - 1, a - offset)
        hi = min(b - 1, b - 1 - offset)
        first[s] = lo
        offs[s + 1] = offs[s] + ((hi - lo) // stride + 1 if hi >= lo else 0)
    return first, offs


@njit(cache=True)
def _fill_ends(first: np.ndarray, offs: np.ndarray, stride: int, k0: int, k1: int, out: np.ndarray) -> None:
    # The run holding output k0: the last s with offs[s] <= k0 (runs without windows share offs values).
    s = np.searchsorted(offs, k0, side="right") - 1
    for k in range(k0, k1):
        while k >= offs[s + 1]:
            s += 1
        out[k] = first[s] + (k - offs[s]) * stride


@njit(cache=True)
def _window_ends_serial(bounds: np.ndarray, span: int, stride: int, offset: int) -> np.ndarray:
    first, offs = _first_ends(bounds, span, stride, offset)
    out = np.empty(offs[-1], np.int64)
    _fill_ends(first, offs, stride, 0, out.shape[0], out)
    return out


@njit(cache=True, parallel=True)
def _window_ends_parallel(bounds: np.ndarray, span: int, stride: int, offset: int) -> np.ndarray:
    first, offs = _first_ends(bounds, span, stride, offset)
    n = offs[-1]
    out = np.empty(n, np.int64)
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        _fill_ends(first, offs, stride, c * _CHUNK, min(n, (c + 1) * _CHUNK), out)
    return out


def window_ends(
    bounds: np.ndarray, span: int, stride: int = 1, offset: int = 0, *, parallel: bool | None = None
) -> np.ndarray:
    """The last frame of every window, (N,) int64 ascending, given the runs from :func:`segment_bounds`.

    A window ending at t covers frames t-span+1 .. t (span = (W-1)*skip + 1) and is labelled by frame
    t+offset; all of these must lie in one run. Within each run the first window ends as early as that
    allows and the next ones follow every ``stride`` frames (the grid restarts at each run, so a gap
    costs no more windows than it must).
    """
    b = np.ascontiguousarray(bounds, dtype=np.int64)
    if b.ndim != 1 or b.shape[0] < 1 or b[0] != 0 or (np.diff(b) < 0).any():
        raise ValueError("bounds must be the ascending run boundaries from segment_bounds, starting at 0")
    if span < 1 or stride < 1:
        raise ValueError(f"span and stride must be >= 1, got span={span}, stride={stride}")
    if parallel is None:
        parallel = int(b[-1]) // stride >= _PARALLEL_MIN_ITEMS
    if not parallel:
        return _window_ends_serial(b, int(span), int(stride), int(offset))
    with numba.parallel_chunksize(1):
        return _window_ends_parallel(b, int(span), int(stride), int(offset))


# ---- balancing -----------------------------------------------------------------------------------------
@njit(cache=True)
def _balance_select(
    classes: np.ndarray, n_classes: int, target: np.ndarray, keys: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    n = classes.shape[0]
    counts = np.zeros(n_classes, np.int64)
    for i in range(n):
        counts[classes[i]] += 1
    start = np.zeros(n_classes + 1, np.int64)
    for c in range(n_classes):
        start[c + 1] = start[c] + counts[c]
    members = np.empty(n, np.int64)  # counting sort: each class's windows, in index order
    fill = start[:-1].copy()
    for i in range(n):
        c = classes[i]
        members[fill[c]] = i
        fill[c] += 1
    out = np.empty(target.sum(), np.int64)
    pos = 0
    drawn = 0
    for c in range(n_classes):
        m = members[start[c] : start[c + 1]]
        k = target[c]
        if k <= m.shape[0]:
            # Without replacement: the k members with the smallest keys (a uniform random subset).
            # mergesort is stable, so equal keys resolve by index exactly as in the NumPy twin.
            order = np.argsort(keys[m], kind="mergesort")
            for j in range(k):
                out[pos + j] = m[order[j]]
        else:
            # Every member once, then the rest drawn with replacement.
            out[pos : pos + m.shape[0]] = m
            for j in range(m.shape[0], k):
                out[pos + j] = m[min(int(draws[drawn] * m.shape[0]), m.shape[0] - 1)]
                drawn += 1
        pos += k
    return np.sort(out)


def balance_select(
    classes: np.ndarray, target: np.ndarray, keys: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """Indices of the windows to keep, (sum(target),) int64 ascending (repeats when oversampling).

    classes: (N,) class of each window in [0, C). target: (C,) windows wanted per class. keys: (N,)
    float64 in [0, 1), one random key per window: a class above its target keeps its ``target[c]``
    windows with the smallest keys. draws: float64 in [0, 1), at least ``sum(max(target - count, 0))``
    of them, consumed in class order: a class below its target keeps all its windows and adds
    ``members[floor(draw * count)]`` per missing window. The randomness comes in as arguments so a seeded
    ``numpy.random.Generator`` makes the result reproducible, and the twin can use the same numbers.
    """
    cls = np.ascontiguousarray(classes, dtype=np.int64)
    tgt = np.ascontiguousarray(target, dtype=np.int64)
    k = np.ascontiguousarray(keys, dtype=np.float64)
    d = np.ascontiguousarray(draws, dtype=np.float64)
    n_classes = tgt.shape[0]
    if cls.ndim != 1 or k.shape != cls.shape:
        raise ValueError(f"classes and keys must be 1-D of one length, got {cls.shape} and {k.shape}")
    if cls.size and (cls.min() < 0 or cls.max() >= n_classes):
        raise ValueError(f"classes must lie in [0, {n_classes})")
    if (tgt < 0).any():
        raise ValueError("targets must be >= 0")
    counts = np.bincount(cls, minlength=n_classes)
    if ((tgt > 0) & (counts == 0)).any():
        raise ValueError("a class without windows cannot be oversampled to a nonzero target")
    if d.shape[0] < int(np.maximum(tgt - counts, 0).sum()):
        raise ValueError("not enough draws for the oversampled classes")
    return _balance_select(cls, int(n_classes), tgt, k, d)


# ---- batch gather --------------------------------------------------------------------------------------
@njit(cache=True)
def _new_list(first: np.ndarray) -> TypedList:
    lst = TypedList()
    lst.append(first)
    return lst


@njit(cache=True)
def _push(lst: TypedList, item: np.ndarray) -> None:
    lst.append(item)


@njit(cache=True, inline="always")
def _copy_frame(src: np.ndarray, dst: np.ndarray) -> None:
    # An explicit loop, not dst[:] = src: Numba's slice assignment goes through a temporary for overlap
    # safety (about 4x slower here); LLVM turns this loop into a memcpy.
    for b in range(dst.shape[0]):
        dst[b] = src[b]


@njit(cache=True, inline="always")
def _lut_frame(src: np.ndarray, lut: np.ndarray, dst: np.ndarray) -> None:
    for b in range(dst.shape[0]):
        dst[b] = lut[src[b]]


@njit(cache=True)
def _gather_u8_serial(frames, sess, ends, window, skip, out):
    for p in range(ends.shape[0] * window):
        i = p // window
        j = p - i * window
        _copy_frame(frames[sess[i]][ends[i] - (window - 1 - j) * skip], out[i, j])


@njit(cache=True, parallel=True)
def _gather_u8_parallel(frames, sess, ends, window, skip, out):
    # One work item per (window, frame): with few large windows there are still enough items per core.
    for p in prange(ends.shape[0] * window):
        i = np.int64(p) // window  # the prange index is unsigned: back to int64 first
        j = np.int64(p) - i * window
        _copy_frame(frames[sess[i]][ends[i] - (window - 1 - j) * skip], out[i, j])


@njit(cache=True)
def _gather_f32_serial(frames, sess, ends, window, skip, lut, out):
    for p in range(ends.shape[0] * window):
        i = p // window
        j = p - i * window
        _lut_frame(frames[sess[i]][ends[i] - (window - 1 - j) * skip], lut, out[i, j])


@njit(cache=True, parallel=True)
def _gather_f32_parallel(frames, sess, ends, window, skip, lut, out):
    for p in prange(ends.shape[0] * window):
        i = np.int64(p) // window  # the prange index is unsigned: back to int64 first
        j = np.int64(p) - i * window
        _lut_frame(frames[sess[i]][ends[i] - (window - 1 - j) * skip], lut, out[i, j])


def scale_lut(multiply: float = 1.0 / 255.0, add: float = 0.0) -> np.ndarray:
    """(256,) float32: ``pixel * multiply + add`` computed in float64 and rounded once, exactly the table
    engine-play feeds a float32 model with (engine.model.model.Model.input_lut), so a model sees the same
    numbers in training and in play."""
    lut = (np.arange(256, dtype=np.float64) * multiply + add).astype(np.float32)
    lut.flags.writeable = False
    return lut


_LUT = scale_lut()


class FrameSource:
    """The frames of several sessions, as one object the gather kernel can index: session s, frame t.

    Holds read-only (T_s, H*W*C) views of the given arrays (memory maps stay memory maps: nothing is
    copied). All sessions must share one frame shape.
    """

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        if not frames:
            raise ValueError("a FrameSource needs at least one frames array")
        shapes = {tuple(f.shape[1:]) for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"all sessions must share one frame shape, got {sorted(shapes)}")
        self.frame_shape: tuple[int, ...] = shapes.pop()
        self.frame_bytes = int(np.prod(self.frame_shape))
        views = []
        for f in frames:
            if f.dtype != np.uint8 or not f.flags.c_contiguous:
                raise ValueError("frames must be C-contiguous uint8 arrays (as sessions store them)")
            v = np.asarray(f).reshape(f.shape[0], self.frame_bytes).view()
            v.flags.writeable = False  # one Numba type for every session, whatever the caller passed
            views.append(v)
        self.lengths = np.array([v.shape[0] for v in views], np.int64)
        # Built by cached jitted helpers: typed.List's own methods would compile on every process start.
        lst = _new_list(views[0])
        for v in views[1:]:
            _push(lst, v)
        self.list = lst

    def __len__(self) -> int:
        return int(self.lengths.shape[0])


def check_gather(source: Any, sess: np.ndarray, ends: np.ndarray, window: int, skip: int,
                 out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a gather's arguments against ``source`` (anything with len(), ``lengths`` and
    ``frame_shape``: a FrameSource, or the compressed sessions' source); return (sess, ends) as
    contiguous int64. The kernels trust their inputs (Numba does not bounds-check): this is the check."""
    s = np.ascontiguousarray(sess, dtype=np.int64)
    e = np.ascontiguousarray(ends, dtype=np.int64)
    n = e.shape[0]
    if s.shape != (n,) or e.ndim != 1:
        raise ValueError(f"sess and ends must be 1-D of one length, got {s.shape} and {e.shape}")
    if window < 1 or skip < 1:
        raise ValueError(f"window and skip must be >= 1, got {window} and {skip}")
    if out.shape != (n, window, *source.frame_shape) or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous {(n, window, *source.frame_shape)}, got {out.shape}")
    if out.dtype not in (np.uint8, np.float32):
        raise ValueError(f"out must be uint8 or float32, got {out.dtype}")
    if n:
        if s.min() < 0 or s.max() >= len(source):
            raise ValueError(f"session indices must lie in [0, {len(source)})")
        if (e - (window - 1) * skip).min() < 0 or (e >= source.lengths[s]).any():
            raise ValueError("a window reaches outside its session")
    return s, e


def gather(
    source: FrameSource,
    sess: np.ndarray,
    ends: np.ndarray,
    window: int,
    skip: int,
    out: np.ndarray,
    *,
    lut: np.ndarray | None = None,
    parallel: bool | None = None,
) -> np.ndarray:
    """Copy window i (frames ``ends[i] - (window-1-j)*skip`` of session ``sess[i]``, j = 0..window-1,
    oldest first) into ``out[i]``; return ``out``.

    out: C-contiguous (n, window, *frame_shape), uint8 (a byte copy) or float32 (each pixel p becomes
    ``lut[p]``, see :func:`scale_lut`, in the same pass). Raises ValueError for out-of-range windows.
    """
    s, e = check_gather(source, sess, ends, window, skip, out)
    n = e.shape[0]
    flat = out.reshape(n, window, source.frame_bytes)
    if parallel is None:
        parallel = out.nbytes >= _PARALLEL_MIN_BYTES and numba.get_num_threads() > 1
    w, k = int(window), int(skip)
    if out.dtype == np.uint8:
        if not parallel:
            _gather_u8_serial(source.list, s, e, w, k, flat)
        else:
            with numba.parallel_chunksize(_GATHER_CHUNK):
                _gather_u8_parallel(source.list, s, e, w, k, flat)
    else:  # float32 (check_gather allows nothing else)
        table = _LUT if lut is None else np.ascontiguousarray(lut, dtype=np.float32)
        if table.shape != (256,):
            raise ValueError(f"lut must have 256 entries, got {table.shape}")
        if not parallel:
            _gather_f32_serial(source.list, s, e, w, k, table, flat)
        else:
            with numba.parallel_chunksize(_GATHER_CHUNK):
                _gather_f32_parallel(source.list, s, e, w, k, table, flat)
    return out


__all__ = [
    "FrameSource",
    "balance_select",
    "gather",
    "max_gap_ns",
    "scale_lut",
    "segment_bounds",
    "window_ends",
]
