"""engine-record: record a person playing, at an exact frame rate, into a memory-mapped session."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from engine.actions.inputs import INPUTS, default_input
from engine.capture import BACKENDS
from engine.cli import args as a
from engine.errors import CaptureError, EngineError
from engine.record import DEFAULT_ACTIONS, DEFAULT_HOTKEYS, RecordConfig, Recorder, RecordingStopped

EPILOG = """\
Hotkeys (not recorded): F9 starts when --wait is given, F10 pauses/resumes, F12 stops; change them with
--hotkeys start=f9,pause=f10,stop=f12. Ctrl-C and SIGTERM also stop cleanly; the session is kept.

Mouse and gamepad axes go in --actions beside the keys, e.g. --actions w,a,s,d,mouse_dx,mouse_dy,mouse_left:
mouse_dx, mouse_dy (raw counts, unaccelerated) and wheel (notches) hold the motion since the previous
frame; mouse_x, mouse_y (pointer position in [0, 1] across the captured area), pad_lx, pad_ly, pad_rx,
pad_ry ([-1, 1]) and pad_lt, pad_rt ([0, 1]) the value at the frame. Pads and pad buttons (pad_a ...
pad_right) need --input evdev (choose the pad with --pad NAME|PATH); X11 reads mouse axes only.

Config file (TOML): top-level keys and/or one table per game, selected by --game, with the long flag
names as keys (fps, window, region, monitor, size, color, actions, game, name, data-dir, duration,
countdown, input, pad, hotkeys, backend, display, wait = true/false). Values are checked like the flags
(numbers as numbers or strings; region, size and actions also as arrays). Flags given on the command
line win. Example:

  [racer]
  fps = 30
  window = "Rally Racer"
  size = "160x120"
  actions = "left,right,up,down"

The session goes to DATA_DIR/sessions/NAME (DATA_DIR: --data-dir, else $ENGINE_DATA_DIR, else ./data).
List sessions with engine-sessions.
"""


def _hotkeys(text: str) -> dict[str, str]:
    out = dict(DEFAULT_HOTKEYS)
    for part in filter(None, (s.strip() for s in text.split(","))):
        role, sep, key = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"wants ROLE=KEY pairs like stop=f12, got {part!r}")
        out[role.strip().lower()] = key.strip().lower()
    return out


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-record", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fps", type=a.positive_float, help="capture rate, frames per second (default 30)")
    src = p.add_argument_group("what to capture (default: the first monitor)")
    src.add_argument("--window", type=a.window, help="window title (exact, or a unique substring) or X window id")
    src.add_argument("--region", type=a.region, metavar="X,Y,W,H",
                     help="rectangle on the screen, or inside --window")
    src.add_argument("--monitor", type=a.integer, metavar="N", help="monitor N (mss numbering: 1 = first, 0 = all)")
    src.add_argument("--backend", help=f"capture backend: {', '.join(('default', *BACKENDS))}")
    src.add_argument("--display", help="X display (default $DISPLAY)")
    fmt = p.add_argument_group("frames")
    fmt.add_argument("--size", type=a.size, metavar="WxH",
                     help="stored frame size, at most the captured area and 8192 a side (default: the area "
                          "divided by the smallest integer factor that makes it at most 320 wide)")
    fmt.add_argument("--color", choices=("gray", "rgb"), help="stored colour (default gray)")
    fmt.add_argument("--compress", action="store_true", default=None,
                     help="store frames losslessly compressed (blosc2/zstd, chunk by chunk on the writer thread); "
                          "default raw, or compact later with engine-sessions compact")
    lab = p.add_argument_group("actions")
    lab.add_argument("--actions", help=f"keys, buttons and axes to record, in column order (default "
                                       f"{','.join(DEFAULT_ACTIONS)}); axes: mouse_dx, mouse_dy, wheel, mouse_x, "
                                       "mouse_y, pad_lx, pad_ly, pad_rx, pad_ry, pad_lt, pad_rt")
    lab.add_argument("--input", choices=INPUTS, help=f"where key events come from (default {default_input()})")
    lab.add_argument("--pad", metavar="NAME|PATH",
                     help="with --input evdev: the gamepad to read, by name (or a unique part of it) or event "
                          "device path (default: every pad found)")
    lab.add_argument("--hotkeys", type=_hotkeys, metavar="start=KEY,pause=KEY,stop=KEY",
                     help="keys that start, pause and stop, never recorded (default f9, f10, f12)")
    ses = p.add_argument_group("session")
    ses.add_argument("--game", help="game name stored in the session (and the config table to use); default: "
                                    "the --window title, else 'game'")
    ses.add_argument("--name", help="session name (default GAME_YYYYmmddTHHMMSSZ, the UTC start time, with _2, "
                                    "_3, ... added if taken)")
    ses.add_argument("--data-dir", type=Path, help="where sessions go (default $ENGINE_DATA_DIR or ./data)")
    ses.add_argument("--config", type=Path, help="TOML file with these options (per game)")
    run = p.add_argument_group("run")
    run.add_argument("--duration", type=a.positive_float, metavar="SECONDS", help="stop after this much recording")
    run.add_argument("--countdown", type=a.nonnegative_float, metavar="SECONDS",
                     help="seconds to count down before recording starts (default 3)")
    run.add_argument("--wait", action="store_true", help="wait for the start hotkey instead of counting down")
    return p


# What a config value must be, by the flag's type: the config goes through the flags' own parsers.
_EXPECTED: dict[Any, str] = {
    a.positive_float: "a positive number",
    a.nonnegative_float: "a number >= 0",
    a.integer: "an integer",
    a.size: 'a size "WxH" like "160x120"',
    a.region: 'a rectangle "X,Y,W,H" like "0,40,800,600"',
    a.window: "a window title or id",
    _hotkeys: 'hotkeys like "start=f9,pause=f10,stop=f12"',
    Path: "a path",
}
_NOT_IN_CONFIG = ("help", "config")


def _config_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The flags a config file may set, by dest (data_dir), from the parser itself."""
    return {act.dest: act for act in parser._actions if act.option_strings and act.dest not in _NOT_IN_CONFIG}


