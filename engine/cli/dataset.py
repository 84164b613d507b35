"""engine-dataset: cut recorded sessions into training windows and export them (.npz or HDF5 + m.json).

    engine-dataset build (--game NAME | SESSION...) [--data-dir DIR] [--window 20] [--skip 1] [--stride 1]
                         [--offset 0] [--encoding multihot|combo] [--classes LIST] [--balance TARGET]
                         [--split 0.8,0.1,0.1] [--split-by session|time] [--format npz|hdf5] --out PATH
    engine-dataset info PATH

Exit status: 0 done, 2 bad input or an empty selection (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from engine.cli import args as a
from engine.errors import EngineError

PROG = "engine-dataset"
DIR_FORMATS = ("lerobot", "webdataset")  # written by engine.dataset.lerobot / .webdataset, into a new directory

BUILD_EPILOG = """\
Windows: a window ending at frame t holds frames t-(W-1)*skip ... t and is labelled by the actions held at
frame t+offset; window ends are --stride frames apart. No window crosses a session boundary, a pause or
dropped frames (a timestamp step over --max-gap frame periods).

Labels: --encoding multihot gives one 0/1 column per action; combo gives one class per key combination:
the combinations seen (default), or --classes: wasd9, arrows9 (none, 4 keys, 4 diagonals) or a list like
none,w,a,w+a. Windows whose combination is not listed are dropped (and counted).

Axes (sessions recorded with mouse motion or pad axes): every recorded axis is a target beside the labels
(--axes NAME,... to choose, --axes none for keys only), encoded per --axis NAME=ENCODING[:N][:KEY=VALUE]:
raw (the value; lo/hi clip it), scaled (value*scale clipped to +-clip), bins:N:lo=L:hi=H (N uniform
bins), mulaw:N:max=M (VPT's camera bins: fine near 0, coarse for fast flicks). The encodings go into the
file's spec and the sidecar (format_version 2); balancing classes are then the key class with each axis'
bin (or sign, for raw/scaled).

Split and balance: --split 0.8,0.1,0.1 makes train/val/test sharing no frame, by whole sessions (default)
or by time blocks within each session; a part of fraction 0 is left out (0.9,0,0.1: train and test).
--balance uniform (or CLASS=WEIGHT,...) resamples the train part only, with --balance-mode under
(default: drop windows of frequent classes), over (repeat rare ones) or both; --seed makes it
reproducible.

Output: --out x.npz or x.h5 (the format follows the suffix; --format must agree with it, and names the
format of a file with another suffix); the file carries its spec. The model sidecar skeleton goes to the
same path with .json (x.json: train x.tflite beside it), or to --sidecar PATH, never over the export.
Every output path is checked before anything is written.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog=PROG, description="Cut recorded sessions into training windows and export them.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,info}")
    b = sub.add_parser("build", help="make windows from sessions and export them", epilog=BUILD_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Make training windows from sessions and export them with their spec.")
    src = b.add_argument_group("sessions")
    src.add_argument("sessions", nargs="*", metavar="SESSION", help="session directories or names")
    src.add_argument("--game", help="all sessions of this game")
    src.add_argument("--data-dir", type=Path, help="where sessions are (default $ENGINE_DATA_DIR or ./data)")
    win = b.add_argument_group("windows")
    a.add_window_options(win, window=20,
                         offset_help="label frame relative to the last frame; > 0 predicts ahead (default 0)")
    win.add_argument("--max-gap", type=a.positive_float, default=1.5, metavar="PERIODS",
                     help="a timestamp step over this many frame periods is a gap (default 1.5)")
    lab = b.add_argument_group("labels")
    lab.add_argument("--actions", help="label columns, comma-separated (default: the first session's actions)")
    lab.add_argument("--encoding", choices=("multihot", "combo"), default="multihot",
                     help="one column per action, or one class per key combination (default multihot)")
    lab.add_argument("--classes", help="combo classes: wasd9, arrows9 or a list like none,w,a,w+a")
    a.add_axis_options(lab)
    tk = b.add_argument_group("takeover sessions (engine-play --takeover --record)")
    a.add_intervention_options(tk, only_help="from takeover sessions keep the windows the person labelled (only, the "
                               "default), or repeat each W times; ordinary sessions are always kept whole")
    sp = b.add_argument_group("split and balance")
    sp.add_argument("--split", metavar="TRAIN[,VAL[,TEST]]", help="fractions, e.g. 0.8,0.1,0.1 (default: no split)")
    sp.add_argument("--split-by", choices=("session", "time"), default="session",
                    help="whole sessions, or time blocks within each session (default session)")
    sp.add_argument("--blocks", type=a.positive_int, default=1,
                    help="--split-by time: blocks per session, each split in the fractions (default 1)")
    sp.add_argument("--balance", metavar="TARGET", help="uniform, or CLASS=WEIGHT,... (train part only)")
    sp.add_argument("--balance-mode", choices=("under", "over", "both"), default="under",
                    help="undersample, oversample or both (default under)")
    sp.add_argument("--balance-axes", choices=("sign", "bin", "none"), default="sign",
                    help="with axis targets, a balancing class is the key class and each axis' sign (default), "
                         "bin, or the key class alone (none)")
    sp.add_argument("--seed", type=a.integer, default=0, help="seed for the split and balancing (default 0)")
    out = b.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True,
                     help="output file, .npz or .h5; a new directory for --format lerobot or webdataset")
    out.add_argument("--format", choices=("npz", "hdf5", *DIR_FORMATS),
                     help="default: from the --out suffix; lerobot: a LeRobot v3.0 dataset directory "
                          "(engine.dataset.lerobot); webdataset: tar shards, one sample per window")
    out.add_argument("--shard-mb", type=a.positive_int, default=256, help="webdataset: MB per shard (default 256)")
    out.add_argument("--store", choices=("windows", "frames"), default="windows",
                     help="windows: x (N, W, H, W') ready to train on (default); frames: each frame once")
    out.add_argument("--compression", choices=("default", "gzip", "lzf", "none"), default="default",
                     help="default: gzip level 1 for HDF5, none for npz")
    out.add_argument("--sidecar", type=Path, help="where to write the model sidecar (default: --out with .json)")
    out.add_argument("--no-sidecar", action="store_true", help="do not write the model sidecar")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on stderr (default: when stderr is a terminal)")
    i = sub.add_parser("info", help="describe an exported dataset", description="Describe an exported dataset.")
    i.add_argument("path", type=Path, help="an .npz, .h5 or export directory written by engine-dataset build")
    return p


