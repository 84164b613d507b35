"""Crash watchdog for keys sent through XTest.

XTest presses outlive the process that sent them: if play dies without running its cleanup (kill -9,
a segfault in a runtime, the OOM killer), the X server keeps those keys down. XTestOutput starts this
small process with a pipe on its stdin; play writes "clean" and closes the pipe when it has released
everything itself. If the pipe closes without that word, the parent died uncleanly, and this process
releases every configured action the X server still has down.

    python -m engine.play.watchdog DISPLAY ACTION[,ACTION...]
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    display, actions = args[0], args[1].split(",")
    clean = False
    for line in sys.stdin:  # blocks until the parent writes or dies
        clean = line.strip() == "clean"
    if clean:
        return 0
    from engine import _native

    released = _native.XTestActuator(display, actions).release_server_held()
    if released:
        print(f"engine-play watchdog: play exited uncleanly; released {released} key(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
