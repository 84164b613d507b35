"""Training data for engine-train: a train and a validation part, turned into model inputs.

Sources: a :class:`~engine.dataset.Windows` over recorded sessions (split here, optionally balanced), or a
file written by ``engine-dataset build`` that holds a ``train`` and a ``val`` part. Either way a part hands
out uint8 windows (n, W, H, W'[, C]) on demand (Windows: one gather-kernel call per batch, nothing held in
memory; a file: its arrays, loaded once) and labels as :meth:`Windows.gather` gives them.

Model input (:func:`to_input`): float32 (n, H, W', W*C) in the sidecar's "channels" layout (channel f*C + c
holds channel c of frame f, frame 0 the oldest), each pixel p mapped through
:func:`engine.dataset.kernels.scale_lut`, the table engine-play feeds a float32 model with. So the model
sees bit-identical numbers in training and in play, and a uint8-quantised model with input scale 1/255
sees the pixels themselves. Why "channels": a plain 2-D CNN over stacked frames needs no transpose in the
graph, and play writes that layout straight into the input tensor.

Masks: rectangles of the frame (frame pixels) that the model must not look at, such as a HUD that shows
the keys being pressed (a model would copy the keys from it instead of learning to play, then read its
own keys back in play). They are applied inside the model (:mod:`engine.train.net`), so play needs no
help; here they are only parsed and checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.dataset import DatasetSpec, Windows, kernels
from engine.dataset.balance import AxisBalance, BalanceMode, Weights
from engine.dataset.reader import load, load_axes, read_spec
from engine.dataset.spec import DatasetError
from engine.dataset.split import SplitBy
from engine.errors import EngineError
from engine.sidecar import ModelSidecar
from engine.train.mixed import Layout, layout_of

Rect = tuple[int, int, int, int]  # x, y, width, height in frame pixels


class TrainError(EngineError):
    """Training cannot start or finish; the message is one line saying what is wrong and what to do."""


@dataclass(frozen=True)
class Part:
    """One part (train or val): ``len(part)`` windows; :meth:`windows` gathers them as uint8."""

    name: str
    labels: np.ndarray  # (N, A) uint8 multi-hot rows, or (N,) int64 class indices
    _gather: Callable[[np.ndarray], np.ndarray]
    axes: np.ndarray | None = None  # (N, K) float32 encoded axis targets (engine.axes_spec); None: no axes
    axis_values: np.ndarray | None = None  # (N, K) float32 the same in natural units

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def windows(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 (n, W, H, W'[, C]) windows ``idx``, oldest frame first (a new array)."""
        return self._gather(np.asarray(idx, dtype=np.int64))

    def batches(self, batch_size: int, shuffle: bool = False, seed: int | None = None
                ) -> list[np.ndarray]:
        """Window indices per batch: in order, or permuted by ``numpy.random.default_rng(seed)``."""
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n, dtype=np.int64)
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass(frozen=True)
class TrainData:
    """Train and validation windows cut one way (``spec``), and where they came from (``source``)."""

    spec: DatasetSpec
    train: Part
    val: Part
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Model input without the batch axis, "channels" layout: (H, W', W*C)."""
        h, w = self.spec.frame_shape[:2]
        return (int(h), int(w), self.spec.window * _channels(self.spec))

    @property
    def outputs(self) -> int:
        """Model outputs: one per action (multihot) or per class (combo), then one block per axis."""
        return self.layout.width

    @property
    def layout(self) -> Layout:
        """Where the key columns and each axis' block sit in the model output (engine.train.mixed)."""
        s = self.spec
        return layout_of(s.encoding, s.actions, s.classes, s.axes)

    def targets(self, part: Part) -> np.ndarray:
        """Training targets of data with axes: float32 (N, outputs), keys then axis blocks."""
        axes = part.axes if part.axes is not None else np.zeros((len(part), 0), np.float32)
        return self.layout.targets(part.labels, axes)

    def sidecar(self) -> ModelSidecar:
        """The m.json for a model trained on this data (layout "channels", default scale and thresholds)."""
        return self.spec.sidecar("channels")

    def input(self, part: Part, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        """Model input (float32, channels layout) of windows ``idx`` of ``part``."""
        return to_input(part.windows(idx), self.spec)

    # ---- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_windows(
        cls,
        windows: Windows,
        fractions: Sequence[float] = (0.8, 0.2),
        by: SplitBy = "time",
        blocks: int = 5,
        seed: int = 0,
        balance: Weights | None = None,
        balance_mode: BalanceMode = "under",
        balance_axes: AxisBalance = "sign",
    ) -> TrainData:
        """Split ``windows`` into train and val (a third fraction, test, is cut away unused) sharing no
        frame, and balance the train part when ``balance`` is given (with axis targets, also by each axis'
        sign, bin or not: ``balance_axes``, see :meth:`Windows.balance`). Raises DatasetError (one line)."""
        if len(fractions) < 2 or fractions[1] <= 0:
            raise DatasetError(f"training needs a validation part: give fractions like 0.8,0.2, not {fractions}")
        parts = windows.split(fractions, by=by, seed=seed, blocks=blocks)
        train, val = parts["train"], parts["val"]
        if balance is not None:
            train = train.balance(balance, mode=balance_mode, seed=seed, axes=balance_axes)
        names = ", ".join(s.name for s in windows.sessions[:3]) + (" ..." if len(windows.sessions) > 3 else "")
        return cls(
            spec=train.spec, train=_windows_part("train", train), val=_windows_part("val", val),
            source=f"{len(windows.sessions)} session(s) ({names}), split by {by} "
                   f"{','.join(f'{f:g}' for f in fractions)}",
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainData:
        """The ``train`` and ``val`` parts of an engine-dataset export (.npz or .h5), loaded into memory.

        Raises DatasetError (one line) when the file is not an export or lacks either part."""
        p = Path(path)
        raw = read_spec(p)
        have = list(raw.get("parts", {}))
        for need in ("train", "val"):
            if need not in have:
                raise DatasetError(
                    f"{p} has no {need} part (it holds {', '.join(have) or 'none'}); export it with "
                    "engine-dataset build --split 0.8,0.2, or train from sessions with --game"
                )
        spec = DatasetSpec.from_dict(raw)
        parts = {}
        for name in ("train", "val"):
            x, y = load(p, name, float32=False)
            axes, values = load_axes(p, name) if spec.axes else (None, None)
            parts[name] = Part(name, y, _array_gather(x), axes, values)
        names = [str(src.get("name")) for src in spec.sources]
        sessions = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        return cls(spec=spec, train=parts["train"], val=parts["val"],
                   source=f"{p.name}: {len(names)} session(s) ({sessions}), {raw.get('store', 'windows')} store")


def _windows_part(name: str, w: Windows) -> Part:
    def gather(idx: np.ndarray) -> np.ndarray:
        return w.gather(idx)[0]

    if not w.spec.axes:
        return Part(name, np.asarray(w.labels), gather)
    return Part(name, np.asarray(w.labels), gather, np.asarray(w.axis_targets), np.asarray(w.axis_values))


def _array_gather(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def gather(idx: np.ndarray) -> np.ndarray:
        return np.asarray(x[idx])

    return gather


def _channels(spec: DatasetSpec) -> int:
    return 3 if spec.color == "rgb" else 1


def to_input(windows: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """uint8 (n, W, H, W'[, C]) -> float32 (n, H, W', W*C): the scale LUT and the "channels" layout in one
    pass (the LUT is indexed through a transposed view, which writes the result in its final order)."""
    n, w = windows.shape[:2]
    h, width = spec.frame_shape[:2]
    c = _channels(spec)
    frames = windows.reshape(n, w, h, width, c).transpose(0, 2, 3, 1, 4)
    out: np.ndarray = kernels.scale_lut()[frames].reshape(n, h, width, w * c)
    return out


@dataclass(frozen=True)
class Mirror:
    """Horizontal-flip augmentation for games that look the same mirrored: a flipped window is labelled
    with each action pair swapped (left <-> right).

    Masks must then be symmetric (:func:`mirrored_rects`): a HUD hidden on the left shows up on the right
    of a flipped window, and a one-sided mask would also let the model tell flipped windows from real
    ones by where the hidden box is, and learn the two separately."""

    pairs: tuple[tuple[str, str], ...]
    encoding: str
    perm: np.ndarray  # multihot: label column i of a flipped window comes from column perm[i]
    class_map: np.ndarray  # combo: class c flipped is class class_map[c], -1 when not among the classes

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, str]], spec: DatasetSpec) -> Mirror:
        """Raises TrainError when a pair names an action the data does not have, or one action twice."""
        if spec.axes and pairs:
            names = ", ".join(a.name for a in spec.axes)
            raise TrainError("--mirror is not available with axis targets (a flipped frame would need its "
                             f"motion mirrored too): drop --mirror or the axes ({names})")
        actions = list(spec.actions)
        swap = {a: a for a in actions}
        for a, b in pairs:
            for name in (a, b):
                if name not in actions:
                    raise TrainError(f"mirror pair {a}={b}: {name!r} is not one of the actions "
                                     f"({', '.join(actions)})")
            if a == b or swap[a] != a or swap[b] != b:
                raise TrainError(f"mirror pair {a}={b}: each action may appear in one pair, with another action")
            swap[a], swap[b] = b, a
        perm = np.array([actions.index(swap[a]) for a in actions], np.int64)
        index = {frozenset(c): i for i, c in enumerate(spec.classes)}
        class_map = np.array([index.get(frozenset(swap[a] for a in c), -1) for c in spec.classes], np.int64)
        return cls(tuple((a, b) for a, b in pairs), spec.encoding, perm, class_map)

    def apply(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Flip a random half of the batch (inputs (n, H, W', C), float32) in place; return (x, new y)."""
        flip = rng.random(len(x)) < 0.5
        y = y.copy()
        if self.encoding == "multihot":
            y[flip] = y[flip][:, self.perm]
        else:
            flip &= self.class_map[y] >= 0  # a combination whose mirror is not a class stays as it is
            y[flip] = self.class_map[y[flip]]
        x[flip] = x[flip][:, :, ::-1]
        return x, y


def shift_batch(x: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Shift each input (n, H, W', C) sideways by a random whole number of pixels in [-max_shift,
    max_shift], in place, repeating the edge column into the uncovered side; return ``x``.

    For games where what matters is where things are relative to each other (the car against the road),
    not where they are on the screen: the labels stay as they are."""
    for i, s in enumerate(rng.integers(-max_shift, max_shift + 1, len(x)).tolist()):
        if s > 0:
            x[i, :, s:] = x[i, :, :-s].copy()
            x[i, :, :s] = x[i, :, s : s + 1]
        elif s < 0:
            x[i, :, :s] = x[i, :, -s:].copy()
            x[i, :, s:] = x[i, :, s - 1 : s]
    return x


def mirrored_rects(rects: Sequence[Rect], frame_size: tuple[int, int]) -> tuple[Rect, ...]:
    """``rects`` and their mirror images about the frame's vertical centre line (duplicates dropped)."""
    width = frame_size[0]
    out: list[Rect] = []
    for x, y, w, h in rects:
        for r in ((x, y, w, h), (width - x - w, y, w, h)):
            if r not in out:
                out.append(r)
    return tuple(out)


def parse_mirror(text: str) -> tuple[str, str]:
    """'left=right' -> ("left", "right"). Raises TrainError."""
    a, sep, b = text.partition("=")
    if not sep or not a.strip() or not b.strip():
        raise TrainError(f"mirror {text!r} is not ACTION=ACTION (e.g. left=right)")
    return a.strip(), b.strip()


def mask_array(rects: Sequence[Rect], frame_size: tuple[int, int]) -> np.ndarray | None:
    """float32 (H, W', 1): 0 inside any of ``rects`` (clipped to the frame), 1 elsewhere; None without rects.

    frame_size: (width, height). Raises TrainError when a rectangle lies wholly outside the frame or would
    hide all of it (both are surely mistakes: the wrong frame size, or a mask in window pixels)."""
    if not rects:
        return None
    width, height = frame_size
    mask = np.ones((height, width, 1), np.float32)
    for x, y, w, h in rects:
        if w <= 0 or h <= 0:
            raise TrainError(f"mask {x},{y},{w},{h}: width and height must be positive")
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x0 >= x1 or y0 >= y1:
            raise TrainError(f"mask {x},{y},{w},{h} lies outside the {width}x{height} frame; masks are in frame "
                             "pixels (the recorded size), not window pixels")
        mask[y0:y1, x0:x1] = 0.0
    if not mask.any():
        raise TrainError(f"the masks hide the whole {width}x{height} frame; the model would see nothing")
    return mask


def parse_rect(text: str) -> Rect:
    """'X,Y,W,H' -> (x, y, w, h) in frame pixels. Raises TrainError."""
    try:
        x, y, w, h = (int(p) for p in text.split(","))
    except ValueError:
        raise TrainError(f"mask {text!r} is not X,Y,W,H in frame pixels (e.g. 0,50,16,10)") from None
    return x, y, w, h


__all__ = [
    "Mirror",
    "Part",
    "Rect",
    "TrainData",
    "TrainError",
    "mask_array",
    "mirrored_rects",
    "parse_mirror",
    "parse_rect",
    "shift_batch",
    "to_input",
]
