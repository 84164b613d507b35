"""The spec a model is played with, and whether the model fits it.

:func:`resolve_spec` decides the spec: ``sidecar`` if given, else ``<stem>.json`` beside the model if it
exists, else what the input shape allows (then the action names are required); the CLI flags
(``overrides``, ``actions``) win over all of those. Without a sidecar a channels-layout input's last
dimension may hold several frames: when exactly one (window, colour) reading fits the shape and the flags,
it is taken and said in one line (``Fit.notes``); only what is truly ambiguous is refused, listing the
flags that would settle it. :func:`check_fit` then refuses a model whose tensors differ from the spec,
naming the first dimension that differs, where the value came from ("m.json says", "--frames is") and the
flag to pass. Every refusal is a one-line ``ModelError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.runtime import ModelError, TensorInfo
from engine.sidecar import CHANNELS, DEFAULT_THRESHOLD, InputScale, ModelSidecar, SidecarError

# What the spec assumes when there is no sidecar and no flag: recorded in Fit.assumed so the CLI can say.
DEFAULT_FPS = 30.0

# The engine-play flag that sets each sidecar field; error messages name these.
FLAGS: dict[str, str] = {
    "fps": "--fps",
    "window": "--frames",  # --window names the captured window, as in engine-record
    "skip": "--skip",
    "frame_size": "--frame-size",
    "color": "--color",
    "layout": "--layout",
    "scale": "--scale",
    "actions": "--actions",
    "encoding": "--encoding",
    "thresholds": "--thresholds",
    "hysteresis": "--hysteresis",
    "classes": "--classes",
    "history": "--history",
}


@dataclass(frozen=True)
class Tensors:
    """The model's frames input (4-D or 5-D), its optional history input (3-D) and its single output."""

    frames: TensorInfo
    history: TensorInfo | None
    output: TensorInfo


@dataclass(frozen=True)
class Fit:
    """The spec a model is played with and where it came from.

    sidecar_path: the m.json read (None when none was, or one was passed in). assumed: spec fields that came
    from neither a sidecar, a flag nor the model (defaults). notes: one line each for what was read from the
    model's shape that no flag said (e.g. how stacked channels split into frames)."""

    spec: ModelSidecar
    sidecar_path: Path | None
    assumed: tuple[str, ...]
    notes: tuple[str, ...]


def find_tensors(interpreter: Any) -> Tensors:
    """Find the frames input, the optional history input and the single output; refuse anything else."""
    inputs = [TensorInfo.of(d) for d in interpreter.get_input_details()]
    outputs = [TensorInfo.of(d) for d in interpreter.get_output_details()]
    frames = [t for t in inputs if len(t.shape) in (4, 5)]
    history = [t for t in inputs if len(t.shape) == 3]
    if len(frames) != 1 or len(history) > 1 or len(frames) + len(history) != len(inputs):
        raise ModelError(
            f"model inputs {[t.shape for t in inputs]} are not what engine-play feeds: one frames input "
            "(1, W, H, W', C) or (1, H, W', W*C), and optionally a history input (1, history, actions)"
        )
    if len(outputs) != 1 or (len(outputs[0].shape) == 2 and outputs[0].shape[0] != 1) or len(
        outputs[0].shape
    ) not in (1, 2):
        raise ModelError(
            f"model outputs {[t.shape for t in outputs]} are not what engine-play reads: one (1, N) output"
        )
    for t, what in ((frames[0], "input"), (outputs[0], "output")):
        t.check_dtype(what)
    if history:
        history[0].check_dtype("history input")
    return Tensors(frames[0], history[0] if history else None, outputs[0])


def resolve_spec(
    path: Path,
    tensors: Tensors,
    *,
    sidecar: ModelSidecar | None = None,
    overrides: Mapping[str, Any] | None = None,
    actions: Sequence[str] | None = None,
) -> Fit:
    """The spec for the model at ``path`` (see the module docs), checked to fit ``tensors``.

    ``overrides``: sidecar field -> value, as in the JSON (the CLI flags). Raises ModelError (one line)."""
    changes = dict(overrides or {})
    unknown = sorted(set(changes) - set(FLAGS))
    if unknown:
        raise ModelError(f"unknown model setting {unknown[0]!r}; known settings: {', '.join(FLAGS)}")
    if actions is not None:
        changes["actions"] = list(actions)

    sidecar_path: Path | None = None
    notes: tuple[str, ...] = ()
    if sidecar is None and path.with_suffix(".json").is_file():
        sidecar_path = path.with_suffix(".json")
        try:
            sidecar = ModelSidecar.load(sidecar_path)
        except SidecarError as e:
            raise ModelError(str(e)) from None
    if sidecar is not None:
        base = sidecar.to_dict()
        origin = {k: "sidecar" for k in base}
    else:
        base, origin, notes = _infer(tensors, changes)
        if "actions" not in changes:
            raise ModelError(
                f"{path} has no sidecar ({path.with_suffix('.json').name} is missing), so its action names "
                f"are unknown: pass --actions with {tensors.output.shape[-1]} names in output column order"
            )
    base.update(changes)
    origin.update({k: "flag" for k in changes})
    assumed = tuple(k for k, v in origin.items() if v == "default") if sidecar is None else ()
    try:
        spec = ModelSidecar.from_dict(base)
    except SidecarError as e:
        # The sidecar itself validated on its own, so the flags made it invalid (or are invalid).
        where = sidecar_path.name if sidecar_path else ("the sidecar" if sidecar is not None else "")
        raise ModelError(f"{where} with the flags applied: {e}" if where else str(e)) from None
    check_fit(spec, tensors, _Blame(origin, sidecar_path))
    return Fit(spec, sidecar_path, assumed, notes)


