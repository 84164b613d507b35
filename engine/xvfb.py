"""Start and stop Xvfb servers (a real X server without a screen) for the demo, tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Xvfb:
    """A running Xvfb. ``display`` is ':N'; ``tcp_display`` reaches the same server over TCP."""

    width: int = 1920
    height: int = 1080
    depth: int = 24
    shm: bool = True
    tcp: bool = False
    display: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def number(self) -> int:
        return int(self.display.lstrip(":"))

    @property
    def tcp_display(self) -> str:
        return f"127.0.0.1:{self.number}"

    def start(self) -> Xvfb:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise RuntimeError("Xvfb is not installed: run `make setup` (apt-get install xvfb)")
        read_fd, write_fd = os.pipe()
        # -noreset: by default the server resets when its last client leaves and drops connections
        # that arrive meanwhile, which breaks anything that connects, closes and reconnects.
        args = [exe, "-displayfd", str(write_fd), "-noreset", "-screen", "0",
                f"{self.width}x{self.height}x{self.depth}"]
        args += ["-listen", "tcp"] if self.tcp else ["-nolisten", "tcp"]
        if not self.shm:
            args += ["-extension", "MIT-SHM"]
        self.proc = subprocess.Popen(args, pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + 20
        with os.fdopen(read_fd, "rb") as r:
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                chunk = r.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip():
            self.stop()
            raise RuntimeError("Xvfb did not start (no display number reported)")
        self.display = f":{int(number)}"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def virtual_display(**kwargs: Any) -> Iterator[Xvfb]:
    """Start an Xvfb (``Xvfb(**kwargs)``) and point $DISPLAY at it while inside; both undone on exit."""
    server = Xvfb(**kwargs).start()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = server.display
    try:
        yield server
    finally:
        server.stop()
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
