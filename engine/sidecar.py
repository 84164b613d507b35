"""The model sidecar: ``m.json`` beside ``m.tflite``, the contract between dataset export / training and play.

Written by dataset export (or a training script) and read by ``engine-play``. It says how the model was
trained: the capture rate, which frames make one input and how they are laid out, how pixels are scaled,
and what the output columns mean. ``format_version`` 1 fields, in file order:

    format_version  1
    fps             float > 0: the capture rate the model was trained at
    window          int >= 1: frames per model input (W)
    skip            int >= 1 (default 1): the input holds frames t-(W-1)k, ..., t-k, t with k = skip,
                    oldest first; play keeps (W-1)*skip+1 captured frames to build one (``span``)
    frame_size      [width, height] of one frame in pixels
    color           "gray" (1 channel) | "rgb" (3 channels, R G B order)
    layout          "frames": input (1, W, height, width, C), frame 0 the oldest;
                    "channels": frames stacked on the channel axis, input (1, height, width, W*C) with
                    channel f*C + c holding channel c of frame f (frame 0 the oldest)
    scale           {"multiply": m, "add": a}: the real input is pixel * m + a (pixel a uint8), before any
                    quantisation of the input tensor (default {"multiply": 1/255, "add": 0.0})
    actions         action names in output column order, e.g. ["left", "right", "up"]
    encoding        "multihot": one output per action | "combo": one output per class (one-hot)
    thresholds      multihot only: one float per action (default 0.5 each); pressed when output >= it
    hysteresis      multihot only, float >= 0 (default 0): a held action is released only when its output
                    drops below threshold - hysteresis
    classes         combo only: [[action names held], ...]; class i means exactly these are held ([] none)
    history         int >= 0 (default 0): when > 0 the model has a 2nd input (1, history, A) holding the
                    last ``history`` action vectors sent (oldest row first, 1.0 = held)

``format_version`` 2 adds one field; a sidecar has it exactly when its model has axis outputs (so an
engine that reads only version 1 refuses a model that moves the mouse instead of silently dropping the
motion; a key-only model's sidecar stays version 1):

    axes            [{"name": "mouse_dx", "encoding": "mulaw", "n": 11, "max": 40.0, "mu": 10.0}, ...]: the
                    model's output is the key outputs above (``actions`` or ``classes`` columns) followed
                    by one block per axis in this order: 1 value for "raw"/"scaled" regression, ``n``
                    softmax values for "bins"/"mulaw"; encodings and parameters in engine.axes_spec

Over 400 lines on purpose: this docstring is the file format's reference and every field's validation
(with its one-line message) sits beside the field; the axis encodings themselves are engine.axes_spec.

Unknown keys are kept (``extra``) and written back, so a trainer may add its own notes; they are logged
once on load because a misspelt field would otherwise be silently ignored. Errors are ``SidecarError``
with one line: the field, what is wrong, what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from engine.axes_spec import AxisSpec, AxisSpecError
from engine.errors import EngineError

Color = Literal["gray", "rgb"]
Layout = Literal["frames", "channels"]
Encoding = Literal["multihot", "combo"]

FORMAT_VERSION = 1
AXES_FORMAT_VERSION = 2  # a sidecar with axes
DEFAULT_THRESHOLD = 0.5
CHANNELS: dict[str, int] = {"gray": 1, "rgb": 3}

# Field order of the file; also the set of known keys.
FIELDS = (
    "format_version", "fps", "window", "skip", "frame_size", "color", "layout", "scale", "actions",
    "encoding", "thresholds", "hysteresis", "classes", "history", "axes",
)

_log = logging.getLogger("engine.sidecar")


class SidecarError(EngineError):
    """A sidecar that is missing, unreadable or does not validate (one line: field, problem, fix)."""


@dataclass(frozen=True)
class InputScale:
    """Real input value = pixel * multiply + add (pixel a uint8 0..255)."""

    multiply: float = 1.0 / 255.0
    add: float = 0.0


class FrameGeometry:
    """Sizes derived from a frames description (frame_size, color, window, skip): shared by the sidecar
    and by every other spec that describes the frames a model is fed (the Gymnasium observation)."""

    frame_size: tuple[int, int]  # (width, height)
    color: Color
    window: int
    skip: int

    @property
    def width(self) -> int:
        return self.frame_size[0]

    @property
    def height(self) -> int:
        return self.frame_size[1]

    @property
    def channels(self) -> int:
        """Channels per frame: 1 for gray, 3 for rgb."""
        return CHANNELS[self.color]

    @property
    def span(self) -> int:
        """Consecutive captured frames one input covers: (window - 1) * skip + 1."""
        return (self.window - 1) * self.skip + 1


@dataclass(frozen=True)
class ModelSidecar(FrameGeometry):
    """A validated model sidecar. Construct with keyword arguments or :meth:`from_dict`; both validate.

    Frozen: derive a changed copy with :meth:`replace` (which validates again).
    """

    fps: float
    window: int
    frame_size: tuple[int, int]  # (width, height)
    color: Color
    layout: Layout
    actions: tuple[str, ...]
    encoding: Encoding = "multihot"
    skip: int = 1
    scale: InputScale = field(default_factory=InputScale)
    thresholds: tuple[float, ...] = ()  # multihot: one per action; left empty, DEFAULT_THRESHOLD for each
    hysteresis: float = 0.0
    classes: tuple[tuple[str, ...], ...] = ()  # combo
    history: int = 0
    axes: tuple[AxisSpec, ...] = ()
    format_version: int = 0  # 0: derived (1 without axes, 2 with)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Direct callers may pass lists; store tuples so a sidecar is immutable and hashable.
        for name in ("frame_size", "actions", "thresholds"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.classes, (list, tuple)):
            object.__setattr__(
                self, "classes", tuple(tuple(c) if isinstance(c, list) else c for c in self.classes)
            )
        if isinstance(self.axes, list):
            object.__setattr__(self, "axes", tuple(self.axes))
        if self.format_version == 0:
            object.__setattr__(self, "format_version", AXES_FORMAT_VERSION if self.axes else FORMAT_VERSION)
        if self.encoding == "multihot" and not self.thresholds and isinstance(self.actions, tuple):
            # Fill the default in so that equality and round trips do not depend on how it was spelt.
            object.__setattr__(self, "thresholds", (DEFAULT_THRESHOLD,) * len(self.actions))
        _validate(self)
        # Validated numbers may be ints (JSON "fps": 30); store floats as the annotations say.
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "hysteresis", float(self.hysteresis))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))

    # ---- derived -------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """The frames input tensor shape this spec describes (batch 1)."""
        if self.layout == "frames":
            return (1, self.window, self.height, self.width, self.channels)
        return (1, self.height, self.width, self.window * self.channels)

    @property
    def outputs(self) -> int:
        """Width of the model output: one column per action (multihot) or per class (combo), then the axis
        blocks."""
        return self.key_outputs + sum(a.size for a in self.axes)

    @property
    def key_outputs(self) -> int:
        """Width of the key part of the output (the columns before the axis blocks)."""
        return len(self.actions) if self.encoding == "multihot" else len(self.classes)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def replace(self, **changes: Any) -> ModelSidecar:
        """A validated copy with some fields changed (values as :meth:`from_dict` accepts them)."""
        data = self.to_dict()
        data.update(changes)
        if "axes" in changes:  # the version follows the axes
            data.pop("format_version", None)
        return ModelSidecar.from_dict(data)

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this sidecar: known fields in file order, then ``extra``.

        Only the fields of the chosen encoding are written (thresholds/hysteresis for multihot, classes
        for combo), so ``from_dict(to_dict(s)) == s``.
        """
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "fps": self.fps,
            "window": self.window,
            "skip": self.skip,
            "frame_size": list(self.frame_size),
            "color": self.color,
            "layout": self.layout,
            "scale": {"multiply": self.scale.multiply, "add": self.scale.add},
            "actions": list(self.actions),
            "encoding": self.encoding,
        }
        if self.encoding == "multihot":
            out["thresholds"] = list(self.thresholds)
            out["hysteresis"] = self.hysteresis
        else:
            out["classes"] = [list(c) for c in self.classes]
        out["history"] = self.history
        if self.axes:
            out["axes"] = [a.to_dict() for a in self.axes]
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSidecar:
        """Parse and validate a sidecar object (as read from JSON). Raises SidecarError (one line)."""
        if not isinstance(data, Mapping):
            raise SidecarError(f"a sidecar must be a JSON object, got {type(data).__name__}")
        axes_raw = data.get("axes") or ()
        version = data.get("format_version", AXES_FORMAT_VERSION if axes_raw else FORMAT_VERSION)
        if version not in (FORMAT_VERSION, AXES_FORMAT_VERSION):
            raise SidecarError(
                f"format_version {version!r} is not supported (this engine reads {FORMAT_VERSION} and "
                f"{AXES_FORMAT_VERSION}); re-export the sidecar or upgrade engine"
            )
        axes = []
        for a in _list(axes_raw, "axes"):
            try:
                axes.append(AxisSpec.from_dict(a))
            except AxisSpecError as e:
                raise SidecarError(f"axes: {e}") from None
        for key in ("fps", "window", "frame_size", "color", "layout", "actions"):
            if key not in data:
                raise SidecarError(f"field {key!r} is missing; add it to the sidecar")
        encoding = data.get("encoding", "multihot")
        thresholds = data.get("thresholds") or ()
        classes = data.get("classes") or ()
        scale = data.get("scale", {})
        if not isinstance(scale, Mapping) or set(scale) - {"multiply", "add"}:
            raise SidecarError(f'scale must be {{"multiply": m, "add": a}}, got {scale!r}; fix it')
        defaults = InputScale()
        return cls(
            fps=_number(data["fps"], "fps"),
            window=_integer(data["window"], "window"),
            skip=_integer(data.get("skip", 1), "skip"),
            frame_size=cast(tuple[int, int], _int_list(data["frame_size"], "frame_size")),
            color=data["color"],
            layout=data["layout"],
            scale=InputScale(
                multiply=_number(scale.get("multiply", defaults.multiply), "scale.multiply"),
                add=_number(scale.get("add", defaults.add), "scale.add"),
            ),
            actions=_str_list(data["actions"], "actions"),
            encoding=encoding,
            thresholds=tuple(_number(t, "thresholds") for t in _list(thresholds, "thresholds")),
            hysteresis=_number(data.get("hysteresis", 0.0), "hysteresis"),
            classes=tuple(_str_list(c, "classes") for c in _list(classes, "classes")),
            history=_integer(data.get("history", 0), "history", minimum=0),
            axes=tuple(axes),
            format_version=version,
            extra={k: v for k, v in data.items() if k not in FIELDS},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelSidecar:
        """Read and validate ``path``. Every problem is a one-line SidecarError naming the file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            msg = f"model sidecar {p} does not exist; write it or pass the model's settings"
            raise SidecarError(msg) from None
        except (OSError, UnicodeDecodeError) as e:
            raise SidecarError(f"cannot read model sidecar {p}: {_one_line(e)}; check the file") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            msg = f"{p} is not valid JSON (line {e.lineno}: {e.msg}); fix or re-export it"
            raise SidecarError(msg) from None
        try:
            sidecar = cls.from_dict(data)
        except SidecarError as e:
            raise SidecarError(f"{p}: {e}") from None
        if sidecar.extra:
            _log.info("%s: keeping unknown keys %s (not used by this engine)", p, sorted(sidecar.extra))
        return sidecar

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as indented JSON, atomically (a reader never sees a half-written sidecar)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, p)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            msg = f"cannot write model sidecar {p}: {_one_line(e)}; check the directory"
            raise SidecarError(msg) from None


# ---- validation ------------------------------------------------------------------------------------------
def _validate(s: ModelSidecar) -> None:
    """Check every field of a constructed sidecar; raise SidecarError with the first problem."""
    # Types first: dataclass construction does no conversion, so direct callers get the same checks.
    _number(s.fps, "fps")
    _integer(s.window, "window")
    _integer(s.skip, "skip")
    _integer(s.history, "history", minimum=0)
    _number(s.hysteresis, "hysteresis")
    want = AXES_FORMAT_VERSION if s.axes else FORMAT_VERSION
    if s.format_version != want:
        raise SidecarError(f"format_version must be {want} for a sidecar {'with' if s.axes else 'without'} axes, "
                           f"got {s.format_version!r}; " + ("add the axes or set format_version 1" if not s.axes
                                                             else "set format_version 2"))
    if not isinstance(s.axes, tuple) or any(not isinstance(a, AxisSpec) for a in s.axes):
        raise SidecarError(f"axes must be a list of axis specs, got {s.axes!r}")
    dup_axis = _first_duplicate([a.name for a in s.axes])
    if dup_axis is not None:
        raise SidecarError(f"axis {dup_axis!r} appears twice in axes; each axis has one output block")
    if set(s.actions) & {a.name for a in s.axes}:
        raise SidecarError(f"{sorted(set(s.actions) & {a.name for a in s.axes})[0]!r} is both an action and an axis")
    if s.fps <= 0:
        raise SidecarError(f"fps must be > 0, got {s.fps}; give the capture rate the model was trained at")
    if (
        not isinstance(s.frame_size, tuple)
        or len(s.frame_size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in s.frame_size)
    ):
        raise SidecarError(f"frame_size must be [width, height] with both > 0, got {s.frame_size!r}")
    _choice(s.color, Color, "color")
    _choice(s.layout, Layout, "layout")
    _choice(s.encoding, Encoding, "encoding")
    if not isinstance(s.scale, InputScale):
        raise SidecarError(f'scale must be {{"multiply": m, "add": a}}, got {s.scale!r}')
    _number(s.scale.multiply, "scale.multiply")
    _number(s.scale.add, "scale.add")
    if s.scale.multiply == 0:
        raise SidecarError("scale.multiply is 0, which makes every input the same; use e.g. 1/255")
    if not isinstance(s.actions, tuple) or not isinstance(s.classes, tuple):
        raise SidecarError("actions and classes must be lists of names")
    if any(not isinstance(c, tuple) for c in s.classes):
        raise SidecarError(f"classes must be lists of action names, got {list(s.classes)!r}")
    if not s.actions and not (s.axes and s.encoding == "multihot"):  # a model of axes alone has no key columns
        raise SidecarError("actions is empty; list the action names in output column order")
    if any(not isinstance(a, str) or not a for a in s.actions):
        raise SidecarError(f"actions must be non-empty names, got {list(s.actions)!r}")
    dup = _first_duplicate(s.actions)
    if dup is not None:
        raise SidecarError(f"action {dup!r} appears twice in actions; each output column needs its own name")
    if s.hysteresis < 0:
        raise SidecarError(f"hysteresis must be >= 0, got {s.hysteresis}")
    if s.encoding == "multihot":
        if s.classes:
            raise SidecarError('classes are only for encoding "combo"; remove them or set encoding "combo"')
        for t in s.thresholds:
            _number(t, "thresholds")
        if s.thresholds and len(s.thresholds) != len(s.actions):
            raise SidecarError(
                f"thresholds has {len(s.thresholds)} values but there are {len(s.actions)} actions; "
                "give one threshold per action"
            )
    else:
        if s.thresholds:
            raise SidecarError('thresholds are only for encoding "multihot"; remove them for "combo"')
        if s.hysteresis:
            raise SidecarError('hysteresis is only for encoding "multihot"; remove it for "combo"')
        if len(s.classes) < 2:
            raise SidecarError(f"combo needs at least 2 classes, got {len(s.classes)}; list them in classes")
        known = set(s.actions)
        seen: set[frozenset[str]] = set()
        for i, cls in enumerate(s.classes):
            unknown = [a for a in cls if a not in known]
            if unknown:
                raise SidecarError(f"class {i} {list(cls)} names {unknown[0]!r}, which is not in actions")
            if _first_duplicate(cls) is not None:
                raise SidecarError(f"class {i} {list(cls)} names an action twice")
            key = frozenset(cls)
            if key in seen:
                raise SidecarError(f"class {i} {list(cls)} repeats an earlier class; each class must differ")
            seen.add(key)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _first_duplicate(items: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _choice(value: object, kind: Any, name: str) -> None:
    options = get_args(kind)
    if value not in options:
        raise SidecarError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _number(value: object, name: str) -> float:
    # bool is an int subclass; True as an fps is a bug in whatever wrote the file.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SidecarError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _integer(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SidecarError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise SidecarError(f"{name} must be >= {minimum}, got {value}")
    return value


def _list(value: object, name: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise SidecarError(f"{name} must be a list, got {value!r}")
    return list(value)


def _int_list(value: object, name: str) -> tuple[int, ...]:
    items = _list(value, name)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise SidecarError(f"{name} must hold integers, got {value!r}")
    return tuple(items)


def _str_list(value: object, name: str) -> tuple[str, ...]:
    items = _list(value, name)
    if any(not isinstance(v, str) for v in items):
        raise SidecarError(f"{name} must hold names (strings), got {value!r}")
    return tuple(items)


__all__ = [
    "AXES_FORMAT_VERSION",
    "CHANNELS",
    "DEFAULT_THRESHOLD",
    "FORMAT_VERSION",
    "Color",
    "Encoding",
    "FrameGeometry",
    "InputScale",
    "Layout",
    "ModelSidecar",
    "SidecarError",
]
