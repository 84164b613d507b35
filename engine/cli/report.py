"""engine-report: a PNG and an HTML page of a recorded session or a play log (frames, actions, pacing, latency)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import args as a
from engine.errors import EngineError

EPILOG = """\
INPUT is a session directory (or a session name under the data dir) or a play log written by
engine-play --log (.npz or .csv). Writes <name>.report.png and <name>.report.html (the PNG embedded,
the numbers as text) into --out, by default beside the input.

The image shows: evenly spaced frames (sessions), one lane per action with held intervals and
press/release ticks, the instantaneous rate and the pacing error (each sample's lateness against
the ideal schedule s0 + slot / fps, s0 the earliest origin with no sample early) with gaps marked,
and for play logs invoke time and capture -> keys latency histograms (with and without invoke).
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog="engine-report", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="SESSION_OR_PLAY_LOG", help="session directory or name, or a play log")
    p.add_argument("--out", type=Path, metavar="DIR", help="where to write the report (default: beside the input)")
    p.add_argument("--fps", type=a.positive_float, help="schedule rate (default: meta.json, or a play log's ticks)")
    p.add_argument("--data-dir", type=Path,
                   help="where session names are looked up (default: $ENGINE_DATA_DIR, else ./data)")
    return p


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from engine.report import build_report

    try:
        report = build_report(ns.input, ns.out, fps=ns.fps, data_dir=ns.data_dir)
    except EngineError as e:
        print(f"engine-report: {e}", file=sys.stderr)
        return 2
    for label, value in report.rows:
        if label.startswith("BLANK FRAMES"):  # a row the report flags: say it here too
            print(f"engine-report: warning: {label.lower()}: {value}", file=sys.stderr)
    print(f"report: {report.png} ({report.width}x{report.height})")
    print(f"report: {report.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
