"""Crash watchdog for the keys the engine injects (XTest on X11, SendInput on Windows).

Injected presses outlive the process that sent them. XTest: the X server keeps the key down (seen here
with kill -9). SendInput: its events join the keyboard's input stream and do not reset key state
(SendInput docs, Remarks), and nothing ties an injected press to the sender's lifetime (unlike
BlockInput); users report keys stuck after killing the sender. So if the sender dies without running its
cleanup (kill -9, a runtime crashing, the OOM killer), its keys would stay down.

A native output (engine.actions.outputs: engine-play's, the demo driver's, engine-latency's) starts this
process with a pipe on its stdin, in its own session, and writes "clean" and closes the pipe once it has
released everything itself. If the pipe closes without that word, the sender died uncleanly, and this
process releases every configured action the system still reports down.

    python -m engine.actions.watchdog xtest|sendinput DISPLAY ACTION[,ACTION...]

:class:`Watchdog` is the watched side; only engine.actions.outputs starts one.

Axes (issue 14) need nothing from it, by construction: relative mouse motion holds nothing (a dead
sender's motion thread dies with it, so the motion in flight stops where it was), and a virtual pad
(uinput on Linux, ViGEm on Windows) is destroyed with its sender's file descriptor or bus handle, which
the kernel closes on any death, so no stick stays deflected and no pad button stays down. Pad buttons are
therefore never passed here; mouse buttons are keys like any other and are released.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence


class Watchdog:
    """The watched process's side: starts the watchdog for ``actions`` (in its own session or process
    group, so a terminal's Ctrl-C is the watched process's to handle), and :meth:`finish` tells it how the
    watched process ended. It inherits stdout and stderr, so a reader of the watched process's output sees
    end-of-file only once the watchdog has done its work."""

    def __init__(self, kind: str, display: str, actions: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.actions.watchdog", kind, display, ",".join(actions)],
            stdin=subprocess.PIPE, text=True, start_new_session=os.name == "posix",
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))

    def finish(self, clean: bool) -> None:
        """clean: every key was released, so the watchdog exits touching nothing; otherwise the pipe is
        just closed and it releases what the system still reports down."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):  # a watchdog that is gone has nothing to be told
                if clean:
                    stdin.write("clean\n")
                stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a console Ctrl-C is the sender's to handle
    kind, display, actions = (sys.argv[1:] if argv is None else argv)[:3]
    clean = False
    for line in sys.stdin:  # blocks until the parent writes or dies
        clean = line.strip() == "clean"
    if clean:
        return 0
    from engine import _native

    try:
        if kind == "xtest":
            released = _native.XTestActuator(display, actions.split(",")).release_system_held()
        else:
            released = _native.SendInputActuator(actions.split(",")).release_system_held()
    except Exception as e:  # one line on stderr is all a watchdog can do
        print(f"engine watchdog: releasing the {kind} keys of a dead process failed: {e}", file=sys.stderr)
        return 1
    if released:
        print(f"engine watchdog: a process died holding {released} {kind} key(s); released them", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
