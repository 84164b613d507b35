"""engine-demo: the bundled driving game, in a real X11 window titled "engine demo".

Arrow keys: left/right steer, up boosts; Escape quits. With --autodrive a scripted driver plays through
XTest (real X key events, seen by the game and by engine-record alike). With --gusts a crosswind shoves
the car sideways now and then: a recording then shows the driver coming back from well off the line,
which a model trained on it needs once it strays. Needs an X display: on a machine without one, run it
under Xvfb.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import args as a
from engine.errors import EngineError

EPILOG = """\
Once the window is up it prints one line:
  engine-demo ready: window=<X window id> size=WxH tick_hz=HZ seed=N
and at exit:
  engine-demo: on road P% of N frames (REASON)
The log (--log) is a CSV with one line per frame; engine.demo.load_log() reads it.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-demo", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--autodrive", action="store_true", help="let the scripted driver play (via XTest)")
    p.add_argument("--gusts", action="store_true",
                   help="crosswind: shove the car sideways at random moments (recordings then show recoveries)")
    p.add_argument("--assist", type=a.positive_float, metavar="PX",
                   help="the scripted driver as a person correcting a bot: it takes over (through a second "
                        "XInput2 master) when the car is more than PX pixels off the line, and lets go when back")
    p.add_argument("--mouse", action="store_true",
                   help="steer with the mouse (grabbed and hidden, warped to the centre each frame, as mouse-look "
                        "games do); with --autodrive the driver moves it through XTest relative motion")
    p.add_argument("--seed", type=_seed, default=0, help="road (and driver) seed (default 0)")
    p.add_argument("--tick-hz", type=a.positive_float, default=60.0, metavar="HZ",
                   help="game tick rate (default 60)")
    p.add_argument("--size", type=a.size, default=(320, 240), metavar="WxH", help="window size (default 320x240)")
    p.add_argument("--pos", type=_pos, metavar="X,Y", help="window position (default: where X puts it)")
    p.add_argument("--log", type=Path, metavar="PATH", help="write the per-frame CSV log here")
    p.add_argument("--duration", type=a.positive_float, metavar="SECONDS", help="quit after this long")
    p.add_argument("--display", default="", help="X display (default $DISPLAY)")
    return p


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {text}")
    return v


def _pos(text: str) -> tuple[int, int]:
    try:
        x, y = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y (e.g. 100,80)") from None
    return x, y


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from engine.demo.game import GameConfig, run

    cfg = GameConfig(seed=ns.seed, size=ns.size, tick_hz=ns.tick_hz, log_path=ns.log, duration_s=ns.duration,
                     autodrive=ns.autodrive, gusts=ns.gusts, assist_px=ns.assist, display=ns.display, position=ns.pos,
                     mouse=ns.mouse)

    def ready(window_id: int, focus_note: str) -> None:
        if focus_note:
            print(f"engine-demo: note: {focus_note}; used SDL's focus request instead", file=sys.stderr)
        print(f"engine-demo ready: window={window_id} size={cfg.size[0]}x{cfg.size[1]} "
              f"tick_hz={cfg.tick_hz:g} seed={cfg.seed}", flush=True)

    try:
        result = run(cfg, on_ready=ready)
    except EngineError as e:
        print(f"engine-demo: error: {e}", file=sys.stderr)
        return 2
    print(f"engine-demo: on road {100 * result.on_road_fraction:.1f}% of {result.frames} frames "
          f"({result.reason})", flush=True)
    if cfg.assist_px is not None:
        share = result.assist_frames / result.frames if result.frames else 0.0
        print(f"engine-demo: the assisting driver took over {result.assists} times, {share:.1%} of the frames",
              flush=True)
    if result.late_ticks or result.settle_misses:
        # Not an error, but it means the machine was too busy for the tick rate (or for determinism).
        print(f"engine-demo: note: {result.late_ticks} ticks were skipped as late, {result.settle_misses} "
              "autodrive frames were drawn before the driver's keys arrived", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
