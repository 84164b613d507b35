"""The README's first command (``make demo``: ``python -m engine.demo.tour``) runs end to end on a machine
with no display: it starts its own Xvfb, records the scripted driver with engine-record, lets the shipped
model play with engine-play, and prints what the README promises. Shortened (--seconds, --play-seconds);
marked slow like the other end-to-end tests, as it starts a display, two games and two engine commands.

The game logs and play telemetry it prints the paths of go to DATA_DIR/demo/, nowhere else (TMPDIR points
into the test's own directory to see that nothing lands in a temporary directory).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.session import Session

pytestmark = pytest.mark.slow


def test_demo_tour_records_plays_and_reports_without_a_display(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["TMPDIR"] = str(tmp)
    # A previous run's log is replaced; a file the demo did not write is left alone.
    work = tmp_path / "data" / "demo"
    work.mkdir(parents=True)
    (work / "play-99.npz").write_bytes(b"stale")
    (work / "notes.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "engine.demo.tour", "--seconds", "3", "--play-seconds", "3",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "demo: no usable display, started a virtual one (Xvfb :" in out

    # The recorder's summary and the session it wrote, which opens with its frames.
    recorded = re.search(r"^recorded (\d+) frames in [\d.]+ s: [\d.]+ fps \(target 30\), (\d+) dropped", out, re.M)
    assert recorded and int(recorded[1]) > 0, out
    session = re.search(r"^session: (.+) \(complete\)$", out, re.M)
    assert session, out
    path = Path(session[1])
    assert path.parent == tmp_path / "data" / "sessions"
    ses = Session.open(path)
    assert ses.meta["frames"] == len(ses.frames) == int(recorded[1]) > 0
    assert ses.actions_names == ["left", "right", "up"]

    # The shipped model's drive, scored by the game's own log, and engine-play's decision and latency summary.
    assert re.search(r"^demo: the model kept the car on the road [\d.]+% of the [1-9]\d* game frames shown while it "
                     r"played \(with no keys at all: [\d.]+%", out, re.M), out
    assert re.search(r"^  played [1-9]\d* decisions in [\d.]+ s", out, re.M), out
    assert re.search(r"^  invoke p50 [\d.]+ ms p99 [\d.]+ ms \| capture->keys p50 [\d.]+ ms p99 [\d.]+ ms", out,
                     re.M), out

    # The game logs and play telemetry it named are in DATA_DIR/demo; nothing was left in TMPDIR.
    assert not (work / "play-99.npz").exists() and (work / "notes.txt").read_text() == "mine"
    assert (work / "game.csv").is_file() and str(work / "game.csv") in out, out
    assert any(work.glob("play-*.npz")), sorted(work.iterdir())
    assert not any(tmp.iterdir()), sorted(tmp.iterdir())
