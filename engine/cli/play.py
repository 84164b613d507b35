"""engine-play: a .tflite model plays at the rate it was trained at, watching the screen and pressing keys."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from engine.actions.inputs import INPUTS, default_input, hotkeys_available
from engine.actions.names import parse_actions
from engine.actions.outputs import OUTPUTS, NullOutput, default_output, open_output
from engine.capture import BACKENDS, open_source
from engine.cli import args as a
from engine.errors import CaptureError, EngineError
from engine.model.model import Model
from engine.play.loop import Player, PlayStopped, agreement, axis_error
from engine.session import Session, data_dir
from engine.signals import stop_on_signals

EPILOG = """\
The model's spec comes from m.json beside m.tflite (written by engine-dataset / engine-train); the
model flags below override it. Without m.json the engine infers what it can from the input shape and
needs --actions. A model that does not fit is refused with the dimension that differs.

Safety: every exit path releases every key (Ctrl-C, SIGTERM, errors, the window closing, the kill
switch F12, --duration). --dry-run prints decisions and sends nothing.

--takeover: the person may take control at any time by pressing any of the model's actions; the engine
releases every key it holds at once and sends nothing while the person drives (the model keeps deciding).
Control returns after --handback seconds with no key of the person's pressed or held, or at once on
--takeover-key. Whose key it was is decided by the source device (the engine's own XTest device is not
the person's keyboard), never by timing. --record writes the run as a session (as engine-record names and
places it) plus who had control (control.npy) and what the model proposed (model_actions.npy) per frame.

--replay SESSION runs the model over a recorded session (a path, or a name under the data dir) at the
recorded timing, with no screen and no keys, and reports agreement with the recorded actions (and, for a
model with axes, the mean absolute error per axis).

Axes (a model trained with mouse or pad axes): mouse_dx/mouse_dy/wheel are sent as relative motion (XTest
on X11, uinput REL_*, SendInput), each decision's motion spread over the frame period; mouse_x/mouse_y put
the pointer within the captured area; pad axes and pad buttons drive a virtual pad (--output uinput on
Linux; ViGEm with --output sendinput on Windows). XTest has no pad: such a model is refused there.
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
    tk = p.add_argument_group("take over (the person corrects the model while it plays)")
    tk.add_argument("--takeover", action="store_true",
                    help="the person's first key press, or motion of one of the model's axes past its dead zone, "
                         "takes control")
    tk.add_argument("--takeover-deadzone", metavar="AXIS=VALUE,...",
                    help="how far an axis must move to take over (defaults: mouse_dx/mouse_dy 4 counts and wheel 1 "
                         "notch within 100 ms, mouse_x/mouse_y 0.02 of the area, pad axes 0.15)")
    tk.add_argument("--handback", type=a.positive_float, default=1.0, metavar="SECONDS",
                    help="give control back after this long without the person's input (default 1)")
    tk.add_argument("--takeover-key", default="f11", help="hotkey that gives control back at once (default f11)")
    tk.add_argument("--input", choices=INPUTS, default=default_input(),
                    help=f"where the person's input is read (default {default_input()}; a pad model needs evdev)")
    tk.add_argument("--pad", metavar="NAME|PATH", help="with --input evdev: the person's gamepad")
    tk.add_argument("--record", action="store_true", help="with --takeover: write the run as a session")
    tk.add_argument("--name", help="session name for --record (default <game>_<UTC time>)")
    tk.add_argument("--game", default="game", help="game name for --record (default 'game')")
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
        if len(parts) > 2:
            raise EngineError(f"--scale wants MULTIPLY[,ADD] (at most two numbers), got {ns.scale!r}")
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


def _check_log(path: Path) -> None:
    """Refuse a --log path before play, not after it: its format comes from the suffix, and a directory
    that is missing or unwritable would otherwise lose the whole run's telemetry at exit."""
    if path.is_dir():
        raise EngineError(f"--log {path} is a directory; give a file name ending in .npz or .csv")
    if path.suffix.lower() not in (".npz", ".csv"):
        raise EngineError(f"--log {path}: the suffix picks the format, .npz or .csv, not "
                          f"{path.suffix or 'none'}; e.g. --log {path.with_suffix('.npz')}")
    parent = path.parent
    if not parent.is_dir():
        raise EngineError(f"--log {path}: directory {parent} does not exist; create it or log elsewhere")
    existed = path.exists()
    try:  # a real open, not os.access: it also catches read-only file systems and root-squashed mounts
        with path.open("ab"):
            pass
    except OSError as e:
        raise EngineError(f"--log {path}: cannot write there ({e.strerror or e}); log elsewhere") from None
    if not existed:
        path.unlink(missing_ok=True)  # written for real at exit; leave nothing behind if play fails first


