"""Training windows over recorded sessions, read straight from the sessions' memory maps.

A window ending at frame t holds frames t-(W-1)k ... t (W = ``window``, k = ``skip``, oldest first) and is
labelled by the action row of frame t + ``offset``. Windows never cross a session boundary, a pause or a
run of dropped frames (a timestamp step over ``max_gap`` frame periods); a window whose label frame lies
beyond such a gap is skipped. Within each run of evenly spaced frames, window ends are ``stride`` apart.

Nothing is copied when windows are made: a :class:`Windows` is an index (session, last frame) plus labels,
and frames are gathered from the memory maps into a batch only when asked (:meth:`Windows.batches`,
:meth:`Windows.gather`), by one Numba kernel call per batch. Splits and balancing give new
:class:`Windows` over the same sessions.

Over 400 lines on purpose: :class:`Windows` is one index whose constructors, splits, balancing and gathers
share its invariants (ends sorted per session, labels aligned); what stands alone is already apart
(kernels, balance, split, labels).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.axes_spec import AxisSpec, AxisSpecError, resolve_axes
from engine.dataset import balance as _balance
from engine.dataset import chunked, kernels
from engine.dataset import interventions as _interventions
from engine.dataset import split as _split
from engine.dataset.interventions import Interventions
from engine.dataset.labels import ClassTable, combo_name, masks, parse_classes
from engine.dataset.spec import DatasetError, DatasetSpec, Encoding
from engine.errors import EngineError
from engine.session import Session
from engine.session import data_dir as resolve_data_dir
from engine.session import sessions as list_sessions
from engine.sidecar import Layout, ModelSidecar

SessionLike = Session | str | os.PathLike[str]
MAX_FRAMES = 2**62  # bound on a window's span, stride and |offset|: see Windows.__init__


def resolve_sessions(
    sessions: SessionLike | Sequence[SessionLike], data_dir: str | os.PathLike[str] | None = None
) -> list[Session]:
    """Open what ``sessions`` names, in order, each session once.

    Each item is a :class:`Session`, a session directory, a session name in ``<data_dir>/sessions``, or a
    game name (all that game's sessions in the data dir, oldest first). data_dir: as
    :func:`engine.session.data_dir` resolves it. Raises DatasetError when nothing matches an item.
    """
    items: Sequence[SessionLike] = (
        [sessions] if isinstance(sessions, (Session, str, os.PathLike)) else list(sessions)
    )
    root = resolve_data_dir(Path(data_dir) if data_dir is not None else None)
    out: list[Session] = []
    seen: set[Path] = set()

    def add(s: Session) -> None:
        key = s.path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(s)

    for item in items:
        if isinstance(item, Session):
            add(item)
            continue
        path = Path(item)
        named = root / "sessions" / str(item)
        try:
            if (path / "meta.json").is_file():
                add(Session.open(path))
            elif isinstance(item, str) and os.sep not in item and (named / "meta.json").is_file():
                add(Session.open(named))
            else:
                found = list_sessions(root, game=str(item)) if isinstance(item, str) and os.sep not in item else []
                if not found:
                    raise DatasetError(
                        f"{str(item)!r} is not a session directory, nor a session or game in {root / 'sessions'}; "
                        "list them with engine-sessions, or pass --data-dir"
                    )
                for info in found:
                    add(Session.open(info.path))
        except DatasetError:
            raise
        except EngineError as e:  # StorageError and friends: already one line
            raise DatasetError(str(e)) from None
    if not out:
        raise DatasetError("no sessions given; name sessions, a session directory or a game")
    return out


def game_sessions(game: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The session directories of ``game`` in ``<data_dir>/sessions``, oldest first. Unlike
    :func:`resolve_sessions`, a session's name never matches: ``--game k1`` must not quietly take the
    session k1 for a game. Raises DatasetError when the game has no session."""
    root = resolve_data_dir(Path(data_dir) if data_dir is not None else None)
    try:
        found = list_sessions(root, game=game)
    except EngineError as e:  # StorageError: an unreadable data dir, already one line
        raise DatasetError(str(e)) from None
    if not found:
        raise DatasetError(
            f"no sessions of game {game!r} in {root / 'sessions'}; list the games with engine-sessions, "
            "or pass --data-dir"
        )
    return [info.path for info in found]


class Windows:
    """Training windows over sessions; see the module docs.

    ``Windows(sessions, window=20, skip=1, stride=1, offset=0, encoding="multihot", classes=None, ...)``

    sessions: Session objects, session directories, session names or a game name (see
    :func:`resolve_sessions`; ``data_dir`` says where names are looked up). All sessions must share fps,
    frame shape and colour, and hold every action in ``actions`` (default: the first session's actions,
    in its column order; label columns follow this order).
    encoding: "multihot" (label: (A,) uint8 row) or "combo" (label: int class index into ``classes``).
    classes: combo only: the key combinations, e.g. :data:`engine.dataset.labels.WASD9`, [("w", "a"), ...]
    or ["w+a", "none", ...] or a preset name ("wasd9"), or None for the combinations observed (fewest keys
    first). Windows whose combination is not listed are dropped (counted in ``spec.unlisted``).
    max_gap: a timestamp step over this many frame periods is a gap.
    interventions: how takeover sessions (engine-play --takeover --record) contribute: only the windows
    the person labelled, repeated ``weight`` times, with ``before`` frames ahead of each takeover (see
    :mod:`engine.dataset.interventions`); ordinary sessions are kept whole.
    parallel: force the serial (False) or parallel (True) kernels; None picks by size.
    axes: the axis targets (mouse motion, pad sticks) beside the labels: None for every axis the first
    session records, each with its default encoding; or names, "name=encoding..." texts or
    :class:`~engine.axes_spec.AxisSpec` (an axis not listed is left out; () for none). Each window's
    target is the axis row of its label frame: :attr:`axis_values` in natural units, :attr:`axis_targets`
    encoded (see :mod:`engine.axes_spec`). axis_specs: encodings ("name=encoding..." or AxisSpec) for some of
    the chosen axes (engine-dataset --axis), the others keep their default.

    Raises DatasetError (one line) for bad arguments, mismatched sessions and selections without windows.
    """

    def __init__(
        self,
        sessions: SessionLike | Sequence[SessionLike],
        window: int = 20,
        skip: int = 1,
        stride: int = 1,
        offset: int = 0,
        encoding: Encoding = "multihot",
        classes: str | Sequence[Sequence[str] | str] | None = None,
        *,
        actions: Sequence[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_gap: float = 1.5,
        parallel: bool | None = None,
        interventions: Interventions | None = None,
        axes: Sequence[str | AxisSpec] | None = None,
        axis_specs: Sequence[str | AxisSpec] = (),
    ) -> None:
        for name, value, least in (("window", window, 1), ("skip", skip, 1), ("stride", stride, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise DatasetError(f"{name} must be an integer >= {least}, got {value!r}")
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
            raise DatasetError(f"offset must be an integer, got {offset!r}")
        # The kernels index in int64: past this bound their arithmetic (start + span, end + offset) could
        # overflow, and no recording comes near it (2**62 frames is a billion years at 144 fps).
        span = (int(window) - 1) * int(skip) + 1
        if span >= MAX_FRAMES:
            raise DatasetError(f"window {window} with skip {skip} spans {span} frames, far more than any "
                               "session holds (the limit is 2**62); choose a shorter window or a smaller skip")
        for name, value in (("stride", stride), ("offset", offset)):
            if abs(int(value)) >= MAX_FRAMES:
                raise DatasetError(f"{name} {value} is out of range: it must lie within +-2**62 frames, far "
                                   "more than any session holds")
        if encoding not in ("multihot", "combo"):
            raise DatasetError(f"encoding must be 'multihot' or 'combo', not {encoding!r}")
        if classes is not None and encoding != "combo":
            raise DatasetError("classes are only for encoding 'combo'")
        if not max_gap >= 1.0:
            raise DatasetError(f"max_gap must be at least 1 frame period, got {max_gap}")
        opened = resolve_sessions(sessions, data_dir)
        names, cols = _label_columns(opened, actions)
        axis_specs, axis_cols = _axis_columns(opened, axes, axis_specs)
        first = opened[0]
        fps, shape, color = first.fps, tuple(first.meta["frame_shape"]), first.meta["color"]

        self._sessions = opened
        self._source = chunked.frame_source([s.frames for s in opened])
        self._parallel = parallel
        gap = kernels.max_gap_ns(fps, max_gap)
        sess_parts, end_parts, row_parts, axis_parts = [], [], [], []
        how = interventions or Interventions()
        self.intervention_windows = 0  # windows from takeover sessions' interventions (repeats included)
        for i, s in enumerate(opened):
            bounds = kernels.segment_bounds(np.asarray(s.timestamps), gap, parallel=parallel)
            ends = kernels.window_ends(bounds, span, int(stride), int(offset), parallel=parallel)
            # A takeover session: only the person's corrections are labels (engine.dataset.interventions).
            ends, label_rows, n_int, axis_rows = _interventions.select(
                ends, int(offset), s.control, s.actions, how, s.axes if axis_specs else None)
            self.intervention_windows += n_int * how.weight
            # One fancy-index read of the label rows (N*A bytes); the frames stay where they are.
            source_rows = label_rows if label_rows is not None else np.asarray(s.actions)
            rows = source_rows[ends + int(offset)][:, cols[i]]
            sess_parts.append(np.full(ends.shape, i, np.int64))
            end_parts.append(ends)
            row_parts.append(rows)
            axis_source = axis_rows if axis_rows is not None else np.asarray(s.axes)
            axis_parts.append(axis_source[ends + int(offset)][:, axis_cols[i]].astype(np.float32)
                              if axis_specs else np.zeros((len(ends), 0), np.float32))
        sess = np.concatenate(sess_parts)
        ends = np.concatenate(end_parts)
        rows = np.ascontiguousarray(np.concatenate(row_parts), dtype=np.uint8)
        axis_values = np.ascontiguousarray(np.concatenate(axis_parts), dtype=np.float32)
        row_masks = masks(rows)
        if not len(ends):
            raise DatasetError(
                f"the {len(opened)} session(s) hold no window of {window} frames (skip {skip}, offset {offset}) "
                "without a gap; record longer stretches or choose a shorter window"
            )
        unlisted = 0
        class_list: tuple[tuple[str, ...], ...] = ()
        labels: np.ndarray = rows
        if encoding == "combo":
            if isinstance(classes, str):
                classes = parse_classes(classes)
            table = ClassTable(classes, names) if classes is not None else ClassTable.observed(row_masks, names)
            ids = table.lookup(row_masks)
            keep = ids >= 0
            unlisted = int((~keep).sum())
            if not keep.any():
                raise DatasetError(
                    f"none of the {len(ids)} windows has a key combination in the classes "
                    f"({', '.join(table.names)}); check the classes against the actions"
                )
            sess, ends, rows, row_masks, labels = sess[keep], ends[keep], rows[keep], row_masks[keep], ids[keep]
            axis_values = axis_values[keep]
            class_list = table.classes
        self._sess, self._ends, self._rows, self._masks, self._labels = sess, ends, rows, row_masks, labels
        self._axes = axis_values
        self._spec = DatasetSpec(
            window=int(window), skip=int(skip), stride=int(stride), offset=int(offset), fps=float(fps),
            frame_shape=tuple(int(d) for d in shape), color=color, actions=names, encoding=encoding,
            classes=class_list, max_gap=float(max_gap), sources=tuple(_source_info(s) for s in opened),
            unlisted=unlisted, axes=axis_specs,
        )
        self._balance_report: _balance.BalanceReport | None = None

    # ---- derived sets ------------------------------------------------------------------------------------
    def _derive(self, idx: np.ndarray, spec: DatasetSpec) -> Windows:
        """A Windows over the same sessions holding windows ``idx`` of this one (repeats allowed)."""
        w = object.__new__(Windows)
        w._sessions, w._source, w._parallel = self._sessions, self._source, self._parallel
        w._sess, w._ends, w._rows = self._sess[idx], self._ends[idx], self._rows[idx]
        w._masks, w._labels, w._axes = self._masks[idx], self._labels[idx], self._axes[idx]
        w._spec = spec
        w._balance_report = self._balance_report
        w.intervention_windows = self.intervention_windows
        return w

    def split(
        self,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        by: _split.SplitBy = "session",
        seed: int | None = 0,
        blocks: int = 1,
    ) -> dict[str, Windows]:
        """{"train": ..., "val": ..., "test": ...} (a part per nonzero fraction: 0.9,0,0.1 gives train and
        test) sharing no frame; see :mod:`engine.dataset.split`. By time, windows that straddle two parts'
        ranges are dropped. The parts record the split in their spec. Raises DatasetError when a part with
        a nonzero fraction gets no window."""
        fr = _split.check_fractions(fractions)
        names = _split.PART_NAMES[: len(fr)]
        lengths = [len(s) for s in self._sessions]
        assignment: Any
        if by == "session":
            per_session = _split.by_session(lengths, fr, seed)
            part = per_session[self._sess]
            assignment = {n: [self._sessions[i].name for i in np.flatnonzero(per_session == p)]
                          for p, n in enumerate(names)}
        elif by == "time":
            label = self._ends + self._spec.offset
            lo = np.minimum(self._ends - self._spec.span + 1, label)
            hi = np.maximum(self._ends, label)
            part, ranges = _split.by_time(self._sess, lo, hi, lengths, fr, blocks)
            assignment = {n: {s.name: r[n] for s, r in zip(self._sessions, ranges, strict=True)} for n in names}
        else:
            raise DatasetError(f"split by must be 'session' or 'time', not {by!r}")
        out = {}
        for p, n in enumerate(names):
            if fr[p] == 0:  # a part asked to be empty is left out: an empty part could not be exported
                continue
            idx = np.flatnonzero(part == p)
            if not len(idx):
                raise DatasetError(
                    f"the {n} part of a split by {by} {','.join(f'{f:g}' for f in fr)} gets no window; "
                    "use more data, a larger fraction or a shorter window"
                )
            info = {"by": by, "fractions": list(fr), "seed": seed, "blocks": blocks if by == "time" else None,
                    "part": n, "assignment": assignment[n]}
            out[n] = self._derive(idx, self._spec.with_(split=info))
        return out

    def balance(
        self, target: _balance.Weights = "uniform", mode: _balance.BalanceMode = "under", seed: int | None = 0,
        axes: _balance.AxisBalance = "sign",
    ) -> Windows:
        """Windows resampled toward ``target`` over the classes (combo) or key combinations (multihot), with
        axis targets also by each axis' sign (``axes="sign"``), bin ("bin") or not at all ("none");
        see :mod:`engine.dataset.balance`. The result's :attr:`balance_report` and spec hold the counts
        before and after."""
        if self._spec.encoding == "combo":
            ids, names = self._labels, [combo_name(c) for c in self._spec.classes]
        else:
            table = ClassTable.observed(self._masks, self._spec.actions, min_classes=1)
            ids, names = table.lookup(self._masks), table.names
        if self._spec.axes:  # a class is the key class and each axis' bucket (its sign, or its bin)
            ids, names = _balance.with_axes(ids, names, self._spec.axes, self.axis_targets, axes)
        idx, report = _balance.balance(ids, names, target, mode, seed)
        if not len(idx):
            raise DatasetError("balancing left no window; check the balance target")
        w = self._derive(idx, self._spec.with_(balance=report.to_dict()))
        w._balance_report = report
        return w

    # ---- access ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._ends.shape[0])

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray | int]:
        """(frames (W, H, W'[, C]) uint8, label): a fresh copy of window i (negative i counts from the end)."""
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"window {i} of {n}")
        i %= n
        x, y = self.gather(np.array([i]))
        return x[0], (y[0] if self._spec.encoding == "multihot" else int(y[0]))

    def gather(
        self, indices: np.ndarray | Sequence[int], out: np.ndarray | None = None, float32: bool = False,
        *, parallel: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames and labels of windows ``indices``: x (n, W, H, W'[, C]) uint8, or float32 scaled as play
        scales (pixel / 255), written into ``out`` when given (its dtype then decides); y (n, A) uint8 or
        (n,) int64. parallel: overrides the Windows' choice for this call (e.g. False in a forked worker,
        where the OpenMP runtime must not be used)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {idx.shape}")
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"window indices must lie in [-{len(self)}, {len(self)})")
        idx = idx % max(len(self), 1)
        shape = (len(idx), self._spec.window, *self._spec.frame_shape)
        if out is None:
            out = np.empty(shape, np.float32 if float32 else np.uint8)
        chunked.gather(self._source, self._sess[idx], self._ends[idx], self._spec.window, self._spec.skip,
                       out, parallel=self._parallel if parallel is None else parallel)
        return out, self._labels[idx]

    def batch_indices(
        self, batch_size: int, shuffle: bool = False, seed: int | None = None, drop_last: bool = False
    ) -> Iterator[np.ndarray]:
        """The window indices of each batch: in order, or permuted by ``numpy.random.default_rng(seed)``.
        Every adapter batches through this, so the same arguments give the same batches everywhere."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise DatasetError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n, dtype=np.int64)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield order[start : start + batch_size]

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int | None = None, float32: bool = False,
        drop_last: bool = False,
    ) -> Iterator[tuple[np.ndarray, ...]]:
        """(x, y) per batch, as :meth:`gather` returns them, and with axis targets a third array, the batch's
        :attr:`axis_targets` rows (n, K) float32; each batch is a new array (safe to keep)."""
        targets = self.axis_targets if self._spec.axes else None
        for idx in self.batch_indices(batch_size, shuffle, seed, drop_last):
            x, y = self.gather(idx, float32=float32)
            yield (x, y) if targets is None else (x, y, targets[idx % max(len(self), 1)])

    # ---- description -------------------------------------------------------------------------------------
    @property
    def spec(self) -> DatasetSpec:
        return self._spec

    @property
    def sessions(self) -> list[Session]:
        return list(self._sessions)

    @property
    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(session (N,) int64 into :attr:`sessions`, last frame (N,) int64) of every window (read-only)."""
        return _readonly(self._sess), _readonly(self._ends)

    @property
    def labels(self) -> np.ndarray:
        """(N, A) uint8 multi-hot rows, or (N,) int64 class indices (read-only)."""
        return _readonly(self._labels)

    @property
    def rows(self) -> np.ndarray:
        """(N, A) uint8: the action row of each window's label frame, whatever the encoding (read-only)."""
        return _readonly(self._rows)

    @property
    def axis_values(self) -> np.ndarray:
        """(N, K) float32: each window's axis row at its label frame, in natural units (read-only)."""
        return _readonly(self._axes)

    @property
    def axis_targets(self) -> np.ndarray:
        """(N, K) float32: :attr:`axis_values` encoded per the spec's axes (regression target, or bin index)."""
        cached: np.ndarray | None = self.__dict__.get("_targets")
        if cached is None:  # encoded once per Windows: adapters index it every batch
            cols = [a.encode(self._axes[:, k]) for k, a in enumerate(self._spec.axes)]
            cached = np.stack(cols, axis=1) if cols else np.zeros((len(self), 0), np.float32)
            self.__dict__["_targets"] = cached
        return _readonly(cached)

    @property
    def balance_report(self) -> _balance.BalanceReport | None:
        return self._balance_report

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return self._spec.frame_shape

    def class_counts(self) -> dict[str, int]:
        """Windows per class (combo) or per key combination (multihot), by name."""
        if self._spec.encoding == "combo":
            counts = np.bincount(self._labels, minlength=len(self._spec.classes))
            return {combo_name(c): int(n) for c, n in zip(self._spec.classes, counts.tolist(), strict=True)}
        if not len(self):
            return {}
        table = ClassTable.observed(self._masks, self._spec.actions, min_classes=1)
        counts = np.bincount(table.lookup(self._masks), minlength=len(table))
        return dict(zip(table.names, (int(c) for c in counts), strict=True))

    def sidecar(self, layout: Layout = "frames") -> ModelSidecar:
        """The model sidecar skeleton (m.json) for a model trained on these windows."""
        return self._spec.sidecar(layout)

    def __repr__(self) -> str:
        s = self._spec
        return (f"<Windows {len(self)} x {s.window} frames (skip {s.skip}, stride {s.stride}, offset {s.offset}) "
                f"{s.encoding} from {len(self._sessions)} session(s)>")

    # ---- pickling (DataLoader workers): sessions are re-opened, never copied -----------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_sessions", "_source")}
        state["_paths"] = [str(s.path) for s in self._sessions]
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        paths = state.pop("_paths")
        self.__dict__.update(state)
        self._sessions = [Session.open(p) for p in paths]
        self._source = chunked.frame_source([s.frames for s in self._sessions])


def _label_columns(
    opened: Sequence[Session], actions: Sequence[str] | None
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The label action names and, per session, the columns of its actions.npy that hold them. Checks that
    the sessions share one capture spec (fps, frame shape, colour) and all record these actions."""
    first = opened[0]
    fps, shape, color = first.fps, tuple(first.meta["frame_shape"]), first.meta["color"]
    names = tuple(actions) if actions is not None else tuple(first.actions_names)
    if not names and not first.axis_names:  # axes alone (a mouse-steered game) are targets enough
        raise DatasetError(f"session {first.name!r} records no actions; there is nothing to label")
    if any(not str(a).strip() for a in names):
        raise DatasetError(f"actions {','.join(names)!r} include an empty name; list action names like w,a,s,d")
    if len(set(names)) != len(names):
        raise DatasetError(f"actions {', '.join(names)} name an action twice; list each once")
    cols = []
    for s in opened:
        if abs(s.fps - fps) > 1e-6 * fps or tuple(s.meta["frame_shape"]) != shape or s.meta["color"] != color:
            raise DatasetError(
                f"session {s.name!r} was recorded at {s.fps:g} fps, {_shape_text(s.meta['frame_shape'])} "
                f"{s.meta['color']}, but {first.name!r} at {fps:g} fps, {_shape_text(shape)} {color}; "
                "windows need one capture spec: pick sessions that match"
            )
        have = s.actions_names
        missing = [a for a in names if a not in have]
        if missing:
            raise DatasetError(
                f"session {s.name!r} does not record action {missing[0]!r} (it has {', '.join(have)}); "
                "choose the actions all sessions share"
            )
        cols.append(np.array([have.index(a) for a in names], np.int64))
    return names, cols


def _axis_columns(
    opened: Sequence[Session], axes: Sequence[str | AxisSpec] | None, specs_given: Sequence[str | AxisSpec] = ()
) -> tuple[tuple[AxisSpec, ...], list[np.ndarray]]:
    """The axis target specs and, per session, the columns of its axes.npy that hold them."""
    have0 = list(opened[0].axis_names)
    if axes is None:
        given: list[str | AxisSpec] = []
        names = have0
    else:
        given = [a for a in axes if not (isinstance(a, str) and "=" not in a)]
        names = [a if isinstance(a, str) and "=" not in a else
                 (a.name if isinstance(a, AxisSpec) else a.partition("=")[0].strip().lower()) for a in axes]
    try:
        specs = resolve_axes(names, [*given, *specs_given])
    except AxisSpecError as e:
        raise DatasetError(str(e)) from None
    cols = []
    for s in opened:
        have = list(s.axis_names)
        missing = [a.name for a in specs if a.name not in have]
        if missing:
            raise DatasetError(f"session {s.name!r} does not record axis {missing[0]!r} (it has "
                               f"{', '.join(have) or 'no axes'}); choose the axes all sessions share")
        cols.append(np.array([have.index(a.name) for a in specs], np.int64))
    return specs, cols


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in (shape[1], shape[0], *shape[2:]))


def _source_info(s: Session) -> dict[str, Any]:
    return {"name": s.name, "game": s.meta.get("game"), "path": str(s.path.resolve()), "frames": len(s),
            "created": s.meta.get("created"), "status": s.meta.get("status")}


__all__ = ["MAX_FRAMES", "SessionLike", "Windows", "game_sessions", "resolve_sessions"]
