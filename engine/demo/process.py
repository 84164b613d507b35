"""engine-demo in a subprocess: the one way the demo wrapper, the tests and the benchmarks start it."""

from __future__ import annotations

import os
import select
import subprocess
import sys


class DemoProcess:
    """Starts ``engine-demo ARGS`` on ``display`` (default $DISPLAY) and returns once its window is up
    (the game prints "engine-demo ready: window=ID size=WxH ..."). ``window_id`` and ``info`` hold what it
    reported; ``stdout``/``stderr`` what it printed once it has exited."""

    def __init__(self, *args: str, display: str | None = None, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYGAME_HIDE_SUPPORT_PROMPT="1")
        if display:
            env["DISPLAY"] = display
        self.timeout = timeout
        self.stdout = self.stderr = ""
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.cli.demo", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("engine-demo ready: "):
            self.stop()
            raise RuntimeError(f"engine-demo did not start: {(line + self.stderr).strip()!r}")
        self.info = dict(kv.split("=", 1) for kv in line.split()[2:])
        self.window_id = int(self.info["window"])

    def wait(self) -> int:
        """Wait for the game to exit; returns its exit code."""
        out, err = self.proc.communicate(timeout=self.timeout)
        self.stdout += out or ""  # a second wait (stop after wait) adds nothing and keeps the first output
        self.stderr += err or ""
        return self.proc.returncode

    def signal(self, sig: int) -> int:
        """Send ``sig`` and wait for the exit (SIGTERM/SIGINT: the game releases its keys, flushes its log)."""
        self.proc.send_signal(sig)
        return self.wait()

    def stop(self) -> str:
        """Stop the game if it runs (SIGTERM, SIGKILL if it does not exit); returns what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.wait()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.wait()
        return self.stdout + self.stderr