# ---- inference without a sidecar -------------------------------------------------------------------------
def _infer(tensors: Tensors, changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], tuple[str, ...]]:
    """A sidecar dict from the tensor shapes (fields in ``changes`` are left to the caller), the origin of
    each field, and the notes to show."""
    shape = tensors.frames.shape
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    notes: tuple[str, ...] = ()

    def put(key: str, value: Any, how: str = "model") -> None:
        if key not in changes:
            data[key], origin[key] = value, how

    if len(shape) == 5:
        _, window, h, width, c = shape
        put("layout", "frames")
        put("window", window)
        colors = {n: k for k, n in CHANNELS.items()}
        if c not in colors and "color" not in changes:
            raise ModelError(
                f"model input {shape} has {c} channels per frame; engine frames are gray (1) or rgb (3)"
            )
        put("color", colors.get(c, "gray"))
    else:
        _, h, width, stacked = shape
        put("layout", "channels")
        window, color, note = _split_channels(stacked, changes.get("window"), changes.get("color"), shape)
        put("window", window)
        put("color", color)
        notes = (note,) if note else ()
    put("frame_size", [width, h])
    put("encoding", "multihot")
    put("history", tensors.history.shape[1] if tensors.history is not None else 0)
    put("fps", DEFAULT_FPS, "default")
    put("scale", {"multiply": InputScale().multiply, "add": InputScale().add}, "default")
    if changes.get("encoding", "multihot") == "multihot" and "actions" in changes:
        put("thresholds", [DEFAULT_THRESHOLD] * len(changes["actions"]), "default")
    return data, origin, notes


def _frames_of(n: int, color: str) -> str:
    return f"{n} {color} frame{'s' if n != 1 else ''}"


