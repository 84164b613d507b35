"""Releases the demo driver's keys if the game process dies without doing it itself.

XTest key presses outlive the client that sent them: after a SIGKILL, or when Xlib ends the process
on a lost connection (``exit(1)`` from its I/O error path, which skips every Python ``finally``), the
X server keeps the driver's keys down, and every later recording on that display sees them held.

The game starts this watchdog as a child when it autodrives, in its own session (so a terminal's
Ctrl-C reaches only the game) and holding the read end of a pipe whose write end only the game has.
The watchdog blocks on that pipe, costing nothing. The game writes ``CLEAN`` once it has released its
keys; if the pipe reaches end-of-file without it, the game died dirty and the watchdog sends a
release (XTest key-up only, never a press) for each of ACTIONS the server still has down.

    python .../engine/demo/watchdog.py DISPLAY    (stdin: the pipe)

It runs as a script, not with ``-m``, so that it starts without importing the engine (numpy, pygame
are not needed unless there is something to release).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

CLEAN = b"CLEAN\n"
_KEYSYMS = {"left": "Left", "right": "Right", "up": "Up"}


class Watchdog:
    """The game's side: start the child, and tell it about a clean exit."""

    def __init__(self, display: str) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), display],
                                     stdin=subprocess.PIPE, start_new_session=True)

    def finish(self, clean: bool) -> None:
        """clean: every key was released, so the watchdog exits without touching anything. Otherwise
        (releasing failed) the pipe is just closed and the watchdog releases what is still down."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                if clean:
                    stdin.write(CLEAN)
                stdin.close()
            except OSError:
                pass  # the watchdog is gone already; nothing to tell it
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def release_held(display: str) -> list[str]:
    """Send an XTest key-up for each demo action the server has down; returns their names."""
    from engine import _native
    from engine.demo.sim import ACTIONS

    probe = _native.XTestActuator(display, list(ACTIONS))
    down = [name for name, is_down in zip(ACTIONS, probe.server_state(), strict=True) if is_down]
    xdotool = shutil.which("xdotool")
    if down and xdotool is not None:
        # xdotool keyup sends only the release; the actuator only releases what it pressed itself.
        subprocess.run([xdotool, "keyup", *(_KEYSYMS[n] for n in down)], env=dict(os.environ, DISPLAY=display),
                       check=False, timeout=10)
    elif down:
        # Without xdotool: press (a repeat of a key already down) and release through the actuator.
        for name in down:
            i = ACTIONS.index(name)
            probe.set(i, True)
            probe.set(i, False)
    return down


def main() -> int:
    # The game's signals are not ours: only end-of-file on the pipe ends the watch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    display = sys.argv[1]
    message = sys.stdin.buffer.read()
    if message == CLEAN:
        return 0
    try:
        down = release_held(display)
    except Exception as e:  # e.g. the X server is gone too, and with it every held key
        print(f"engine-demo watchdog: could not check the keys on {display}: {e}", file=sys.stderr)
        return 1
    if down:
        print(f"engine-demo watchdog: the game died holding {', '.join(down)}; released", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
