"""engine-play: a .tflite model plays at the rate it was trained at, watching the screen and pressing keys."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.capture import BACKENDS, CaptureError, open_source
from engine.cli import args as a
from engine.errors import EngineError
from engine.inputs import hotkeys_available
from engine.keys import parse_actions
from engine.play.loop import Player, PlayStopped, agreement
from engine.play.model import Model
from engine.play.outputs import OUTPUTS, NullOutput, default_output, open_output
from engine.session import Session, data_dir

EPILOG = """\
The model's spec comes from m.json beside m.tflite (written by engine-dataset / engine-train); the
model flags below override it. Without m.json the engine infers what it can from the input shape and
needs --actions. A model that does not fit is refused with the dimension that differs.

Safety: every exit path releases every key (Ctrl-C, SIGTERM, errors, the window closing, the kill
switch F12, --duration). --dry-run prints decisions and sends nothing.

--replay SESSION runs the model over a recorded session (a path, or a name under the data dir) at the
recorded timing, with no screen and no keys, and reports agreement with the recorded actions.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-play", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="the .tflite model")
    src = p.add_argument_group("what to watch (default: the first monitor)")
    src.add_argument("--window", type=a.window, help="window title (exact, or a unique substring) or X window id")
    src.add_argument("--region", type=a.region, metavar="X,Y,W,H", help="rectangle on the screen, or in --window")
    src.add_argument("--monitor", type=int, metavar="N", help="monitor N (1 = first, 0 = all)")
    src.add_argument("--backend", default="default", help=f"capture backend: {', '.join(('default', *BACKENDS))}")
    src.add_argument("--display", help="X display (default $DISPLAY)")
    out = p.add_argument_group("keys")
    out.add_argument("--output", choices=OUTPUTS, default=default_output(),
                     help=f"how keys are sent (default {default_output()})")
    out.add_argument("--dry-run", action="store_true", help="print decisions, send no keys")
    out.add_argument("--kill-key", default="f12", help="hotkey that stops play and releases all keys (none: off)")
    run = p.add_argument_group("run")
    run.add_argument("--threads", type=a.positive_int, help="interpreter threads")
    run.add_argument("--duration", type=a.positive_float, metavar="SECONDS", help="stop after this long")
    run.add_argument("--countdown", type=a.nonnegative_float, default=3.0, metavar="SECONDS",
                     help="seconds before play starts, to focus the game (default 3)")
    run.add_argument("--log", type=Path, help="per-decision telemetry to PATH (.npz or .csv)")
    run.add_argument("--replay", help="run over a recorded session instead of the screen")
    run.add_argument("--data-dir", type=Path, help="where --replay names are looked up")
    m = p.add_argument_group("model spec overrides (default: m.json)")
    m.add_argument("--fps", type=a.positive_float, help="decision rate the model was trained at")
    m.add_argument("--frames", type=a.positive_int, help="frames per model input (window length)")
    m.add_argument("--skip", type=a.positive_int, help="frame skip between window frames")
    m.add_argument("--frame-size", type=a.size, metavar="WxH", help="frame size the model sees")
    m.add_argument("--color", choices=("gray", "rgb"))
    m.add_argument("--layout", choices=("frames", "channels"))
    m.add_argument("--scale", help="input scaling MULTIPLY[,ADD] (default 1/255,0)")
    m.add_argument("--actions", help="output columns, e.g. left,right,up")
    m.add_argument("--encoding", choices=("multihot", "combo"))
    m.add_argument("--thresholds", help="multihot thresholds, one per action, comma-separated")
    m.add_argument("--hysteresis", type=a.nonnegative_float)
    m.add_argument("--classes", help="combo classes, e.g. '[[], [\"left\"], [\"left\", \"up\"]]' (JSON)")
    m.add_argument("--history", type=a.positive_int, help="length of the model's action-history input")
    return p