def _config_value(act: argparse.Action, value: Any) -> Any:
    """A TOML value as the flag would take it; ValueError(what is expected) when it is not one."""
    if act.nargs == 0:  # a switch (--wait)
        if isinstance(value, bool):
            return value
        raise ValueError("true or false")
    expected = (f"one of {', '.join(map(str, act.choices))}" if act.choices is not None
                else _EXPECTED.get(act.type, "a string"))
    # TOML gives numbers and arrays their own types; the flag parsers take text.
    if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        text = ("x" if act.dest == "size" else ",").join(str(v) for v in value)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        raise ValueError(expected)
    try:
        out = act.type(text) if callable(act.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        raise ValueError(expected) from None
    if act.choices is not None and out not in act.choices:
        raise ValueError(expected)
    return out


def _load_config(path: Path, game: str | None, parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """The options of ``path`` for ``game`` (top-level keys, then its table), checked and converted by the
    flags' own parsers, keyed by dest. Every bad key or value is an EngineError naming the file and key."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise EngineError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise EngineError(f"config {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise EngineError(f"config {path} is not valid TOML: {e}") from None
    items = [(k, v, "") for k, v in data.items() if not isinstance(v, dict)]
    if game is not None:
        if game not in data or not isinstance(data[game], dict):
            games = [k for k, v in data.items() if isinstance(v, dict)]
            raise EngineError(f"config {path} has no [{game}] table; it has: {', '.join(games) or 'none'}")
        items += [(k, v, f" in [{game}]") for k, v in data[game].items()]
    options = _config_options(parser or build_parser())
    out: dict[str, Any] = {}
    for key, value, where in items:
        act = options.get(key.replace("-", "_"))
        if act is None:
            valid = ", ".join(o.option_strings[-1].removeprefix("--") for o in options.values())
            raise EngineError(f"config {path}: unknown key {key!r}{where}; valid keys: {valid}")
        try:
            out[act.dest] = _config_value(act, value)
        except ValueError as e:
            raise EngineError(f"config {path}: {key}{where} must be {e}, got {value!r}") from None
    return out


def make_config(ns: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> RecordConfig:
    values: dict[str, Any] = {}
    if ns.config is not None:
        values.update(_load_config(ns.config, ns.game, parser))
    wait = bool(ns.wait or values.pop("wait", False))
    for key, val in vars(ns).items():
        if val is not None and key not in ("config", "wait"):
            values[key] = val  # flags given on the command line win
    cfg = RecordConfig(**values)
    cfg.wait_for_start = wait
    if isinstance(cfg.actions, str):
        cfg.actions = cfg.actions.split(",")
    if ns.game is None and cfg.window is not None and "game" not in values:
        cfg.game = str(cfg.window) if isinstance(cfg.window, str) else "game"
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        cfg = make_config(ns, parser)
        summary = Recorder(cfg).run()
    except RecordingStopped as e:
        for line in e.summary.lines():
            print(line, file=sys.stderr)
        return 1
    except (EngineError, ValueError, CaptureError) as e:
        print(f"engine-record: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        # The frame queue and the session's mapped chunk are sized from --size, --color and --fps.
        print("engine-record: out of memory for the frame buffers; lower --size, use --color gray or lower --fps",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before recording began (once it has, Ctrl-C stops cleanly)
        print("engine-record: interrupted before recording started; nothing was recorded", file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith("warning") else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