def _split_channels(stacked: int, window: Any, color: Any, shape: tuple[int, ...]) -> tuple[int, str, str]:
    """Split a channels-layout input's last dimension into (window, color), plus a note saying what was read
    ("" when the flags said it all or there is nothing to say).

    The readings are ``stacked`` gray frames, and ``stacked / 3`` rgb frames when 3 divides it; the flags
    keep those that agree with them. One left: taken. A colour flag that does not divide the channels is
    left to the fit check, which names it. Several left and no flag: 3 channels are one rgb frame (a single
    image, the common case, noted with the other reading); more are refused listing the flags that fit.
    """
    readings = [(stacked, "gray")] + ([(stacked // 3, "rgb")] if stacked % 3 == 0 else [])
    fits = [(w, c) for w, c in readings if (window is None or w == window) and (color is None or c == color)]
    if len(fits) == 1:
        w, c = fits[0]
        said = window is not None and color is not None
        if said or stacked == 1:
            return w, c, ""
        why = "the only reading that fits" + (f" {FLAGS['color']} {color}" if color is not None else
                                              f" {FLAGS['window']} {window}" if window is not None else "")
        return w, c, f"model input {shape} stacks {stacked} channels: read as {_frames_of(w, c)} ({why})"
    if isinstance(color, str) and color in CHANNELS:
        return 1, color, ""  # no reading has this colour: the fit check names the misfit and the flag
    if window is None and stacked == 3:
        return 1, "rgb", (f"model input {shape} stacks 3 channels: read as 1 rgb frame; pass "
                          f"{FLAGS['window']} 3 if they are 3 gray frames")
    options = " or ".join(f"{FLAGS['window']} {w} ({c})" for w, c in readings)
    why = (f"which {FLAGS['window']} {window} does not split into gray or rgb frames" if window is not None
           else "so it holds several frames")
    raise ModelError(f"model input {shape} stacks {stacked} channels, {why}: pass {options}")


# ---- fit checks ------------------------------------------------------------------------------------------
def _frame_words(shape: tuple[int, ...]) -> str:
    """Human description of a frames input shape, e.g. '4 frames of 84x84 gray'."""
    if len(shape) == 5:
        _, w, h, width, c = shape
        kind = {1: "gray", 3: "rgb"}.get(c, f"{c}-channel")
        return f"{w} frame{'s' if w != 1 else ''} of {width}x{h} {kind}"
    _, h, width, c = shape
    return f"{c} stacked channels of {width}x{h}"


@dataclass(frozen=True)
class _Blame:
    """Where each spec field came from, to word mismatch messages ("the sidecar says" / "--frames is")."""

    origin: Mapping[str, str]
    sidecar_path: Path | None

    def says(self, key: str, value: str) -> str:
        how = self.origin.get(key, "sidecar")
        if how == "flag":
            return f"{FLAGS[key]} is {value}"
        if how == "sidecar":
            name = self.sidecar_path.name if self.sidecar_path else "the sidecar"
            return f"{name} says {key} {value}"
        return f"the engine assumed {key} {value}"

    def fix(self, key: str) -> str:
        if self.origin.get(key, "sidecar") == "sidecar":
            return f" or fix {self.sidecar_path.name if self.sidecar_path else 'the sidecar'}"
        return ""


def check_fit(spec: ModelSidecar, tensors: Tensors, blame: _Blame | None = None) -> None:
    """Raise ModelError naming the first dimension where the model's tensors differ from ``spec``.

    ``blame`` words where each value came from (default: all from the sidecar)."""
    blame = blame or _Blame({}, None)
    frames, history, output = tensors.frames, tensors.history, tensors.output
    shape = frames.shape
    expects = f"model input expects {_frame_words(shape)} {shape}"

    def refuse(key: str, value: str, right: str) -> ModelError:
        fix = f"pass {FLAGS[key]} {right}{blame.fix(key)}"
        return ModelError(f"{expects} but {blame.says(key, value)}: {fix}")

    if shape[0] != 1:
        raise ModelError(f"{expects} with batch {shape[0]}; engine-play runs batch 1: re-export with batch 1")
    model_layout = "frames" if len(shape) == 5 else "channels"
    if spec.layout != model_layout:
        raise refuse("layout", spec.layout, model_layout)
    if model_layout == "frames":
        _, window, h, width, c = shape
        if window != spec.window:
            raise refuse("window", str(spec.window), str(window))
        if c != spec.channels:
            if c not in (1, 3):
                raise ModelError(f"{expects}; engine frames are gray (1 channel) or rgb (3): not playable")
            raise refuse("color", spec.color, "gray" if c == 1 else "rgb")
    else:
        _, h, width, stacked = shape
        if stacked != spec.window * spec.channels:
            if stacked % spec.channels == 0:
                raise refuse("window", f"{spec.window} of {spec.color}", str(stacked // spec.channels))
            other = "gray" if spec.color == "rgb" else "rgb"
            raise refuse("color", spec.color, other)
    if (width, h) != spec.frame_size:
        raise refuse("frame_size", f"{spec.width}x{spec.height}", f"{width}x{h}")

    a = len(spec.actions)
    if history is None and spec.history:
        raise ModelError(
            f"model has no history input but {blame.says('history', str(spec.history))}: pass --history 0"
            f"{blame.fix('history')}"
        )
    if history is not None:
        _, rows, cols = history.shape
        hist = f"model history input expects the last {rows} action vectors {history.shape}"
        if history.shape[0] != 1 or rows != spec.history:
            raise ModelError(
                f"{hist} but {blame.says('history', str(spec.history))}: pass --history {rows}"
                f"{blame.fix('history')}"
            )
        if cols != a:
            raise ModelError(
                f"{hist} of {cols} actions but {blame.says('actions', str(list(spec.actions)))}: pass "
                f"--actions with {cols} names{blame.fix('actions')}"
            )

    n = int(np.prod(output.shape))
    if n != spec.outputs and spec.axes:
        blocks = " + ".join(f"{x.name} {x.size}" for x in spec.axes)
        raise ModelError(
            f"model outputs {n} values {output.shape} but the sidecar's {spec.key_outputs} key outputs + axis "
            f"blocks ({blocks}) make {spec.outputs}: use the sidecar written with this model"
        )
    if n != spec.outputs:
        if spec.encoding == "multihot":
            raise ModelError(
                f"model outputs {n} values {output.shape} but "
                f"{blame.says('actions', str(list(spec.actions)))} (multihot: one output per action): "
                f"pass --actions with {n} names{blame.fix('actions')}"
            )
        raise ModelError(
            f"model outputs {n} values {output.shape} but {blame.says('classes', str(len(spec.classes)))} "
            f"(combo: one output per class): pass --classes with {n} classes{blame.fix('classes')}"
        )


__all__ = ["DEFAULT_FPS", "FLAGS", "Fit", "Tensors", "check_fit", "find_tensors", "resolve_spec"]
