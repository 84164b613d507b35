"""How an axis (mouse motion, a pad stick, a trigger) is encoded as a training target and decoded in play.

At the bottom of the layers beside engine.sidecar: the dataset encodes targets with it, the trainers size
their heads by it, the sidecar records it and play's Decoder decodes with it, so all four read one
definition. Pure NumPy; imports nothing of the engine but errors.

Encodings (``AxisSpec.encoding``) and their parameters:

    raw      float regression of the value itself; optional ``lo``/``hi`` clip it (both or neither)
    scaled   regression of clip(value * scale, -clip, clip); decode divides by ``scale``
    bins     ``n`` equal-width bins over [lo, hi] (values outside go to the end bins), a softmax head;
             decode gives the centre of the argmax bin
    mulaw    VPT's camera bins: value / max clipped to [-1, 1], mu-law companded
             (sign(v) log(1 + mu |v|) / log(1 + mu)), then rounded to ``n`` levels evenly spaced over
             [-1, 1] ends included (odd n has a level at exactly 0); decode expands the argmax level back.
             Fine steps near 0, coarse ones for fast flicks.

A model's output block per axis: 1 value for raw/scaled, ``n`` for bins/mulaw (softmax probabilities).
The training target of a binned axis is its bin index; :meth:`AxisSpec.target_block` gives the one-hot.

Command-line syntax (:func:`parse_axis`): ``NAME=ENCODING[:N][:key=value...]``, e.g.
``mouse_dx=mulaw:11:max=40``, ``wheel=bins:5:lo=-2.5:hi=2.5``, ``pad_lx=scaled:scale=1:clip=1``,
``pad_lt=raw:lo=0:hi=1``. Parameters left out take the axis' default (:func:`default_axis`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.errors import EngineError

AxisEncoding = Literal["raw", "scaled", "bins", "mulaw"]
ENCODINGS: tuple[str, ...] = ("raw", "scaled", "bins", "mulaw")
VPT_MU = 10.0  # VPT's camera mu-law constant
# Parameters each encoding takes (besides n for the binned ones).
_PARAMS: dict[str, tuple[str, ...]] = {
    "raw": ("lo", "hi"), "scaled": ("scale", "clip"), "bins": ("n", "lo", "hi"), "mulaw": ("n", "max", "mu"),
}


class AxisSpecError(EngineError):
    """An axis spec that does not parse or validate (one line: the axis, what is wrong, what to do)."""


@dataclass(frozen=True)
class AxisSpec:
    """One axis' encoding; see the module docs. Construct through :func:`make_axis` / :meth:`from_dict`
    / :func:`parse_axis` (they validate)."""

    name: str
    encoding: AxisEncoding
    n: int = 0  # bins / mulaw: the number of bins (levels)
    lo: float | None = None  # raw: optional clip; bins: range
    hi: float | None = None
    scale: float = 1.0  # scaled
    clip: float = 1.0  # scaled
    max: float = 1.0  # mulaw: the value mapped to the last level
    mu: float = VPT_MU  # mulaw

    # ---- shape -------------------------------------------------------------------------------------------
    @property
    def binned(self) -> bool:
        return self.encoding in ("bins", "mulaw")

    @property
    def size(self) -> int:
        """Width of this axis' block in the model output: n for binned, 1 for regression."""
        return self.n if self.binned else 1

    def centres(self) -> np.ndarray:
        """float32 (n,): the value each bin decodes to (binned axes only)."""
        if self.encoding == "bins":
            assert self.lo is not None and self.hi is not None
            w = (self.hi - self.lo) / self.n
            return (self.lo + (np.arange(self.n) + 0.5) * w).astype(np.float32)
        if self.encoding == "mulaw":
            levels = np.linspace(-1.0, 1.0, self.n)
            v = np.sign(levels) * ((1.0 + self.mu) ** np.abs(levels) - 1.0) / self.mu
            return (v * self.max).astype(np.float32)
        raise ValueError(f"axis {self.name} ({self.encoding}) has no bins")

    # ---- encode ------------------------------------------------------------------------------------------
    def encode(self, values: np.ndarray) -> np.ndarray:
        """Natural values (N,) -> targets (N,) float32: the regression target, or the bin index (as a float,
        exact for any n below 2**24) for binned axes."""
        v = np.asarray(values, np.float64)
        v = np.where(np.isfinite(v), v, 0.0)  # a NaN sample (a lost event) is no motion, not a poisoned loss
        if self.encoding == "raw":
            out = v if self.lo is None else np.clip(v, self.lo, self.hi)
        elif self.encoding == "scaled":
            out = np.clip(v * self.scale, -self.clip, self.clip)
        elif self.encoding == "bins":
            assert self.lo is not None and self.hi is not None
            out = np.clip(np.floor((v - self.lo) / (self.hi - self.lo) * self.n), 0, self.n - 1)
        else:
            u = np.clip(v / self.max, -1.0, 1.0)
            c = np.sign(u) * np.log1p(self.mu * np.abs(u)) / math.log1p(self.mu)
            out = np.round((c + 1.0) / 2.0 * (self.n - 1))
        return out.astype(np.float32)

    def target_block(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded targets (N,) -> the block the model is trained toward (N, size) float32: the value, or the
        one-hot of the bin."""
        e = np.asarray(encoded, np.float32).reshape(-1)
        if not self.binned:
            return e[:, None].copy()
        out = np.zeros((len(e), self.n), np.float32)
        out[np.arange(len(e)), e.astype(np.int64)] = 1.0
        return out

    def decode(self, block: np.ndarray) -> float:
        """One output block (size,) -> the value in natural units (regression scaled back, or the centre of
        the argmax bin). A NaN regression output decodes to 0 (no motion)."""
        b = np.asarray(block, np.float32).reshape(-1)
        if self.binned:
            return float(self.centres()[int(np.argmax(b))])
        x = float(b[0])
        if not math.isfinite(x):
            return 0.0
        if self.encoding == "scaled":
            return float(np.clip(x, -self.clip, self.clip)) / self.scale
        return x if self.lo is None or self.hi is None else min(max(x, self.lo), self.hi)

    def bucket(self, encoded: np.ndarray, by: str = "bin") -> np.ndarray:
        """Encoded targets (N,) -> int64 buckets for balancing and reports: by "bin", the bin index of binned
        axes; by "sign" (and always for regression), 0 negative, 1 zero, 2 positive."""
        e = np.asarray(encoded, np.float32)
        if self.binned:
            if by == "bin":
                return e.astype(np.int64)
            e = self.centres()[e.astype(np.int64)]
        return np.where(e < -1e-6, 0, np.where(e > 1e-6, 2, 1)).astype(np.int64)

    def bucket_names(self, by: str = "bin") -> list[str]:
        if self.binned and by == "bin":
            return [f"{c:g}" for c in self.centres().tolist()]
        return ["-", "0", "+"]

    # ---- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """{"name", "encoding", and the encoding's parameters}: the sidecar's and the dataset's form."""
        out: dict[str, Any] = {"name": self.name, "encoding": self.encoding}
        for key in _PARAMS[self.encoding]:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AxisSpec:
        """Parse and validate; raises AxisSpecError (one line)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise AxisSpecError(f'an axis must be {{"name": ..., "encoding": ...}}, got {data!r}')
        name = data["name"]
        enc = data.get("encoding")
        if enc not in ENCODINGS:
            raise AxisSpecError(f"axis {name}: encoding must be one of {', '.join(ENCODINGS)}, got {enc!r}")
        extra = set(data) - {"name", "encoding", *_PARAMS[enc]}
        if extra:
            raise AxisSpecError(f"axis {name}: {enc} takes {', '.join(_PARAMS[enc])}, not {', '.join(sorted(extra))}")
        return make_axis(name, enc, **{k: v for k, v in data.items() if k not in ("name", "encoding")})


def default_axis(name: str) -> AxisSpec:
    """The encoding an axis gets when none is given: mouse motion mu-law binned (11 bins up to 40 counts per
    frame, VPT's scheme), wheel notches in 5 bins (-2..2), pointer position raw in [0, 1], pad sticks
    scaled (x1, clipped to [-1, 1]), triggers raw clipped to [0, 1]; any other name raw."""
    if name in ("mouse_dx", "mouse_dy"):
        return make_axis(name, "mulaw", n=11, max=40.0, mu=VPT_MU)
    if name == "wheel":
        return make_axis(name, "bins", n=5, lo=-2.5, hi=2.5)
    if name in ("mouse_x", "mouse_y", "pad_lt", "pad_rt"):
        return make_axis(name, "raw", lo=0.0, hi=1.0)
    if name in ("pad_lx", "pad_ly", "pad_rx", "pad_ry"):
        return make_axis(name, "scaled", scale=1.0, clip=1.0)
    return make_axis(name, "raw")


def make_axis(name: str, encoding: str, **params: Any) -> AxisSpec:
    """A validated AxisSpec; parameters not given take :func:`default_axis`'s when it has the same encoding,
    else the encoding's own defaults. Raises AxisSpecError (one line)."""
    if encoding not in ENCODINGS:
        raise AxisSpecError(f"axis {name}: encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    bad = set(params) - set(_PARAMS[encoding])
    if bad:
        raise AxisSpecError(f"axis {name}: {encoding} takes {', '.join(_PARAMS[encoding])}, not "
                            f"{', '.join(sorted(bad))}")
    base: dict[str, Any] = {}
    d = _DEFAULTS.get(name)
    if d is not None and d.encoding == encoding:
        base = {k: getattr(d, k) for k in _PARAMS[encoding] if getattr(d, k) is not None}
    base.update(params)
    for key, value in base.items():
        if key == "n":
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise AxisSpecError(f"axis {name}: n must be an integer >= 2 (bins), got {value!r}")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                    or not math.isfinite(value)):
            raise AxisSpecError(f"axis {name}: {key} must be a finite number, got {value!r}")
    if encoding in ("bins", "mulaw") and "n" not in base:
        raise AxisSpecError(f"axis {name}: {encoding} needs a bin count, e.g. {name}={encoding}:11")
    if encoding == "bins" and ("lo" not in base or "hi" not in base):
        raise AxisSpecError(f"axis {name}: bins needs its range, e.g. {name}=bins:5:lo=-2.5:hi=2.5")
    if encoding == "raw" and (base.get("lo") is None) != (base.get("hi") is None):
        raise AxisSpecError(f"axis {name}: raw takes both lo and hi (a clip range) or neither")
    lo, hi = base.get("lo"), base.get("hi")
    if lo is not None and hi is not None and not lo < hi:
        raise AxisSpecError(f"axis {name}: lo must be below hi, got lo={lo:g} hi={hi:g}")
    for key in ("scale", "clip", "max", "mu"):
        if key in base and not base[key] > 0:
            raise AxisSpecError(f"axis {name}: {key} must be > 0, got {base[key]:g}")
    floats = {k: (float(v) if k != "n" and v is not None else v) for k, v in base.items()}
    return AxisSpec(name=name, encoding=encoding, **floats)  # type: ignore[arg-type]


_DEFAULTS: dict[str, AxisSpec] = {}
_DEFAULTS.update({n: default_axis(n) for n in (
    "mouse_dx", "mouse_dy", "wheel", "mouse_x", "mouse_y", "pad_lx", "pad_ly", "pad_rx", "pad_ry", "pad_lt",
    "pad_rt")})


def parse_axis(text: str) -> AxisSpec:
    """``NAME=ENCODING[:N][:key=value...]`` (module docs) -> AxisSpec. Raises AxisSpecError (one line)."""
    name, sep, rest = text.strip().partition("=")
    name = name.strip().lower()
    usage = "give NAME=ENCODING[:N][:key=value], e.g. mouse_dx=mulaw:11:max=40"
    if not sep or not name or not rest:
        raise AxisSpecError(f"axis spec {text!r} is not NAME=ENCODING; {usage}")
    enc, *items = [p.strip() for p in rest.split(":")]
    params: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        try:
            if not eq:
                if "n" in params:
                    raise ValueError
                params["n"] = int(key)
            elif key == "n":
                params["n"] = int(value)
            else:
                params[key.strip()] = float(value)
        except ValueError:
            raise AxisSpecError(f"axis spec {text!r}: {item!r} is not a number or key=number; {usage}") from None
    return make_axis(name, enc, **params)


def resolve_axes(names: Sequence[str], given: Sequence[AxisSpec | str] | None = None) -> tuple[AxisSpec, ...]:
    """The specs of ``names`` in that order: the one given for an axis (an AxisSpec or parse_axis text),
    else its default. Raises AxisSpecError for a spec naming an axis not in ``names`` or one named twice."""
    specs = [parse_axis(g) if isinstance(g, str) else g for g in (given or ())]
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise AxisSpecError(f"axis {twice[0]} is named twice; name each axis once")
    by_name: dict[str, AxisSpec] = {}
    for s in specs:
        if s.name in by_name:
            raise AxisSpecError(f"axis {s.name} is given two encodings; give one --axis per axis")
        if s.name not in names:
            raise AxisSpecError(f"--axis {s.name}: the data has no axis {s.name} (it has "
                                f"{', '.join(names) or 'none'}); record it or drop the flag")
        by_name[s.name] = s
    return tuple(by_name.get(n) or default_axis(n) for n in names)


def blocks(axes: Sequence[AxisSpec], start: int) -> list[slice]:
    """Each axis' slice of the model output, the axis blocks following ``start`` key outputs in order."""
    out, at = [], start
    for a in axes:
        out.append(slice(at, at + a.size))
        at += a.size
    return out


__all__ = [
    "ENCODINGS", "VPT_MU", "AxisEncoding", "AxisSpec", "AxisSpecError", "blocks", "default_axis", "make_axis",
    "parse_axis", "resolve_axes",
]
