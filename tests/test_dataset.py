"""engine.dataset on real session directories written through SessionWriter: kernels against their NumPy
twins (serial and parallel, odd sizes, property-based), windows against a brute-force definition, splits,
balancing, exports round-tripped from disk, the model sidecar, the adapters and the CLI. Nothing is timed.
"""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli.dataset import ProgressBar
from engine.cli.dataset import main as dataset_main
from engine.dataset import WASD9, DatasetError, Windows, describe, export, kernels, load, read_spec
from engine.dataset import _reference as ref
from engine.dataset.balance import balance, parse_weights, target_counts
from engine.dataset.labels import ClassTable, masks, parse_classes
from engine.dataset.split import by_session, parse_fractions
from engine.dataset.tf_adapter import batch_signature, epoch_batches
from engine.dataset.windows import game_sessions
from engine.session import Session, SessionWriter
from engine.sidecar import InputScale, ModelSidecar

FPS = 30.0
PERIOD = int(1e9 / FPS)
GAP = kernels.max_gap_ns(FPS)
ACTIONS = ("w", "a", "s", "d")
KERNEL_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- synthetic sessions --------------------------------------------------------------------------------
def write_session(
    root: Path, name: str, n: int, *, gaps: Sequence[int] = (), shape: tuple[int, ...] = (6, 10),
    actions: Sequence[str] = ACTIONS, fps: float = FPS, game: str = "kart", seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A session of n random frames at ``fps`` with +-20% timing jitter; the step into each frame of
    ``gaps`` is 2 to 40 periods (a pause or dropped frames). Returns (frames, timestamps, actions)."""
    rng = np.random.default_rng(seed)
    period = int(1e9 / fps)
    steps = period + rng.integers(-period // 5, period // 5, n)
    for g in gaps:
        steps[g] = period * int(rng.integers(2, 40))
    ts = 1_000_000_000 + np.cumsum(steps)
    frames = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    acts = (rng.random((n, len(actions))) < 0.3).astype(np.uint8)
    color: Literal["gray", "rgb"] = "rgb" if len(shape) == 3 else "gray"
    w = SessionWriter.create(root, name=name, game=game, fps=fps, frame_shape=shape, color=color,
                             actions=actions, resize=None,
                             source={"backend": "test", "region": [0, 0, shape[1], shape[0]], "window": None})
    at = 0
    while at < n:
        buf = w.frames_buffer(min(n - at, 37))  # odd batch sizes, across chunk boundaries
        k = len(buf)
        buf[:] = frames[at : at + k]
        w.commit(k, ts[at : at + k], acts[at : at + k])
        at += k
    w.close()
    return frames, ts, acts


@pytest.fixture
def kart(tmp_path: Path) -> dict[str, Any]:
    """Three sessions of game "kart" with gaps, and their raw arrays."""
    raw = {
        "k1": write_session(tmp_path, "k1", 400, gaps=(90, 91, 250), seed=1),
        "k2": write_session(tmp_path, "k2", 301, gaps=(150,), seed=2),
        "k3": write_session(tmp_path, "k3", 257, seed=3),
    }
    return {"root": tmp_path, "raw": raw}


def brute_windows(ts: np.ndarray, span: int, stride: int, offset: int) -> list[int]:
    """The definition, frame by frame: ends whose frames and label frame lie in one gap-free run, the first
    as early as possible in the run and the next every ``stride`` frames."""
    n = len(ts)
    run = np.zeros(n, np.int64)
    for i in range(1, n):
        step = ts[i] - ts[i - 1]
        run[i] = run[i - 1] + (1 if step > GAP or step <= 0 else 0)
    ends: list[int] = []
    for r in np.unique(run).tolist():
        members = np.flatnonzero(run == r)
        a, b = int(members[0]), int(members[-1]) + 1
        ok = [t for t in range(a, b) if t - span + 1 >= a and a <= t + offset < b]
        if ok:
            ends.extend(range(ok[0], ok[-1] + 1, stride))
    return ends


# ---- kernels against their twins -----------------------------------------------------------------------
@st.composite
def timestamps(draw: st.DrawFn, max_n: int = 300) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    kinds = draw(st.lists(st.sampled_from(["ok", "ok", "ok", "edge", "over", "gap", "back"]), min_size=n,
                          max_size=n))
    step = {"ok": PERIOD, "edge": GAP, "over": GAP + 1, "gap": 5 * PERIOD, "back": 0}
    return 1_000 + np.cumsum(np.array([step[k] for k in kinds], np.int64))


@KERNEL_SETTINGS
@given(ts=timestamps())
def test_segment_bounds_matches_twin(ts: np.ndarray) -> None:
    want = ref.segment_bounds(ts, GAP)
    for parallel in (False, True):
        assert np.array_equal(kernels.segment_bounds(ts, GAP, parallel=parallel), want)


def test_segment_bounds_threshold_is_strictly_over_one_and_a_half_periods() -> None:
    ts = np.cumsum(np.array([1, GAP, GAP + 1, PERIOD, 0, PERIOD], np.int64))
    assert kernels.segment_bounds(ts, GAP).tolist() == [0, 2, 4, 6]  # steps into 2 (GAP+1) and 4 (0)


@KERNEL_SETTINGS
@given(ts=timestamps(), span=st.integers(1, 12), stride=st.integers(1, 7), offset=st.integers(-12, 12))
def test_window_ends_matches_twin_and_definition(ts: np.ndarray, span: int, stride: int, offset: int) -> None:
    bounds = ref.segment_bounds(ts, GAP)
    want = ref.window_ends(bounds, span, stride, offset)
    assert want.tolist() == brute_windows(ts, span, stride, offset)
    for parallel in (False, True):
        assert np.array_equal(kernels.window_ends(bounds, span, stride, offset, parallel=parallel), want)


def test_kernels_across_parallel_chunk_boundaries() -> None:
    """Sizes past several 65536-item chunks, gaps right at and next to chunk edges, odd lengths."""
    n = 4 * 65536 + 4099
    steps = np.full(n, PERIOD, np.int64)
    steps[[1, 65535, 65536, 65537, 131072, 200001, n - 1]] = 3 * PERIOD
    ts = np.cumsum(steps)
    bounds = ref.segment_bounds(ts, GAP)
    for parallel in (False, True):
        assert np.array_equal(kernels.segment_bounds(ts, GAP, parallel=parallel), bounds)
        for span, stride, offset in ((1, 1, 0), (20, 1, 0), (39, 3, 5), (7, 11, -3)):
            want = ref.window_ends(bounds, span, stride, offset)
            assert np.array_equal(kernels.window_ends(bounds, span, stride, offset, parallel=parallel), want)


@KERNEL_SETTINGS
@given(data=st.data(), n_classes=st.integers(1, 6), n=st.integers(0, 200))
def test_balance_select_matches_twin(data: st.DataObject, n_classes: int, n: int) -> None:
    classes = np.array(data.draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)), np.int64)
    counts = np.bincount(classes, minlength=n_classes)
    target = np.array([data.draw(st.integers(0, 3 * c)) if c else 0 for c in counts.tolist()], np.int64)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    keys = rng.random(n)
    keys[: n // 3] = 0.5  # ties resolve by index in both
    draws = rng.random(int(np.maximum(target - counts, 0).sum()))
    got = kernels.balance_select(classes, target, keys, draws)
    assert np.array_equal(got, ref.balance_select(classes, target, keys, draws))
    assert np.array_equal(np.bincount(classes[got], minlength=n_classes), target)


@KERNEL_SETTINGS
@given(
    data=st.data(),
    shape=st.sampled_from([(1, 1), (3, 5), (7, 9), (5, 3, 3), (17, 31)]),
    window=st.integers(1, 9),
    skip=st.integers(1, 4),
    n=st.integers(0, 40),
)
def test_gather_matches_twin(data: st.DataObject, shape: tuple[int, ...], window: int, skip: int,
                             n: int) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    span = (window - 1) * skip + 1
    lengths = [span + int(rng.integers(0, 30)) for _ in range(data.draw(st.integers(1, 4)))]
    frames = [rng.integers(0, 256, (t, *shape), dtype=np.uint8) for t in lengths]
    source = kernels.FrameSource(frames)
    sess = rng.integers(0, len(frames), n)
    ends = np.array([rng.integers(span - 1, lengths[s]) for s in sess.tolist()], np.int64)
    want = ref.gather(frames, sess, ends, window, skip)
    want32 = ref.gather(frames, sess, ends, window, skip, dtype=np.float32)
    for parallel in (False, True):
        out = np.empty((n, window, *shape), np.uint8)
        assert np.array_equal(kernels.gather(source, sess, ends, window, skip, out, parallel=parallel), want)
        out32 = np.full((n, window, *shape), np.nan, np.float32)
        got32 = kernels.gather(source, sess, ends, window, skip, out32, parallel=parallel)
        assert np.array_equal(got32, want32)  # bit-exact: the same table


def test_float32_table_is_play_time_scaling() -> None:
    """The gather's float32 values are engine-play's: pixel * (1/255) in float64, rounded once."""
    lut = kernels.scale_lut()
    assert lut.dtype == np.float32 and lut[0] == 0.0 and lut[255] == 1.0
    assert np.array_equal(lut, (np.arange(256) * InputScale().multiply + InputScale().add).astype(np.float32))


def test_gather_refuses_windows_outside_their_session() -> None:
    source = kernels.FrameSource([np.zeros((10, 2, 2), np.uint8)])
    out = np.empty((1, 3, 2, 2), np.uint8)
    for end in (1, 10):
        with pytest.raises(ValueError, match="outside"):
            kernels.gather(source, np.array([0]), np.array([end]), 3, 1, out)
    with pytest.raises(ValueError, match="session indices"):
        kernels.gather(source, np.array([1]), np.array([5]), 3, 1, out)
    with pytest.raises(ValueError, match="out must be"):
        kernels.gather(source, np.array([0]), np.array([5]), 3, 1, np.empty((1, 3, 2, 3), np.uint8))


# ---- windows on real sessions --------------------------------------------------------------------------
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(), window=st.integers(1, 8), skip=st.integers(1, 3), stride=st.integers(1, 4),
    offset=st.integers(-2, 4), parallel=st.booleans(),
)
def test_windows_match_definition_on_random_sessions(
    data: st.DataObject, window: int, skip: int, stride: int, offset: int, parallel: bool
) -> None:
    span = (window - 1) * skip + 1
    with tempfile.TemporaryDirectory() as tmp:
        raw = []
        for i in range(data.draw(st.integers(1, 3))):
            n = data.draw(st.integers(span + 5, 120))
            gaps = data.draw(st.lists(st.integers(1, n - 1), max_size=4))
            raw.append(write_session(Path(tmp), f"s{i}", n, gaps=gaps, shape=(3, 5), seed=i * 31 + n))
        want = [(s, t) for s, (_, ts, _) in enumerate(raw) for t in brute_windows(ts, span, stride, offset)]
        if not want:  # the gaps left no room for a window
            with pytest.raises(DatasetError, match="hold no window"):
                Windows("kart", window, skip, stride, offset, data_dir=tmp, parallel=parallel)
            return
        w = Windows("kart", window, skip, stride, offset, data_dir=tmp, parallel=parallel)
        sess, ends = w.index
        assert list(zip(sess.tolist(), ends.tolist(), strict=True)) == want
        x, y = w.gather(np.arange(len(w)))
        for i, (s, t) in enumerate(want):
            frames, _, acts = raw[s]
            assert np.array_equal(x[i], frames[t - span + 1 : t + 1 : skip])
            assert np.array_equal(y[i], acts[t + offset])


def test_windows_indexing_and_gaps(kart: dict[str, Any]) -> None:
    frames, _, acts = kart["raw"]["k1"]
    w = Windows(kart["root"] / "sessions" / "k1", window=5, skip=2, offset=3)
    assert w.spec.span == 9
    _, ends = w.index
    # Frame 90 and 91 follow gaps and frame 250 too: no window covers a gap, no label is beyond one.
    for gap in (90, 91, 250):
        assert not ((ends - 8 < gap) & (ends + 3 >= gap)).any()
    x, y = w[-1]
    t = int(ends[-1])
    assert x.shape == (5, 6, 10) and x.dtype == np.uint8
    assert np.array_equal(x, frames[t - 8 : t + 1 : 2]) and np.array_equal(y, acts[t + 3])
    with pytest.raises(IndexError):
        w[len(w)]


def test_session_arguments_all_name_the_same_sessions(kart: dict[str, Any]) -> None:
    root = kart["root"]
    paths = [root / "sessions" / n for n in ("k1", "k2", "k3")]
    forms: list[Any] = [
        ("kart", {"data_dir": root}),
        (["k1", "k2", "k3"], {"data_dir": root}),
        (paths, {}),
        ([str(p) for p in paths], {}),
        ([Session.open(p) for p in paths], {}),
        ([paths[0], "kart"], {"data_dir": root}),  # a session twice counts once
    ]
    got = [Windows(arg, window=4, **kw) for arg, kw in forms]
    for w in got[1:]:
        assert [s.name for s in w.sessions] == ["k1", "k2", "k3"]
        assert np.array_equal(w.index[1], got[0].index[1]) and np.array_equal(w.labels, got[0].labels)


def test_action_columns_follow_the_chosen_actions(kart: dict[str, Any]) -> None:
    w = Windows("kart", window=3, actions=("d", "w"), data_dir=kart["root"])
    sess, ends = w.index
    _, _, acts = kart["raw"]["k1"]
    first = sess == 0
    assert np.array_equal(w.labels[first], acts[ends[first]][:, [3, 0]])
    assert w.sidecar().actions == ("d", "w")


def test_combo_classes_observed_and_given(kart: dict[str, Any]) -> None:
    seen = Windows("kart", window=4, encoding="combo", data_dir=kart["root"])
    classes = seen.spec.classes
    assert classes[0] == () and classes[1:5] == (("w",), ("a",), ("s",), ("d",))
    assert [len(c) for c in classes] == sorted(len(c) for c in classes)
    rows = seen.rows
    assert all(set(classes[c]) == {ACTIONS[a] for a in np.flatnonzero(r)} for c, r in zip(seen.labels, rows,
                                                                                             strict=True))
    wasd = Windows("kart", window=4, encoding="combo", classes=WASD9, data_dir=kart["root"])
    assert wasd.spec.classes == WASD9
    n_unlisted = int((ClassTable(WASD9, ACTIONS).lookup(masks(seen.rows)) < 0).sum())
    assert wasd.spec.unlisted == n_unlisted > 0 and len(wasd) == len(seen) - n_unlisted
    assert wasd.sidecar().classes == WASD9 and wasd.sidecar().outputs == 9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window must be"),
        ({"encoding": "onehot"}, "encoding must be"),
        ({"classes": WASD9}, "only for encoding 'combo'"),
        ({"encoding": "combo", "classes": [["w"], ["x"]]}, "not one of the actions"),
        ({"encoding": "combo", "classes": [["w"]]}, "at least 2 classes"),
        ({"encoding": "combo", "classes": [["w"], ["w"]]}, "appears twice"),
        ({"actions": ["jump"]}, "does not record action 'jump'"),
        ({"window": 260}, "no window of 260 frames"),
        ({"actions": ["w", " "]}, "include an empty name"),
        # Past 2**62 the int64 kernels could overflow: refused up front, not a Numba traceback.
        ({"window": 2**31 + 1, "skip": 2**31}, "spans 4611686018427387905 frames"),
        ({"stride": 2**62}, "stride 4611686018427387904 is out of range"),
        ({"offset": -(2**62)}, "offset -4611686018427387904 is out of range"),
    ],
)
def test_bad_windows_arguments_are_one_line_errors(kart: dict[str, Any], kwargs: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(DatasetError, match=message) as e:
        Windows("kart", data_dir=kart["root"], **kwargs)
    assert "\n" not in str(e.value)


def test_classes_by_name_and_empty_sessions(kart: dict[str, Any], tmp_path: Path) -> None:
    by_tuple = Windows("kart", window=4, encoding="combo", classes=WASD9, data_dir=kart["root"])
    names = ["none", "w", "a", "s", "d", "w+a", "w+d", "s+a", "s+d"]
    for classes in (names, "wasd9"):
        w = Windows("kart", window=4, encoding="combo", classes=classes, data_dir=kart["root"])
        assert w.spec.classes == WASD9 and np.array_equal(w.labels, by_tuple.labels)
    SessionWriter.create(kart["root"], name="k0", game="kart", fps=FPS, frame_shape=(6, 10), color="gray",
                         actions=ACTIONS, resize=None, source={}).close()  # a session without frames
    w = Windows("kart", window=4, encoding="combo", classes=WASD9, data_dir=kart["root"])
    assert [s.name for s in w.sessions][-1] == "k0" and np.array_equal(w.labels, by_tuple.labels)
    with pytest.raises(DatasetError, match="hold no window"):
        Windows("k0", window=1, data_dir=kart["root"])


def test_sizes_just_under_the_int64_bound_still_cut_right(kart: dict[str, Any]) -> None:
    """Just under 2**62 the kernels' arithmetic still fits: a stride past every session keeps the first
    window of each gap-free run, an unbounded gap threshold makes each session one run."""
    far = Windows("kart", window=4, stride=2**62 - 1, data_dir=kart["root"])
    want = [(s, t) for s, (_, ts, _) in enumerate(kart["raw"].values()) for t in brute_windows(ts, 4, 2**62 - 1, 0)]
    assert list(zip(*(a.tolist() for a in far.index), strict=True)) == want
    joined = Windows("kart", window=4, max_gap=float("inf"), data_dir=kart["root"])
    assert len(joined) == sum(len(ts) - 3 for _, ts, _ in kart["raw"].values())
    with pytest.raises(DatasetError, match="hold no window"):
        Windows("kart", window=4, offset=2**62 - 1, data_dir=kart["root"])


def test_sessions_of_different_capture_specs_are_refused(tmp_path: Path) -> None:
    write_session(tmp_path, "a", 50)
    write_session(tmp_path, "b", 50, fps=60.0)
    write_session(tmp_path, "c", 50, shape=(6, 11))
    for other in ("b", "c"):
        with pytest.raises(DatasetError, match="one capture spec"):
            Windows(["a", other], window=3, data_dir=tmp_path)
    with pytest.raises(DatasetError, match="not a session directory, nor a session or game"):
        Windows("racer", data_dir=tmp_path)


def test_game_sessions_match_games_only(kart: dict[str, Any]) -> None:
    root = kart["root"]
    assert [p.name for p in game_sessions("kart", root)] == ["k1", "k2", "k3"]
    assert [s.name for s in Windows("k1", window=4, data_dir=root).sessions] == ["k1"]  # a name, as documented
    with pytest.raises(DatasetError, match="no sessions of game 'k1'"):
        game_sessions("k1", root)  # ...but never taken for a game


def test_batches_equal_one_gather_and_shuffle_reproducibly(kart: dict[str, Any]) -> None:
    w = Windows("kart", window=6, skip=2, data_dir=kart["root"])
    x_all, y_all = w.gather(np.arange(len(w)))
    got = list(w.batches(37))
    assert [len(x) for x, _ in got] == [37] * (len(w) // 37) + ([len(w) % 37] if len(w) % 37 else [])
    assert np.array_equal(np.concatenate([x for x, _ in got]), x_all)
    assert np.array_equal(np.concatenate([y for _, y in got]), y_all)
    order = np.concatenate(list(w.batch_indices(37, shuffle=True, seed=5)))
    assert sorted(order.tolist()) == list(range(len(w))) and not np.array_equal(order, np.arange(len(w)))
    a = list(w.batches(37, shuffle=True, seed=5, float32=True, drop_last=True))
    b = list(w.batches(37, shuffle=True, seed=5, float32=True, drop_last=True))
    assert len(a) == len(w) // 37
    for (xa, ya), (xb, yb), idx in zip(a, b, w.batch_indices(37, True, 5, True), strict=True):
        assert xa.dtype == np.float32 and np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert np.array_equal(xa, kernels.scale_lut()[x_all[idx]])


def test_windows_pickle_reopens_the_sessions(kart: dict[str, Any]) -> None:
    w = Windows("kart", window=5, encoding="combo", data_dir=kart["root"]).split((0.5, 0.5), by="time")["val"]
    blob = pickle.dumps(w)
    assert len(blob) < 200_000  # the index, not the frames
    w2 = pickle.loads(blob)
    idx = np.arange(0, len(w), 3)
    assert np.array_equal(w2.gather(idx)[0], w.gather(idx)[0]) and w2.spec == w.spec


# ---- splits and balancing ------------------------------------------------------------------------------
def footprint(w: Windows) -> set[tuple[int, int]]:
    """(session, frame) of every frame and label frame of every window."""
    sess, ends = w.index
    span, off = w.spec.span, w.spec.offset
    out: set[tuple[int, int]] = set()
    for s, t in zip(sess.tolist(), ends.tolist(), strict=True):
        out.update((s, f) for f in range(min(t - span + 1, t + off), max(t, t + off) + 1))
    return out


@pytest.mark.parametrize("blocks", [1, 3])
@pytest.mark.parametrize("offset", [0, 4, -2])
def test_split_by_time_shares_no_frame(kart: dict[str, Any], blocks: int, offset: int) -> None:
    w = Windows("kart", window=8, skip=2, offset=offset, data_dir=kart["root"])
    parts = w.split((0.7, 0.15, 0.15), by="time", seed=1, blocks=blocks)
    assert list(parts) == ["train", "val", "test"]
    prints = {n: footprint(p) for n, p in parts.items()}
    assert not prints["train"] & prints["val"] and not prints["train"] & prints["test"]
    assert not prints["val"] & prints["test"]
    assert sum(len(p) for p in parts.values()) < len(w)  # windows across a cut are dropped...
    assert len(parts["train"]) > (0.6 if blocks == 1 else 0.45) * len(w)  # ...but not many
    spec = parts["val"].spec.split
    assert spec is not None and spec["by"] == "time" and spec["part"] == "val"
    assert set(spec["assignment"]) == {"k1", "k2", "k3"}


def test_split_by_session_keeps_sessions_whole(tmp_path: Path) -> None:
    for i, n in enumerate([120, 100, 90, 80, 70, 60]):
        write_session(tmp_path, f"s{i}", n, seed=i)
    w = Windows("kart", window=4, data_dir=tmp_path)
    parts = w.split((0.6, 0.2, 0.2), by="session", seed=3)
    owners = [{w.sessions[s].name for s in p.index[0].tolist()} for p in parts.values()]
    assert all(owners) and not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sum(len(p) for p in parts.values()) == len(w)
    assert parts["train"].spec.split["assignment"] == sorted(owners[0])  # type: ignore[index]
    with pytest.raises(DatasetError, match="needs at least 3 sessions"):
        Windows(["s0", "s1"], window=4, data_dir=tmp_path).split((0.8, 0.1, 0.1), by="session")


@pytest.mark.parametrize("by", ["time", "session"])
def test_split_leaves_out_parts_of_fraction_zero(kart: dict[str, Any], by: str) -> None:
    w = Windows("kart", window=4, data_dir=kart["root"])
    parts = w.split((0.5, 0, 0.5), by=by, seed=1)  # type: ignore[arg-type]
    assert list(parts) == ["train", "test"] and all(len(p) for p in parts.values())
    assert not footprint(parts["train"]) & footprint(parts["test"])
    assert parts["test"].spec.split["fractions"] == [0.5, 0.0, 0.5]  # type: ignore[index]


def test_split_by_session_deals_longest_first() -> None:
    assert by_session([500, 400, 300], (0.8, 0.1, 0.1), 0).tolist() == [0, 1, 2]
    part = by_session([100] * 20, (0.5, 0.25, 0.25), 0)
    assert np.bincount(part).tolist() == [10, 5, 5]
    assert not np.array_equal(part, by_session([100] * 20, (0.5, 0.25, 0.25), 1))  # seed orders ties


@pytest.mark.parametrize("text", ["0.5,0.2", "1,0,0,0", "x", "0,1", "-0.1,1.1"])
def test_bad_fractions(text: str) -> None:
    with pytest.raises(DatasetError, match="split"):
        parse_fractions(text)


@pytest.mark.parametrize("encoding", ["multihot", "combo"])
@pytest.mark.parametrize("mode", ["under", "over", "both"])
def test_balance_hits_its_target_counts(kart: dict[str, Any], encoding: str, mode: str) -> None:
    w = Windows("kart", window=4, encoding=encoding, data_dir=kart["root"])  # type: ignore[arg-type]
    before = w.class_counts()
    b = w.balance("uniform", mode=mode, seed=7)  # type: ignore[arg-type]
    after = b.class_counts()
    report = b.balance_report
    assert report is not None and report.before == before and report.after == after
    present = [c for c, n in before.items() if n]
    if mode == "under":
        assert all(after[c] == min(before[c] for c in present) for c in present)
    elif mode == "over":
        assert all(after[c] == max(before[c] for c in present) for c in present)
    else:
        assert sum(after.values()) == len(w) and max(after.values()) - min(after[c] for c in present) <= 1
    # Kept windows are windows of w (with repeats only when oversampling), and reproducible.
    keys = set(zip(*(a.tolist() for a in w.index), strict=True))
    assert set(zip(*(a.tolist() for a in b.index), strict=True)) <= keys
    again = w.balance("uniform", mode=mode, seed=7)  # type: ignore[arg-type]
    assert np.array_equal(again.index[1], b.index[1])
    assert b.spec.balance == report.to_dict()


@pytest.mark.parametrize("mode", ["under", "over"])
def test_balance_seeds_choose_differently_and_repeat(kart: dict[str, Any], mode: str) -> None:
    w = Windows("kart", window=4, encoding="combo", data_dir=kart["root"])

    def chosen(seed: int) -> list[tuple[int, int]]:
        b = w.balance("uniform", mode=mode, seed=seed)  # type: ignore[arg-type]
        return list(zip(*(a.tolist() for a in b.index), strict=True))

    picks = {seed: chosen(seed) for seed in (0, 1, 2)}
    assert all(chosen(seed) == picks[seed] for seed in picks)  # the same seed, the same windows
    assert picks[0] != picks[1] and picks[0] != picks[2] and picks[1] != picks[2]
    assert len({len(p) for p in picks.values()}) == 1  # the seed picks which windows, not how many


def test_balance_weights_and_targets(kart: dict[str, Any]) -> None:
    counts = np.array([50, 10, 0, 30])
    assert target_counts(counts, np.ones(4), "under").tolist() == [10, 10, 0, 10]
    assert target_counts(counts, np.array([2.0, 1, 1, 1]), "under").tolist() == [20, 10, 0, 10]
    assert target_counts(counts, np.array([1.0, 1, 1, 0]), "over").tolist() == [50, 50, 0, 0]
    assert target_counts(counts, np.ones(4), "both").tolist() == [30, 30, 0, 30]
    w = Windows("kart", window=4, encoding="combo", classes=WASD9, data_dir=kart["root"])
    weights = parse_weights("none=0,w=1,a=1,s=1,d=1,w+a=0,w+d=0,s+a=0,s+d=0")
    b = w.balance(weights, mode="under", seed=0)
    after = b.class_counts()
    assert after["none"] == 0 and after["w+a"] == 0 and len({after[k] for k in "wasd"}) == 1
    with pytest.raises(DatasetError, match="misses class"):
        w.balance({"none": 1.0}, seed=0)
    with pytest.raises(DatasetError, match="CLASS=WEIGHT"):
        parse_weights("none=-1")
    idx, _ = balance(np.array([0, 0, 1]), ["x", "y"], "uniform", "over", seed=None)
    assert sorted(np.bincount(np.array([0, 0, 1])[idx]).tolist()) == [2, 2]


# ---- exports ---------------------------------------------------------------------------------------------
SPEC_KEYS = ("window", "skip", "stride", "offset", "frame_shape", "color", "fps", "actions", "encoding",
             "classes", "split", "sources", "parts", "store")


@pytest.mark.parametrize("store", ["windows", "frames"])
@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_export_round_trips_bit_exact_with_spec(kart: dict[str, Any], tmp_path: Path, store: str,
                                                suffix: str) -> None:
    w = Windows("kart", window=5, skip=2, stride=3, offset=1, encoding="combo", data_dir=kart["root"])
    parts = w.split((0.6, 0.2, 0.2), by="time", seed=2)
    parts["train"] = parts["train"].balance("uniform", mode="over", seed=1)
    out = tmp_path / f"set{suffix}"
    calls: list[tuple[int, int]] = []
    result = export(parts, out, store=store, batch_bytes=3000, progress=lambda d, t: calls.append((d, t)))  # type: ignore[arg-type]
    assert result.path == out and not list(tmp_path.glob(".*partial*"))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == result.frame_bytes and len(calls) > 3
    for name, part in parts.items():
        x, y = load(out, name)
        gx, gy = part.gather(np.arange(len(part)))
        assert x.dtype == np.uint8 and np.array_equal(x, gx) and np.array_equal(y, gy)
        x32, _ = load(out, name, float32=True)
        assert np.array_equal(x32, part.gather(np.arange(len(part)), float32=True)[0])
    spec = read_spec(out)
    assert all(k in spec for k in SPEC_KEYS)
    assert spec["store"] == store and spec["window"] == 5 and spec["skip"] == 2 and spec["offset"] == 1
    assert spec["classes"] == [list(c) for c in w.spec.classes] and spec["frame_shape"] == [6, 10]
    assert [s["name"] for s in spec["sources"]] == ["k1", "k2", "k3"]
    assert spec["parts"]["train"]["balance"]["mode"] == "over" and spec["split"]["by"] == "time"
    assert spec["parts"]["val"]["windows"] == len(parts["val"])
    if suffix == ".h5":
        with h5py.File(out) as f:
            big = f[f"train/{'x' if store == 'windows' else 'frames'}"]
            assert big.chunks is not None and big.compression == "gzip"
            assert json.loads(f.attrs["spec"]) == spec
    else:
        with np.load(out) as z:  # a plain .npz: no engine needed to read it
            assert z["train/y"].shape == (len(parts["train"]),)
            assert json.loads(str(z["spec"][()])) == spec
    assert "train" in describe(out) and "combo" in describe(out)


def test_export_rgb_unsplit_and_sidecar(tmp_path: Path) -> None:
    raw = write_session(tmp_path, "rgb", 90, gaps=(40,), shape=(5, 7, 3), actions=("left", "right"))
    w = Windows("rgb", window=3, data_dir=tmp_path)
    result = export(w, tmp_path / "rgb.h5", compression="lzf")
    x, y = load(result.path, "all")
    assert x.shape == (len(w), 3, 5, 7, 3) and np.array_equal(y, w.labels)
    t = int(w.index[1][0])
    assert np.array_equal(x[0], raw[0][t - 2 : t + 1])
    assert result.sidecar == tmp_path / "rgb.json" and list(read_spec(result.path)["parts"]) == ["all"]
    val = w.split((0.5, 0.5), by="time")["val"]
    assert list(export(val, tmp_path / "val.npz", sidecar=False).parts) == ["val"]
    assert not (tmp_path / "val.json").exists()
    side = ModelSidecar.load(result.sidecar)
    assert side == w.sidecar()
    assert (side.fps, side.window, side.skip, side.frame_size, side.color, side.layout) == (
        FPS, 3, 1, (7, 5), "rgb", "frames")
    assert side.actions == ("left", "right") and side.encoding == "multihot"


def test_export_errors_leave_no_file(kart: dict[str, Any], tmp_path: Path) -> None:
    w = Windows("kart", window=5, data_dir=kart["root"])
    with pytest.raises(DatasetError, match="cannot write"):
        export(w, tmp_path / "missing" / "x.npz")
    with pytest.raises(DatasetError, match="from its suffix"):
        export(w, tmp_path / "x.csv")
    with pytest.raises(DatasetError, match="support compression"):
        export(w, tmp_path / "x.npz", compression="lzf")
    with pytest.raises(DatasetError, match="sidecar would overwrite the export"):
        export(w, tmp_path / "x.json", format="npz")
    with pytest.raises(DatasetError, match="sidecar would overwrite the export"):
        export(w, tmp_path / "x.npz", sidecar=tmp_path / "." / "x.npz")
    with pytest.raises(DatasetError, match=r"cannot write model sidecar .* does not exist"):
        export(w, tmp_path / "x.npz", sidecar=tmp_path / "missing" / "m.json")
    with pytest.raises(DatasetError, match=r"suffix \.h5 but the format is npz; name it x\.npz"):
        export(w, tmp_path / "x.h5", format="npz")
    assert not list(tmp_path.glob("*x*")) and not list(tmp_path.glob(".*"))
    (tmp_path / "junk.h5").write_bytes(b"not a dataset")
    with pytest.raises(DatasetError, match="neither"):
        read_spec(tmp_path / "junk.h5")


def test_a_sidecar_failing_late_drops_the_new_export(kart: dict[str, Any], tmp_path: Path) -> None:
    """The sidecar is written before the export is renamed into place: when it fails after the checks
    (here its directory vanishes mid-export), the earlier file at the path is left as it was."""
    w = Windows("kart", window=5, data_dir=kart["root"])
    out, side_dir = tmp_path / "x.npz", tmp_path / "model"
    out.write_bytes(b"an earlier export")
    side_dir.mkdir()

    def vanish(done: int, total: int) -> None:
        if side_dir.exists():
            side_dir.rmdir()

    with pytest.raises(DatasetError, match="cannot write model sidecar"):
        export(w, out, sidecar=side_dir / "m.json", progress=vanish)
    assert out.read_bytes() == b"an earlier export" and not list(tmp_path.glob(".*"))


# ---- adapters --------------------------------------------------------------------------------------------
def test_torch_loader_yields_the_python_batches(kart: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install engine[torch])")
    from engine.dataset.torch_adapter import WindowsDataset, data_loader

    w = Windows("kart", window=6, skip=2, encoding="combo", data_dir=kart["root"])
    loader = data_loader(w, 32, shuffle=True, seed=3)
    got = list(loader)
    want = list(w.batches(32, shuffle=True, seed=3, float32=True))
    assert len(got) == len(want) == len(loader)
    for (tx, ty), (x, y) in zip(got, want, strict=True):
        assert tx.dtype == torch.float32 and ty.dtype == torch.int64
        assert np.array_equal(tx.numpy(), x) and np.array_equal(ty.numpy(), y)
    second = next(iter(loader))[1].numpy()  # the next pass shuffles with seed + 1
    assert np.array_equal(second, next(w.batches(32, shuffle=True, seed=4))[1])
    ds = WindowsDataset(w, float32=False)
    x0, y0 = ds[0]
    assert np.array_equal(x0.numpy(), w[0][0]) and int(y0) == w[0][1]


def test_torch_loader_with_worker_processes(kart: dict[str, Any]) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install engine[torch])")
    from engine.dataset.torch_adapter import data_loader

    w = Windows("kart", window=4, data_dir=kart["root"])
    got = list(data_loader(w, 50, num_workers=2, float32=False))
    want = list(w.batches(50))
    assert all(np.array_equal(tx.numpy(), x) and np.array_equal(ty.numpy(), y)
               for (tx, ty), (x, y) in zip(got, want, strict=True))


def test_tf_dataset_yields_the_python_batches(kart: dict[str, Any]) -> None:
    w = Windows("kart", window=4, data_dir=kart["root"])
    (xs, xd), (ys, yd) = batch_signature(w)
    assert xs == (None, 4, 6, 10) and xd == np.float32 and ys == (None, 4) and yd == np.uint8
    gen = epoch_batches(w, 64, shuffle=True, seed=9)
    first, second = list(gen()), list(gen())
    assert np.array_equal(first[0][0], next(w.batches(64, True, 9, True))[0])
    assert np.array_equal(second[0][1], next(w.batches(64, True, 10))[1])
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install engine[train])")
    from engine.dataset.tf_adapter import tf_dataset

    for (tx, ty), (x, y) in zip(tf_dataset(w, 64, shuffle=True, seed=9), w.batches(64, True, 9, True),
                                strict=True):
        assert tx.dtype == tf.float32 and np.array_equal(tx.numpy(), x) and np.array_equal(ty.numpy(), y)


# ---- CLI -------------------------------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = dataset_main(list(argv))
    except SystemExit as e:  # argparse errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_build_and_info(kart: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kart.h5"
    code, text, err = run_cli(
        capsys, "build", "--game", "kart", "--data-dir", str(kart["root"]), "--window", "6", "--skip", "2",
        "--stride", "2", "--offset", "1", "--encoding", "combo", "--classes", "wasd9", "--balance", "uniform",
        "--split", "0.7,0.15,0.15", "--split-by", "time", "--format", "hdf5", "--out", str(out), "--no-progress",
    )
    assert code == 0, err
    assert "exporting" not in err  # --no-progress
    assert "balanced train (under, uniform)" in text and "windows dropped" in text and str(out) in text
    spec = read_spec(out)
    assert (spec["window"], spec["skip"], spec["stride"], spec["offset"]) == (6, 2, 2, 1)
    assert spec["classes"] == [list(c) for c in WASD9] and list(spec["parts"]) == ["train", "val", "test"]
    side = ModelSidecar.load(tmp_path / "kart.json")
    assert side.classes == WASD9 and side.skip == 2 and side.window == 6
    code, text, err = run_cli(capsys, "info", str(out))
    assert code == 0 and "combo, 9 classes" in text and "train" in text and not err
    w = Windows("kart", window=6, skip=2, stride=2, offset=1, encoding="combo", classes=WASD9,
                data_dir=kart["root"]).split((0.7, 0.15, 0.15), by="time", seed=0)
    assert np.array_equal(load(out, "val")[0], w["val"].gather(np.arange(len(w["val"])))[0])


def test_cli_sessions_by_path_npz_frames_store(kart: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(kart["root"] / "sessions" / n) for n in ("k1", "k3")]
    side = tmp_path / "model" / "m.json"
    side.parent.mkdir()
    code, _, err = run_cli(capsys, "build", *paths, "--window", "4", "--store", "frames", "--out",
                              str(tmp_path / "d.npz"), "--sidecar", str(side), "--progress")
    assert code == 0, err
    # --progress draws the bar however short the export: from 0% to 100%, one line ended by a newline.
    assert err.startswith("\rexporting [") and " 0%" in err and "100%" in err and err.endswith("\n")
    assert err.count("\n") == 1, err
    x, y = load(tmp_path / "d.npz", "all")
    w = Windows(paths, window=4)
    assert np.array_equal(x, w.gather(np.arange(len(w)))[0]) and np.array_equal(y, w.labels)
    assert ModelSidecar.load(side) == w.sidecar() and not (tmp_path / "d.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no sessions selected"),
        (["--game", "kart", "k1"], "not both"),
        (["--game", "racer"], "no sessions of game 'racer'"),
        (["--game", "kart", "--window", "0"], "--window: must be a positive integer"),
        (["--game", "kart", "--window", "x"], "--window"),
        (["--game", "kart", "--encoding", "onehot"], "--encoding"),
        (["--game", "kart", "--split", "0.5,0.2"], "must sum to 1"),
        (["--game", "kart", "--classes", "wasd9"], "--classes needs --encoding combo"),
        (["--game", "kart", "--encoding", "combo", "--classes", "w,x"], "'x', which is not one of the actions"),
        (["--game", "kart", "--balance", "w=x"], "CLASS=WEIGHT"),
        (["--game", "kart", "--window", "500"], "no window of 500 frames"),
        (["k1", "--split", "0.8,0.2"], "needs at least 2 sessions"),
        (["--game", "kart", "--out-format"], "unrecognized arguments"),
        # The model sidecar never overwrites the export: by its default name (.json) or given.
        (["--game", "kart", "--format", "npz", "--out", "{tmp}/s.json"],
         "sidecar would overwrite the export {tmp}/s.json; name the export s.npz, or give --sidecar"),
        (["--game", "kart", "--out", "{tmp}/h.npz", "--sidecar", "{tmp}/h.npz"], "sidecar would overwrite"),
        (["--game", "kart", "--out", "{tmp}/h.npz", "--sidecar", "{tmp}/none/../h.npz"], "sidecar would overwrite"),
        # Every output is checked before anything is written.
        (["--game", "kart", "--sidecar", "{tmp}/none/m.json"],
         "cannot write model sidecar {tmp}/none/m.json: directory {tmp}/none does not exist"),
        (["--game", "kart", "--out", "{tmp}/none/x.npz"], "directory {tmp}/none does not exist"),
        # Sizes past what the int64 kernels hold: one line, not a Numba traceback.
        (["--game", "kart", "--window", "100000000000000000000"], "spans 100000000000000000000 frames"),
        (["--game", "kart", "--stride", "100000000000000000000"], "stride 100000000000000000000 is out of range"),
        (["--game", "kart", "--offset", "100000000000000000000"], "offset 100000000000000000000 is out of range"),
        (["--game", "kart", "--offset", "-100000000000000000000"], "offset -100000000000000000000 is out"),
        (["--game", "kart", "--window", "5000000000", "--skip", "5000000000"], "spans 24999999995000000001 frames"),
        (["--game", "kart", "--split", "0.5,0.5", "--seed", "-1"], "--seed must be an integer >= 0"),
        # A part of fraction 0 is left out (see test_cli_split_with_a_zero_part), but a nonzero part that
        # gets no window is still refused, by its name.
        (["--game", "kart", "--split", "0.99,0,0.01", "--split-by", "time"], "the test part of a split by time"),
        (["--game", "kart", "--actions", ","], "actions ',' include an empty name"),
        (["--game", "kart", "--actions", "w,,a"], "include an empty name"),
        (["--game", "k1"], "no sessions of game 'k1'"),  # a session name is not a game
        (["--game", "kart", "--format", "hdf5"], "suffix .npz but the format is hdf5; name it x.h5"),
    ],
)
@pytest.mark.parametrize("existing", [False, True])
def test_cli_errors_are_one_line_exit_2(kart: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        args: list[str], message: str, existing: bool) -> None:
    """A refused build writes nothing: no --out file where there was none, an earlier one left intact,
    no sidecar, no partial file."""
    args = [x.replace("{tmp}", str(tmp_path)) for x in args]
    message = message.replace("{tmp}", str(tmp_path))
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.npz")]
    out = Path(args[args.index("--out") + 1])
    if existing and out.parent.is_dir():
        out.write_bytes(b"an earlier export")
    before = sorted(tmp_path.iterdir())
    code, _, err = run_cli(capsys, "build", *args, "--data-dir", str(kart["root"]))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(tmp_path.iterdir()) == before  # nothing new: no sidecar, no partial or probe file
    assert out.read_bytes() == b"an earlier export" if existing and out.parent.is_dir() else not out.exists()


def test_cli_split_with_a_zero_part(kart: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.npz"
    code, text, err = run_cli(capsys, "build", "--game", "kart", "--data-dir", str(kart["root"]), "--window", "4",
                              "--split", "0.9,0,0.1", "--split-by", "time", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "split by time 0.9,0,0.1: train" in text and "val" not in text
    assert list(read_spec(out)["parts"]) == ["train", "test"] and len(load(out, "test")[1])


def test_cli_info_and_format_errors(tmp_path: Path, kart: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["info", str(tmp_path / "none.h5")], "does not exist"),
        (["build", "--game", "kart", "--data-dir", str(kart["root"]), "--out", str(tmp_path / "x.txt")], "suffix"),
        (["frobnicate"], "invalid choice"),
    ):
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_progress_bar_draws_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, delay=0.0)
    bar(0, 200)
    bar(100, 200)  # throttled: under 0.1 s since the last draw
    bar(200, 200)
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "100%" in text and "\n" not in text[:-1]
    quiet = io.StringIO()
    short = ProgressBar(quiet, delay=60.0)
    short(0, 10)
    short(10, 10)
    assert quiet.getvalue() == ""


def test_class_list_parsing() -> None:
    assert parse_classes("wasd9") == WASD9
    assert parse_classes("none, w, a+d") == ((), ("w",), ("a", "d"))
