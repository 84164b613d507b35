"""engine-sessions compact: compress the frames of finished sessions in place, losslessly.

    engine-sessions compact [--data-dir DIR] (NAME... | --game NAME | --all)

Each session's frames.npy becomes frames.b2nd (blosc2, zstd level 1, see engine.session.compressed);
the raw frames are removed only after the compressed copy was verified chunk by chunk, so an interrupted
compact leaves every session readable, and running it again finishes the job. Sessions still being
recorded are refused (one line each). One line per session: its sizes before and after; a progress bar
on a terminal.

Exit status: 0 done, 1 some session could not be compacted, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.cli.dataset import ProgressBar
from engine.cli.sessions import _nonempty, _Parser, _size, _UsageError
from engine.errors import EngineError
from engine.session import compact, data_dir, is_compressed, sessions

PROG = "engine-sessions compact"


def _frame_bytes(path: Path) -> int:
    try:
        shape = json.loads((path / "meta.json").read_text())["frame_shape"]
        return int(math.prod(shape))
    except (OSError, ValueError, KeyError, TypeError):
        return 1  # the progress bar then counts frames; compact() reports what is wrong


def _bar(path: Path, frame_bytes: int) -> Callable[[int, int], None]:
    """A progress bar on stderr, fed (frames done, frames total), drawn in bytes."""
    bar = ProgressBar(sys.stderr, label=f"compacting {path.name}")
    return lambda done, total: bar(done * frame_bytes, total * frame_bytes)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``engine-sessions compact``; returns the exit status."""
    parser = _Parser(prog=PROG, description="Compress the frames of finished sessions in place (lossless).")
    parser.add_argument("names", nargs="*", metavar="NAME", help="session names or directories")
    parser.add_argument("--data-dir", type=_nonempty, help="data dir (default: $ENGINE_DATA_DIR or ./data)")
    parser.add_argument("--game", type=_nonempty, help="every session of this game")
    parser.add_argument("--all", action="store_true", help="every session in the data dir")
    try:
        args = parser.parse_args(argv)
        if bool(args.names) + (args.game is not None) + args.all != 1:
            raise _UsageError("name sessions, or give --game NAME or --all (one of them)")
        root = data_dir(args.data_dir) / "sessions"
        if args.names:
            paths = []
            for n in args.names:
                p = Path(n) if (Path(n) / "meta.json").is_file() else root / n
                if not (p / "meta.json").is_file():
                    raise _UsageError(f"no session {n!r} in {root}; list them with engine-sessions")
                paths.append(p)
        else:
            paths = [i.path for i in sessions(args.data_dir, game=args.game)]
            if not paths:
                what = f" of game {args.game!r}" if args.game else ""
                raise _UsageError(f"no sessions{what} in {root}; list them with engine-sessions")
    except (_UsageError, EngineError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    failed = 0
    for p in paths:
        if is_compressed(p):
            print(f"{p.name}: already compact")
            continue
        fb = _frame_bytes(p)
        bar = _bar(p, fb) if sys.stderr.isatty() else None
        try:
            meta = compact(p, progress=bar)
        except EngineError as e:
            print(f"{PROG}: {p.name}: {e}", file=sys.stderr)
            failed += 1
            continue
        c = meta["compression"]
        ratio = c["raw_bytes"] / max(c["compressed_bytes"], 1)
        print(f"{p.name}: {_size(c['raw_bytes'])} -> {_size(c['compressed_bytes'])} ({ratio:.1f}x)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
