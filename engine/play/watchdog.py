"""Crash watchdog for keys play injects (XTest on X11, SendInput on Windows).

Injected presses outlive the process that sent them. XTest: the X server keeps the key down (seen here
with kill -9). SendInput: its events join the keyboard's input stream and do not reset key state
(SendInput docs, Remarks), and nothing ties an injected press to the sender's lifetime (unlike
BlockInput); users report keys stuck after killing the sender. So if play dies without running its
cleanup (kill -9, a runtime crashing, the OOM killer), its keys would stay down.

Play's output starts this process with a pipe on its stdin, in its own session, and writes "clean" and
closes the pipe once it has released everything itself. If the pipe closes without that word, play died
uncleanly, and this process releases every configured action the system still reports down.

    python -m engine.play.watchdog xtest|sendinput DISPLAY ACTION[,ACTION...]
"""

from __future__ import annotations

import signal
import sys


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a console Ctrl-C is play's to handle
    kind, display, actions = (sys.argv[1:] if argv is None else argv)[:3]
    clean = False
    for line in sys.stdin:  # blocks until the parent writes or dies
        clean = line.strip() == "clean"
    if clean:
        return 0
    from engine import _native

    try:
        if kind == "xtest":
            released = _native.XTestActuator(display, actions.split(",")).release_server_held()
        else:
            released = _native.SendInputActuator(actions.split(",")).release_server_held()
    except Exception as e:  # one line on stderr is all a watchdog can do
        print(f"engine-play watchdog: play exited uncleanly and releasing its keys failed: {e}", file=sys.stderr)
        return 1
    if released:
        print(f"engine-play watchdog: play exited uncleanly; released {released} key(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
