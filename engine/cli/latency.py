"""engine-latency: input-to-photon latency of a window: press a key (XTest), time until its pixels change."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from engine.cli import args as a
from engine.errors import CaptureError, EngineError, WindowLost

EPILOG = """\
Each probe waits a random gap, presses KEY, grabs the probe region as fast as the X server answers
until its mean absolute gray difference from just before the press reaches --threshold, holds the key
for another random gap, releases it and waits for the region to go back. Latency is from just before
the press was sent to the capture instant of the first changed grab, on the engine's monotonic clock
(release-to-photon likewise).

The probe region should change only when KEY is pressed (a HUD element, a key indicator): anything
else moving in it makes detections coincidences, and the tool warns when it sees that. On the demo
game (engine-demo) the default probe region is KEY's indicator box (left, up or right).

The keys go to the window with the keyboard focus: focus the game during --countdown.
Exit status: 0 measured, 1 no probe saw a change, interrupted or window lost, 2 bad input.
Installed as the `engine-latency` console script; `python -m engine.cli.latency` runs the same.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-latency", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--window", type=a.window, metavar="TITLE", help="window title (or a unique substring) or X id")
    where.add_argument("--region", type=a.region, metavar="X,Y,W,H", help="rectangle on the screen")
    p.add_argument("--key", required=True, metavar="NAME", help="the key to press (an action name, e.g. left, space)")
    p.add_argument("--probe-region", type=a.region, metavar="X,Y,W,H",
                   help="where to look, inside the window or region (default: the demo's key indicator, else all)")
    p.add_argument("--probes", type=a.positive_int, default=100, metavar="N", help="press/release cycles (default 100)")
    p.add_argument("--threshold", type=a.positive_float, default=1.0, metavar="LEVELS",
                   help="mean abs gray difference (0-255) that counts as a change (default 1)")
    p.add_argument("--timeout", type=a.positive_float, default=1.0, metavar="S",
                   help="seconds to wait for the change, and for the revert, per probe (default 1)")
    p.add_argument("--spacing", type=_spacing, default=(0.05, 0.15), metavar="MIN,MAX",
                   help="random gaps before each press and each release, seconds (default 0.05,0.15)")
    p.add_argument("--countdown", type=a.nonnegative_float, default=3.0, metavar="S",
                   help="seconds before the first press, to focus the window (default 3)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the statistics and every probe here")
    p.add_argument("--seed", type=int, help="seed of the random gaps (default: fresh)")
    p.add_argument("--display", default="", help="X display (default $DISPLAY)")
    return p


def _spacing(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX seconds (e.g. 0.05,0.15)") from None
    if not 0 <= lo <= hi < 60:
        raise argparse.ArgumentTypeError(f"want 0 <= MIN <= MAX < 60 seconds, got {text}")
    return lo, hi


def _sigterm(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C, through measure()'s finally that releases the key.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from engine.demo.game import WINDOW_TITLE, indicator_rects
    from engine.latency import LatencyConfig, measure

    cfg = LatencyConfig(key=ns.key, window=ns.window, region=ns.region, probe_region=ns.probe_region,
                        probes=ns.probes, threshold=ns.threshold, timeout=ns.timeout, spacing=ns.spacing,
                        display=ns.display, seed=ns.seed, indicators={WINDOW_TITLE: indicator_rects})
    if ns.json is not None and not os.access(ns.json.parent, os.W_OK):
        # Before the measurement, not after a minute of it.
        print(f"engine-latency: cannot write {ns.json}: {ns.json.parent} is not a writable directory; "
              "pick another --json path", file=sys.stderr)
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm) if main_thread else None
    try:
        if ns.countdown:
            print(f"probing in {ns.countdown:g} s: focus the window", file=sys.stderr, flush=True)
            time.sleep(ns.countdown)
        result = measure(cfg)
    except WindowLost as e:
        print(f"engine-latency: {e}; the key was released", file=sys.stderr)
        return 1
    except (EngineError, ValueError, CaptureError) as e:
        print(f"engine-latency: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during the countdown or the setup: nothing was pressed yet
        print("engine-latency: interrupted before the first probe", file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    for line in result.lines():
        print(line)
    for w in result.warnings():
        print(f"warning: {w}", file=sys.stderr)
    if ns.json is not None:
        try:
            result.save_json(ns.json)
        except EngineError as e:
            print(f"engine-latency: {e}", file=sys.stderr)
            return 2
    if result.interrupted:
        print(f"engine-latency: interrupted after {len(result.probes)} probes; the key was released",
              file=sys.stderr)
        return 1
    if not result.detected:
        print(f"engine-latency: pressing {cfg.key} changed nothing in probe region "
              f"{','.join(map(str, result.probe_rect))} within {cfg.timeout:g} s in any of {len(result.probes)} "
              "probes; check that the window has the keyboard focus, the key does something visible there "
              "(--probe-region), and --threshold", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
