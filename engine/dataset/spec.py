"""The dataset spec: everything a training script and engine-play need to know about a set of windows.

A :class:`DatasetSpec` travels with every :class:`~engine.dataset.windows.Windows` and is written into
every export (as JSON: the file describes itself) and, as far as play needs it, into the model sidecar
``m.json`` (:meth:`DatasetSpec.sidecar`). Fields:

    window, skip, stride, offset   the window geometry: a window ending at frame t holds frames
                                   t-(window-1)*skip ... t (oldest first), ends are ``stride`` apart
                                   within a run, the label is the action row of frame t+offset
    max_gap                        a step between timestamps over this many frame periods is a gap
    fps, frame_shape, color        the sessions' capture spec (all sessions share it)
    actions                        label columns (multihot), or the names classes are made of (combo)
    encoding, classes              "multihot" (one 0/1 column per action) or "combo" (one class per key
                                   combination, class i = exactly the actions in classes[i] held)
    sources                        the sessions: name, game, path, frames, status
    split                          None, or {"by", "fractions", "seed", "blocks", "part", "assignment"}
    balance                        None, or the balancing report (mode, weights, seed, before, after)
    unlisted                       combo with given classes: windows dropped because their key combination
                                   is not one of the classes
    axes                           axis targets (mouse motion, pad sticks): one engine.axes_spec dict per axis,
                                   {"name", "encoding", parameters}, in target column order; [] for none
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from engine.axes_spec import AxisSpec, AxisSpecError
from engine.errors import EngineError
from engine.sidecar import Color, Layout, ModelSidecar

Encoding = Literal["multihot", "combo"]
Combo = tuple[str, ...]

SPEC_VERSION = 1


class DatasetError(EngineError):
    """A dataset cannot be built, split, balanced, exported or read; the message is one line saying what
    is wrong and what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """How a set of windows was cut from which sessions. Immutable; derive with :meth:`with_`."""

    window: int
    skip: int
    stride: int
    offset: int
    fps: float
    frame_shape: tuple[int, ...]
    color: Color
    actions: tuple[str, ...]
    encoding: Encoding
    classes: tuple[Combo, ...] = ()
    max_gap: float = 1.5
    sources: tuple[Mapping[str, Any], ...] = ()
    split: Mapping[str, Any] | None = None
    balance: Mapping[str, Any] | None = None
    unlisted: int = 0
    axes: tuple[AxisSpec, ...] = ()
    format_version: int = field(default=SPEC_VERSION)

    @property
    def span(self) -> int:
        """Consecutive frames one window covers: (window - 1) * skip + 1."""
        return (self.window - 1) * self.skip + 1

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height), the order the sidecar uses."""
        return (int(self.frame_shape[1]), int(self.frame_shape[0]))

    def with_(self, **changes: Any) -> DatasetSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists for tuples), field order as declared."""
        d = asdict(self)
        d["frame_shape"] = list(self.frame_shape)
        d["actions"] = list(self.actions)
        d["classes"] = [list(c) for c in self.classes]
        d["sources"] = [dict(s) for s in self.sources]
        d["split"] = dict(self.split) if self.split is not None else None
        d["balance"] = dict(self.balance) if self.balance is not None else None
        d["axes"] = [a.to_dict() for a in self.axes]
        d["span"] = self.span
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetSpec:
        """Inverse of :meth:`to_dict` (derived keys such as span are ignored). Raises DatasetError."""
        try:
            if d.get("format_version", SPEC_VERSION) != SPEC_VERSION:
                raise DatasetError(
                    f"dataset spec version {d.get('format_version')!r} is not supported (this engine reads "
                    f"{SPEC_VERSION}); re-export the dataset"
                )
            return cls(
                window=int(d["window"]),
                skip=int(d["skip"]),
                stride=int(d["stride"]),
                offset=int(d["offset"]),
                fps=float(d["fps"]),
                frame_shape=tuple(int(x) for x in d["frame_shape"]),
                color=d["color"],
                actions=tuple(str(a) for a in d["actions"]),
                encoding=d["encoding"],
                classes=tuple(tuple(str(a) for a in c) for c in d.get("classes") or ()),
                max_gap=float(d.get("max_gap", 1.5)),
                sources=tuple(dict(s) for s in d.get("sources") or ()),
                split=d.get("split"),
                balance=d.get("balance"),
                unlisted=int(d.get("unlisted", 0)),
                axes=tuple(AxisSpec.from_dict(a) for a in d.get("axes") or ()),
            )
        except AxisSpecError as e:
            raise DatasetError(f"the dataset spec's axes do not validate: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"the dataset spec is incomplete or damaged ({type(e).__name__}: {e})") from None

    def sidecar(self, layout: Layout = "frames") -> ModelSidecar:
        """The model sidecar skeleton for a model trained on these windows (engine-play checks a model
        against it): fps, window, skip, frame size, colour, layout, actions, encoding, classes, axes; default
        input scale (pixel / 255) and thresholds."""
        return ModelSidecar(
            fps=self.fps,
            window=self.window,
            skip=self.skip,
            frame_size=self.frame_size,
            color=self.color,
            layout=layout,
            actions=self.actions,
            encoding=self.encoding,
            classes=self.classes if self.encoding == "combo" else (),
            axes=self.axes,
        )


__all__ = ["SPEC_VERSION", "Combo", "DatasetError", "DatasetSpec", "Encoding"]
