"""engine-record: record a person playing, at an exact frame rate, into a memory-mapped session."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import tomllib

from engine.capture import BACKENDS, CaptureError
from engine.cli import args as a
from engine.errors import EngineError
from engine.inputs import INPUTS, default_input
from engine.record import DEFAULT_ACTIONS, DEFAULT_HOTKEYS, RecordConfig, Recorder, RecordingStopped

EPILOG = """\
Hotkeys (not recorded): F9 starts when --wait is given, F10 pauses/resumes, F12 stops; change them with
--hotkeys start=f9,pause=f10,stop=f12. Ctrl-C and SIGTERM also stop cleanly; the session is kept.

Config file (TOML): top-level keys and/or one table per game, selected by --game, with the long flag
names as keys (fps, window, region, monitor, size, color, actions, name, data-dir, duration, countdown,
input, hotkeys, backend, display). Flags given on the command line win. Example:

  [racer]
  fps = 30
  window = "Rally Racer"
  size = "160x120"
  actions = "left,right,up,down"

The session goes to DATA_DIR/sessions/NAME (DATA_DIR: --data-dir, else $ENGINE_DATA_DIR, else ./data).
List sessions with engine-sessions.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-record", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fps", type=a.positive_float, help="capture rate, frames per second (default 30)")
    src = p.add_argument_group("what to capture (default: the first monitor)")
    src.add_argument("--window", type=a.window, help="window title (exact, or a unique substring) or X window id")
    src.add_argument("--region", type=a.region, metavar="X,Y,W,H",
                     help="rectangle on the screen, or inside --window")
    src.add_argument("--monitor", type=int, metavar="N", help="monitor N (mss numbering: 1 = first, 0 = all)")
    src.add_argument("--backend", help=f"capture backend: {', '.join(('default', *BACKENDS))}")
    src.add_argument("--display", help="X display (default $DISPLAY)")
    fmt = p.add_argument_group("frames")
    fmt.add_argument("--size", type=a.size, metavar="WxH",
                     help="stored frame size (default: the area divided by the smallest integer factor that "
                          "makes it at most 320 wide)")
    fmt.add_argument("--color", choices=("gray", "rgb"), help="stored colour (default gray)")
    lab = p.add_argument_group("actions")
    lab.add_argument("--actions", help=f"actions to record, in column order (default {','.join(DEFAULT_ACTIONS)})")
    lab.add_argument("--input", choices=INPUTS, help=f"where key events come from (default {default_input()})")
    lab.add_argument("--hotkeys", help="start=KEY,pause=KEY,stop=KEY (default f9, f10, f12)")
    ses = p.add_argument_group("session")
    ses.add_argument("--game", help="game name stored in the session (and the config table to use)")
    ses.add_argument("--name", help="session name (default GAME_YYYYmmdd-HHMMSS)")
    ses.add_argument("--data-dir", type=Path, help="where sessions go (default $ENGINE_DATA_DIR or ./data)")
    ses.add_argument("--config", type=Path, help="TOML file with these options (per game)")
    run = p.add_argument_group("run")
    run.add_argument("--duration", type=a.positive_float, metavar="SECONDS", help="stop after this much recording")
    run.add_argument("--countdown", type=a.nonnegative_float, metavar="SECONDS",
                     help="seconds to count down before recording starts (default 3)")
    run.add_argument("--wait", action="store_true", help="wait for the start hotkey instead of counting down")
    return p


def _hotkeys(text: str) -> dict[str, str]:
    out = dict(DEFAULT_HOTKEYS)
    for part in filter(None, (s.strip() for s in text.split(","))):
        role, sep, key = part.partition("=")
        if not sep:
            raise EngineError(f"--hotkeys wants ROLE=KEY pairs like stop=f12, got {part!r}")
        out[role.strip().lower()] = key.strip().lower()
    return out


def _load_config(path: Path, game: str | None) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise EngineError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise EngineError(f"config {path} is not valid TOML: {e}") from None
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if game is not None:
        if game not in data or not isinstance(data[game], dict):
            games = [k for k, v in data.items() if isinstance(v, dict)]
            raise EngineError(f"config {path} has no [{game}] table; it has: {', '.join(games) or 'none'}")
        top.update(data[game])
    return {k.replace("-", "_"): v for k, v in top.items()}


def make_config(ns: argparse.Namespace) -> RecordConfig:
    values: dict[str, Any] = {}
    if ns.config is not None:
        values.update(_load_config(ns.config, ns.game))
    for key, val in vars(ns).items():
        if val is not None and key not in ("config", "wait"):
            values[key] = val
    conv: dict[str, Any] = {"size": a.size, "region": a.region, "hotkeys": _hotkeys}
    for key, fn in conv.items():
        if isinstance(values.get(key), str):
            try:
                values[key] = fn(values[key])
            except argparse.ArgumentTypeError as e:
                raise EngineError(f"{key}: {e}") from None
    if isinstance(values.get("window"), str):
        values["window"] = a.window(values["window"])
    known = set(RecordConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise EngineError(f"unknown option(s) in config: {', '.join(unknown)}")
    cfg = RecordConfig(**values)
    cfg.wait_for_start = bool(ns.wait)
    if isinstance(cfg.actions, str):
        cfg.actions = cfg.actions.split(",")
    if ns.game is None and cfg.window is not None and "game" not in values:
        cfg.game = str(cfg.window) if isinstance(cfg.window, str) else "game"
    return cfg


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        cfg = make_config(ns)
        summary = Recorder(cfg).run()
    except RecordingStopped as e:
        for line in e.summary.lines():
            print(line, file=sys.stderr)
        return 1
    except (EngineError, ValueError, CaptureError) as e:
        print(f"engine-record: {e}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith("warning") else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
