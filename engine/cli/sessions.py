"""engine-sessions: list the recorded sessions of a data dir as a table.

    engine-sessions [--data-dir DIR] [--game NAME]
    engine-sessions compact (NAME... | --game NAME | --all)   (see engine.cli.compact)

Exit status: 0 (also when there is nothing to list), 2 on bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from engine.errors import EngineError
from engine.session import SessionInfo, data_dir, sessions

PROG = "engine-sessions"
COLUMNS = ("NAME", "GAME", "CREATED (UTC)", "FRAMES", "DURATION", "FPS", "STATUS", "SIZE")
RIGHT = {"FRAMES", "DURATION", "FPS", "SIZE"}  # numbers are right-aligned


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the usage too; bad input gets one line.
        raise _UsageError(message)


def _nonempty(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    x, i = n / 1024, 0
    while x >= 1024 and i < len(units) - 1:
        x, i = x / 1024, i + 1
    return f"{x:.1f} {units[i]}"


def _created(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso  # written by something else: show it as is


def _row(s: SessionInfo) -> tuple[str, ...]:
    return (s.name, s.game, _created(s.created), str(s.frames), _duration(s.duration_s), f"{s.fps:g}",
            s.status, _size(s.bytes_on_disk))


def format_table(infos: Sequence[SessionInfo]) -> str:
    """The listing as aligned text columns, one session per line, with a header line."""
    rows = [COLUMNS, *(_row(s) for s in infos)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = []
    for r in rows:
        cells = [c.rjust(w) if h in RIGHT else c.ljust(w) for c, w, h in zip(r, widths, COLUMNS, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of engine-sessions; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compact"]:
        from engine.cli.compact import main as compact_main

        return compact_main(argv[1:])
    parser = _Parser(prog=PROG, description="List recorded sessions, oldest first. "
                     "'engine-sessions compact --help': compress sessions in place.")
    parser.add_argument("--data-dir", type=_nonempty, help="data dir (default: $ENGINE_DATA_DIR or ./data)")
    parser.add_argument("--game", type=_nonempty, help="only the sessions of this game")
    try:
        args = parser.parse_args(argv)
        infos = sessions(args.data_dir, game=args.game)
    except (_UsageError, EngineError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if not infos:
        where = data_dir(args.data_dir) / "sessions"
        print(f"no sessions{f' of game {args.game!r}' if args.game else ''} in {where}")
        return 0
    print(format_table(infos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