def _overrides(ns: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    for key, field in (("fps", "fps"), ("frames", "window"), ("skip", "skip"), ("color", "color"),
                       ("layout", "layout"), ("encoding", "encoding"), ("hysteresis", "hysteresis"),
                       ("history", "history")):
        if getattr(ns, key) is not None:
            o[field] = getattr(ns, key)
    if ns.frame_size is not None:
        o["frame_size"] = list(ns.frame_size)
    if ns.scale is not None:
        try:
            parts = [float(x) for x in ns.scale.split(",")]
        except ValueError:
            raise EngineError(f"--scale wants MULTIPLY[,ADD], got {ns.scale!r}") from None
        o["scale"] = {"multiply": parts[0], "add": parts[1] if len(parts) > 1 else 0.0}
    if ns.thresholds is not None:
        try:
            o["thresholds"] = [float(x) for x in ns.thresholds.split(",")]
        except ValueError:
            raise EngineError(f"--thresholds wants numbers, got {ns.thresholds!r}") from None
    if ns.classes is not None:
        try:
            o["classes"] = json.loads(ns.classes)
        except json.JSONDecodeError:
            raise EngineError("--classes wants JSON like '[[], [\"left\"]]'") from None
    return o


def _session_path(name: str, data: Path | None) -> Path:
    p = Path(name)
    if p.is_dir():
        return p
    candidate = data_dir(data) / "sessions" / name
    if candidate.is_dir():
        return candidate
    raise EngineError(f"no session {name!r} (looked for the directory and under {data_dir(data) / 'sessions'})")


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    player: Player | None = None
    try:
        actions = parse_actions(ns.actions) if ns.actions else None
        model = Model.load(ns.model, overrides=_overrides(ns), actions=actions, threads=ns.threads)
        spec = model.spec
        print(f"model {ns.model} on {model.runtime}: {spec.window} x {spec.width}x{spec.height} {spec.color} at "
              f"{spec.fps:g} fps -> {', '.join(spec.actions)} ({spec.encoding})", file=sys.stderr)
        display = ns.display or os.environ.get("DISPLAY", "")
        if ns.replay is not None:
            session = Session.open(_session_path(ns.replay, ns.data_dir))
            missing = [x for x in spec.actions if x not in session.actions_names]
            if missing:
                raise EngineError(f"the session did not record {', '.join(missing)}; it has "
                                  f"{', '.join(session.actions_names)}")
            player = Player(model, NullOutput(len(spec.actions)), duration=ns.duration, kill_key=None)
            summary = player.replay(session.frames, session.timestamps)
            data = player.telemetry.arrays()
            cols = [session.actions_names.index(x) for x in spec.actions]
            agree = agreement(data["decision"], data["tick"], session.actions[:, cols])
            print("agreement with the recorded actions: " + ", ".join(
                f"{x} {v:.1%}" for x, v in zip(spec.actions, agree, strict=True)))
        else:
            kind = "dry-run" if ns.dry_run else ns.output
            source = open_source(region=ns.region, window=ns.window, monitor=ns.monitor, backend=ns.backend,
                                 display=ns.display)
            output = open_output(kind, list(spec.actions), display)
            kill = None if ns.kill_key.lower() == "none" else parse_actions([ns.kill_key], what="kill key")[0]
            if kill in spec.actions:
                raise EngineError(f"the kill key {kill} is one of the model's actions; pick another with --kill-key")
            player = Player(model, output, duration=ns.duration, kill_key=kill if hotkeys_available(display) else None,
                            display=display)
            if ns.countdown:
                import time

                print(f"playing in {ns.countdown:g} s: focus the game; {str(kill).upper()} stops", file=sys.stderr)
                time.sleep(ns.countdown)
            try:
                summary = player.live(source)
            finally:
                output.close()
    except PlayStopped as e:
        for line in e.summary.lines():
            print(line, file=sys.stderr)
        _save_log(ns, player)
        return 1
    except (EngineError, ValueError, CaptureError) as e:
        print(f"engine-play: {e}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith("warning") else sys.stdout)
    _save_log(ns, player)
    return 0


def _save_log(ns: argparse.Namespace, player: Player | None) -> None:
    if ns.log is not None and player is not None:
        player.telemetry.save(ns.log, list(player.spec.actions))
        print(f"telemetry: {ns.log}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