def _fps_matches(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    player: Player | None = None
    try:
        if ns.log is not None:
            _check_log(ns.log)
        if ns.record and not ns.takeover:
            raise EngineError("--record records the person's corrections: it needs --takeover")
        if ns.takeover_deadzone is not None and not ns.takeover:
            raise EngineError("--takeover-deadzone says when the person takes over: it needs --takeover")
        actions = parse_actions(ns.actions) if ns.actions else None
        model = Model.load(ns.model, overrides=_overrides(ns), actions=actions, threads=ns.threads)
        spec = model.spec
        axes = list(getattr(model.decoder(), "axes", ()))
        print(f"model {ns.model} on {model.runtime}: {spec.window} x {spec.width}x{spec.height} {spec.color} at "
              f"{spec.fps:g} fps -> {', '.join([*spec.actions, *axes])} ({spec.encoding})", file=sys.stderr)
        for note in model.notes:  # what was read from the input shape that no flag said
            print(note, file=sys.stderr)
        display = ns.display or os.environ.get("DISPLAY", "")
        if ns.replay is not None:
            session = Session.open(_session_path(ns.replay, ns.data_dir))
            if ns.fps is None and not _fps_matches(session.fps, spec.fps):
                # Frames spaced for another rate would be judged by a model trained on this one.
                raise EngineError(f"the session was recorded at {session.fps:g} fps but the model runs at "
                                  f"{spec.fps:g} fps; replay a {spec.fps:g} fps session, or pass --fps "
                                  f"{session.fps:g} to run it at the session's rate anyway")
            missing = [x for x in spec.actions if x not in session.actions_names]
            if missing:
                raise EngineError(f"the session did not record {', '.join(missing)}; it has "
                                  f"{', '.join(session.actions_names)}")
            recorded_axes = list(getattr(session, "axis_names", []))
            missing_axes = [x for x in axes if x not in recorded_axes]
            if missing_axes:
                raise EngineError(f"the session did not record the axes {', '.join(missing_axes)}; it has "
                                  f"{', '.join(recorded_axes) or 'no axes'}")
            player = Player(model, NullOutput(len(spec.actions), axes), duration=ns.duration, kill_key=None)
            summary = player.replay(session.frames, session.timestamps)
            data = player.telemetry.arrays()
            cols = [session.actions_names.index(x) for x in spec.actions]
            agree = agreement(data["decision"], data["tick"], session.actions[:, cols])
            print("agreement with the recorded actions: " + ", ".join(
                f"{x} {v:.1%}" for x, v in zip(spec.actions, agree, strict=True)))
            if axes:
                acols = [recorded_axes.index(x) for x in axes]
                err = axis_error(data["axes"], data["tick"], session.axes[:, acols])
                print("mean absolute error per axis: " + ", ".join(
                    f"{x} {v:.3g}" for x, v in zip(axes, err, strict=True)))
        else:
            kind = "dry-run" if ns.dry_run else ns.output
            kill = None if ns.kill_key.lower() == "none" else parse_actions([ns.kill_key], what="kill key")[0]
            if kill in spec.actions:
                raise EngineError(f"the kill key {kill} is one of the model's actions; pick another with --kill-key")
            source = open_source(region=ns.region, window=ns.window, monitor=ns.monitor, backend=ns.backend,
                                 display=ns.display)
            # Last: it may start a watchdog. A model with axes the output cannot do is refused here, in one line.
            output = open_output(kind, list(spec.actions), display, axes=axes, fps=spec.fps, region=source.rect)
            try:
                hotkeys = hotkeys_available(display)
                takeover = recording = None
                if ns.takeover:
                    takeover, recording = open_takeover(
                        ns, list(spec.actions), output, display, source, (spec.height, spec.width), spec.color,
                        spec.fps, avoid=[k for k in (kill,) if k])
                player = Player(model, output, duration=ns.duration, kill_key=kill if hotkeys else None,
                                display=display, takeover=takeover, recording=recording)
                # One signal scope from the countdown to the end of play: Ctrl-C or SIGTERM at any point
                # stops cleanly (play's own handlers nest inside it).
                with stop_on_signals(player.stop):
                    if ns.countdown:
                        if kill is None:
                            stops = "no kill switch (--kill-key none); Ctrl-C stops"
                        elif not hotkeys:
                            stops = f"the {kill.upper()} kill switch needs a display here; Ctrl-C stops"
                        else:
                            stops = f"{kill.upper()} or Ctrl-C stops"
                        print(f"playing in {ns.countdown:g} s: focus the game; {stops}", file=sys.stderr)
                        if not player.countdown(ns.countdown):
                            print(f"stopped by {player.stop_reason} during the countdown; no key was sent")
                            return 0
                    summary = player.live(source)
            finally:
                output.close()
                if player is not None and player.recording is not None and player.takeover is not None:
                    meta = player.recording.close(player.takeover.stats.spans, player.takeover.take_events(),
                                                  player.takeover.take_axis_events())
                    print(f"recorded {meta['frames']} frames to {player.recording.writer.path}", file=sys.stderr)
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
    return 0 if _save_log(ns, player) else 2


def open_takeover(ns: argparse.Namespace, actions: list[str], output: Any, display: str, source: Any,
                  shape: tuple[int, int], color: str, fps: float, avoid: list[str]) -> tuple[Any, Any]:
    """The Takeover (a listener of the model's actions and the hand-back key) and, with --record, the
    TakeoverRecording writing the run as a session."""
    from engine.actions.inputs import open_input
    from engine.actions.motion import PAD_AXES
    from engine.play.takeover import Takeover, TakeoverRecording, parse_deadzone
    from engine.session import SessionWriter

    key = parse_actions([ns.takeover_key], what="takeover key")[0]
    if key in actions or key in avoid:
        raise EngineError(f"--takeover-key {key} is one of the model's actions or the kill key; pick another")
    axes = list(getattr(output, "axes", ()))
    pads = [x for x in axes if x in PAD_AXES]
    if pads and ns.input == "x11":
        # X11 reads no pad. evdev tells the engine's own virtual pad from the person's by its device name,
        # Windows raw input by the injected flag.
        raise EngineError(f"--takeover of a pad model ({', '.join(pads)}) needs the person's pad: pass --input evdev "
                          "--pad NAME (X11 has no gamepads)")
    deadzone = parse_deadzone(ns.takeover_deadzone, axes)
    inputs = open_input(ns.input, actions, [key], display, axes=axes, region=list(source.rect), pad=ns.pad)
    devices = getattr(output, "devices", None)
    takeover = Takeover(inputs, output, devices if devices else None, n_actions=len(actions),
                        handback_s=ns.handback, keep_events=ns.record,
                        say=lambda line: print(line, file=sys.stderr, flush=True), axes=axes, deadzone=deadzone)
    recording = None
    if ns.record:
        frame_shape = shape if color == "gray" else (*shape, 3)
        writer = SessionWriter.create(
            ns.data_dir, name=ns.name, game=ns.game, fps=fps, frame_shape=frame_shape, color=color,  # type: ignore[arg-type]
            actions=actions, axes=axes, resize=(shape[1], shape[0]),
            source={"backend": f"{source.backend}/{source.path}", "region": list(source.rect),
                    "window": ns.window, "fallback_reason": source.fallback_reason, "input": ns.input,
                    "played_by": str(ns.model)})
        recording = TakeoverRecording(writer, len(actions), axes)
    return takeover, recording


def _save_log(ns: argparse.Namespace, player: Player | None) -> bool:
    """Write --log if asked; False (after one line) when that failed, e.g. the disk filled during play."""
    if ns.log is not None and player is not None:
        try:
            player.telemetry.save(ns.log, list(player.spec.actions))
        except OSError as e:
            print(f"engine-play: cannot write telemetry to {ns.log}: {e.strerror or e}", file=sys.stderr)
            return False
        print(f"telemetry: {ns.log}", file=sys.stderr)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
