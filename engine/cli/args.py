"""Argument parsing shared by the command-line tools: one clear line for every bad flag."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

# A value that starts like a negative number ("-10,0,100,100", "-5x3"): argparse only takes bare numbers
# ("-10", "-1.5") as values, and anything else that starts with "-" as the next flag.
_NEGATIVE_VALUE = re.compile(r"-\d")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line ('prog: error: ...; see --help') and exits 2, and a flag's
    value may start with a minus sign followed by a digit (``--region -10,0,100,100``)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(2)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._attach_negative_values(argv), namespace)

    def _attach_negative_values(self, argv: list[str]) -> list[str]:
        """Rewrite ``--flag -10,0`` as ``--flag=-10,0`` for flags that take exactly one value, so argparse
        hands the value to the flag's type (and its message) instead of saying "expected one argument"."""
        out: list[str] = []
        i = 0
        while i < len(argv):
            tok = argv[i]
            out.append(tok)
            i += 1
            if tok == "--":
                out.extend(argv[i:])
                break
            action = self._option_string_actions.get(tok)
            if (action is not None and action.nargs is None and i < len(argv)
                    and _NEGATIVE_VALUE.match(argv[i]) and argv[i] not in self._option_string_actions):
                out[-1] = f"{tok}={argv[i]}" if tok.startswith("--") else f"{tok}{argv[i]}"
                i += 1
        return out


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def nonnegative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    v = integer(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def nonnegative_int(text: str) -> int:
    v = integer(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def size(text: str) -> tuple[int, int]:
    """'160x120' -> (160, 120)."""
    parts = text.lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 160x120)") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive")
    return w, h


def region(text: str) -> tuple[int, int, int, int]:
    """'X,Y,W,H' -> (x, y, w, h)."""
    try:
        x, y, w, h = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,W,H (e.g. 0,40,800,600)") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: W and H must be positive")
    return x, y, w, h


def window(text: str) -> str | int:
    """A title, or an X window id written as 0x... or a number."""
    try:
        return int(text, 0) if text[:2].lower() == "0x" or text.isdigit() else text
    except ValueError:
        return text


def add_window_options(group: argparse._ArgumentGroup, *, window: int, offset_help: str) -> None:
    """The windowing flags engine-dataset build and engine-train share (same names, same checks)."""
    group.add_argument("--window", type=positive_int, default=window, help=f"frames per window (default {window})")
    group.add_argument("--skip", type=positive_int, default=1, help="take every k-th frame (default 1)")
    group.add_argument("--stride", type=positive_int, default=1, help="frames between window ends (default 1)")
    group.add_argument("--offset", type=integer, default=0, help=offset_help)


def _interventions(text: str) -> str:
    """--interventions checked when parsed (only, or weight=W with W >= 1), so a typo fails before any work."""
    from engine.dataset.interventions import Interventions
    from engine.errors import EngineError

    try:
        Interventions.parse(text)
    except EngineError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--interventions ")) from None
    return text


def _axes(text: str) -> list[str]:
    """--axes: [] for "none", else the names (the flag not given stays None: every recorded axis)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    return [] if names == ["none"] else names


def add_axis_options(group: argparse._ArgumentGroup) -> None:
    """The axis-target flags engine-dataset build and engine-train share (issue 14)."""
    group.add_argument("--axes", type=_axes, metavar="NAME,...|none",
                       help="axis targets (mouse_dx, pad_lx, ...) beside the actions, comma-separated, or none "
                            "(default: every axis the first session records)")
    group.add_argument("--axis", action="append", default=[], metavar="NAME=ENCODING[:N][:KEY=VALUE]",
                       help="how an axis is encoded (repeatable): raw[:lo=L:hi=H], scaled[:scale=S:clip=C], "
                            "bins:N:lo=L:hi=H, mulaw:N[:max=M:mu=U], e.g. mouse_dx=mulaw:11:max=40 "
                            "(default per axis: mouse motion mulaw:11:max=40, sticks scaled, triggers raw 0..1)")


def add_intervention_options(group: argparse._ArgumentGroup, *, only_help: str) -> None:
    """The takeover-session flags engine-dataset build and engine-train share."""
    group.add_argument("--interventions", type=_interventions, metavar="only|weight=W", help=only_help)
    group.add_argument("--before", type=nonnegative_int, default=0, metavar="N",
                       help="also the N frames before each takeover, labelled with the person's first action")

