"""The guided tour of the engine on its bundled demo game, end to end, on any Linux machine (``make demo``).

Not the game itself: that is ``engine-demo`` (engine.cli.demo, engine.demo.game).

Starts a virtual display when there is none, opens the demo game with its scripted driver, and records
it with the real ``engine-record`` command for 20 s; then prints the recorder's summary and where the
session is. Then the model shipped with engine (``engine/demo/models/demo.tflite``, trained on the
scripted driver by ``make_demo_model.py``) plays a fresh game, without the scripted driver, on a road it
was not trained on, through the real ``engine-play`` command with ``--duration``; it prints how well it
drove (the game's own on-road fraction, from its log, beside what no keys at all would score on that
road) and engine-play's decision-rate and latency summary. No TensorFlow is needed. The game logs and
the play telemetry whose paths it prints stay in DATA_DIR/demo/ (replaced by the next run), beside the
sessions, rather than in a temporary directory nobody removes.

    python -m engine.demo.tour [--seconds 20] [--data-dir DIR] [--play-seconds 10] [--play-seed 5]
                               [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from engine.demo.game import WINDOW_TITLE
from engine.demo.log import load_log
from engine.demo.models import DEMO_MODEL
from engine.demo.process import DemoProcess
from engine.errors import EngineError
from engine.session.layout import data_dir
from engine.xvfb import Xvfb

ACTIONS = "left,right,up"


def _display_works(display: str) -> bool:
    if not display:
        return False
    from engine import _native

    try:
        _native.x11_screen_size(display)
    except Exception:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="engine-demo-tour", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="how long to record (default 20)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the session goes (default ./data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--play-seconds", type=float, default=10.0, help="how long the model plays (default 10)")
    p.add_argument("--play-seed", type=int, default=5, help="road the model plays on (default 5: not trained on)")
    p.add_argument("--model", type=Path, default=DEMO_MODEL, help="the .tflite that plays (default: the shipped one)")
    ns = p.parse_args(argv)

    server = None
    if not _display_works(os.environ.get("DISPLAY", "")):
        server = Xvfb(width=1280, height=720).start()
        os.environ["DISPLAY"] = server.display
        print(f"demo: no usable display, started a virtual one (Xvfb {server.display})", flush=True)
    work = data_dir(ns.data_dir) / "demo"
    try:
        work.mkdir(parents=True, exist_ok=True)
        # The previous run's logs, by the names this demo writes: nothing else in the directory is touched.
        for old in [*work.glob("game*.csv"), *work.glob("play-*.npz")]:
            old.unlink()
    except OSError as e:
        if server is not None:
            server.stop()
        raise SystemExit(f"demo: cannot create {work} ({e.strerror}); pick a writable --data-dir") from None
    try:
        game = DemoProcess("--autodrive", "--seed", str(ns.seed), "--log", str(work / "game.csv"))
    except RuntimeError as e:
        if server is not None:
            server.stop()
        raise SystemExit(f"demo: the game did not start: {e}") from None
    try:
        record = ["engine-record", "--window", WINDOW_TITLE, "--fps", "30", "--actions", ACTIONS, "--game", "demo",
                  "--duration", f"{ns.seconds:g}", "--countdown", "0"]
        if ns.data_dir is not None:
            record += ["--data-dir", str(ns.data_dir)]
        print("demo: the scripted driver plays the demo game; recording it with:", flush=True)
        print("  " + " ".join(f"'{a}'" if " " in a else a for a in record), flush=True)
        done = subprocess.run([sys.executable, "-m", "engine.cli.record", *record[1:]])
        game.stop()
        if done.returncode != 0:
            return done.returncode
        log = load_log(work / "game.csv")
        if len(log):
            print(f"demo: the driver kept the car on the road {log['on_road'].mean():.1%} of {len(log)} game "
                  f"frames (game log: {work / 'game.csv'})")
        print("demo: list sessions with `engine-sessions`, build a dataset with `engine-dataset build --game demo`")
        return _play(ns.model, ns.play_seconds, ns.play_seed, work)
    finally:
        game.stop()
        if server is not None:
            server.stop()


def _play(model: Path, seconds: float, seed: int, work: Path) -> int:
    """The model drives a fresh game (no scripted driver) through engine-play; print how it went."""
    from engine.demo.models.drive import drive_model, no_keys_on_road

    print(f"demo: now {model.name} plays a fresh game on road {seed} (not trained on) for {seconds:g} s:", flush=True)
    print(f"  engine-play --model {model} --window '{WINDOW_TITLE}' --duration {seconds:g} --countdown 0", flush=True)
    try:
        result = drive_model(model, seconds, seed, work)
    except EngineError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    floor = no_keys_on_road(seed, result.rows)
    print(f"demo: the model kept the car on the road {result.on_road:.1%} of the {result.frames} game frames shown "
          f"while it played (with no keys at all: {floor:.1%}; game log: {result.log})")
    for line in result.summary:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