class ProgressBar:
    """A one-line progress bar on a terminal stream: bytes done of total, percent and rate; redrawn at
    most 10 times a second, and only once an export has run for ``delay`` seconds (short ones stay quiet)."""

    def __init__(self, stream: TextIO, label: str = "exporting", delay: float = 0.5, width: int = 30) -> None:
        self.stream, self.label, self.delay, self.width = stream, label, delay, width
        self.start = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if now - self.start < self.delay and not (finished and self.drawn):
            return
        if not finished and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        fill = int(frac * self.width)
        rate = done / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{'#' * fill}{'-' * (self.width - fill)}] {frac:4.0%}  "
                          f"{done / 1e9:.2f}/{total / 1e9:.2f} GB  {rate / 1e6:.0f} MB/s")
        self.drawn = True
        if finished:
            self.stream.write("\n")
        self.stream.flush()


def _build(ns: argparse.Namespace) -> int:
    # Imported here so that `engine-dataset --help` and `info` do not compile the kernels' callers.
    from engine.dataset import Windows, export
    from engine.dataset.balance import parse_weights
    from engine.dataset.files import output_paths
    from engine.dataset.interventions import Interventions
    from engine.dataset.labels import combo_name, parse_classes
    from engine.dataset.split import parse_fractions
    from engine.dataset.windows import game_sessions

    if ns.game is not None and ns.sessions:
        raise EngineError("give --game NAME or SESSION..., not both")
    if ns.game is None and not ns.sessions:
        raise EngineError("no sessions selected; give --game NAME or SESSION... (see engine-sessions)")
    if ns.classes is not None and ns.encoding != "combo":
        raise EngineError("--classes needs --encoding combo")
    if ns.sidecar is not None and ns.no_sidecar:
        raise EngineError("give --sidecar PATH or --no-sidecar, not both")
    if ns.seed < 0:  # numpy's generators take no negative seed
        raise EngineError(f"--seed must be an integer >= 0, got {ns.seed}")
    sidecar = False if ns.no_sidecar else (ns.sidecar if ns.sidecar is not None else True)
    # Checked again by export; here so that a bad --out or --sidecar fails before minutes of work.
    if ns.format in DIR_FORMATS:
        from engine.dataset.outdir import check_out_dir

        check_out_dir(ns.out)
    else:
        output_paths(ns.out, ns.format, sidecar)
    actions = [x.strip() for x in ns.actions.split(",")] if ns.actions else None
    classes = parse_classes(ns.classes) if ns.classes is not None else None
    fractions = parse_fractions(ns.split) if ns.split is not None else None
    weights = parse_weights(ns.balance) if ns.balance is not None else None

    # --game matches games only (game_sessions): resolving it as a SESSION would take a session's name.
    windows = Windows(
        game_sessions(ns.game, ns.data_dir) if ns.game is not None else ns.sessions, window=ns.window,
        skip=ns.skip, stride=ns.stride, offset=ns.offset, encoding=ns.encoding, classes=classes, actions=actions,
        data_dir=ns.data_dir, max_gap=ns.max_gap, interventions=Interventions.parse(ns.interventions, ns.before),
        axes=ns.axes, axis_specs=ns.axis,
    )
    s = windows.spec
    what = f"combo, {len(s.classes)} classes" if s.encoding == "combo" else f"multihot, {len(s.actions)} actions"
    if s.axes:
        what += ", axes " + ", ".join(f"{x.name} ({x.encoding}{f' {x.n}' if x.binned else ''})" for x in s.axes)
    print(f"{len(windows.sessions)} session(s): {len(windows)} windows of {s.window} frames (skip {s.skip}, "
          f"stride {s.stride}, offset {s.offset}), {what}")
    if windows.intervention_windows:
        print(f"  {windows.intervention_windows} of them from the person's takeovers "
              f"(--interventions {ns.interventions or 'only'}, --before {ns.before})")
    if s.unlisted:
        print(f"  {s.unlisted} windows dropped: their key combination is not one of the classes")
    parts = {"all": windows}
    if fractions is not None:
        parts = windows.split(fractions, by=ns.split_by, seed=ns.seed, blocks=ns.blocks)
        print(f"split by {ns.split_by} {ns.split}: " + ", ".join(f"{n} {len(w)}" for n, w in parts.items()))
    if weights is not None:
        first = next(iter(parts))
        parts[first] = parts[first].balance(weights, mode=ns.balance_mode, seed=ns.seed, axes=ns.balance_axes)
        report = parts[first].balance_report
        assert report is not None
        print(f"balanced {first} ({ns.balance_mode}, {ns.balance}): {sum(report.before.values())} -> "
              f"{sum(report.after.values())} windows")
        for line in report.lines():
            print(f"  {line}")
    elif s.encoding == "combo":
        counts = next(iter(parts.values())).class_counts()
        print("classes: " + ", ".join(f"{combo_name(c)} {counts[combo_name(c)]}" for c in s.classes))
    # On a terminal by default, after a delay so short exports stay quiet; --progress asked for a bar, so
    # it is drawn from the start however short the export.
    bar = ProgressBar(sys.stderr) if ns.progress is None and sys.stderr.isatty() else (
        ProgressBar(sys.stderr, delay=0.0) if ns.progress else None)
    if ns.format in DIR_FORMATS:
        return _export_dir(ns, parts, bar)
    result = export(
        parts, ns.out, format=ns.format, store=ns.store, compression=ns.compression, sidecar=sidecar,
        progress=bar,
    )
    size = result.path.stat().st_size
    side = f"; model sidecar {result.sidecar}" if result.sidecar is not None else ""
    print(f"wrote {result.path} ({result.format}, store {result.store}, {size / 1e6:.1f} MB){side}")
    return 0


def _export_dir(ns: argparse.Namespace, parts: dict[str, Any], bar: ProgressBar | None) -> int:
    if ns.format == "lerobot":
        from engine.dataset.lerobot import export_lerobot

        r = export_lerobot(parts, ns.out, progress=bar)
        what = f"{r.items} frames in {r.files} parquet file(s)"
    else:
        from engine.dataset.webdataset import export_webdataset

        r = export_webdataset(parts, ns.out, shard_bytes=ns.shard_mb << 20, seed=ns.seed, progress=bar)
        what = f"{r.items} windows in {r.files} shard(s)"
    print(f"wrote {r.path} ({r.format}, {what}, {r.bytes_written / 1e6:.1f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of engine-dataset; returns the exit status."""
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "build":
            return _build(ns)
        from engine.dataset import describe

        if ns.path.is_dir():  # a --format lerobot or webdataset export
            from engine.dataset.outdir import describe_dir

            print(describe_dir(ns.path))
            return 0
        print(describe(ns.path))
        return 0
    except EngineError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output file was left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
