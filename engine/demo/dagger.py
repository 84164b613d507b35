"""Human-gated DAgger on the demo game, measured: does training on a person's corrections help?

    python -m engine.demo.dagger [--seconds 40] [--rounds 2] [--work DIR]

Every step is the real command line (``python -m engine.cli.<tool>``) on a private Xvfb:

0. Record the scripted driver on calm roads (``engine-demo --autodrive``, no crosswind) and train the
   reference CNN on it (engine-train, the shipped demo model's settings). Such a model has never seen the
   car far off the line: pushed there, it does not come back (engine/demo/models/make_demo_model.py).
1. Score it on roads used for neither training nor corrections, in a crosswind (``--gusts``: shoves the
   keys did not cause), by the game's own log: the fraction of frames with the car on the road.
2. A round: the model plays other roads in the crosswind with ``engine-play --takeover --record``; the
   game runs ``--assist PX``, the scripted driver as a person on a second XInput2 master who takes over
   when the car is more than PX pixels off the line and lets go once it is back. The share of time the
   person had control is read from each takeover session's spans.
3. Aggregate and retrain: engine-train from scratch on the calm sessions plus every round's takeover
   sessions (``--interventions weight=W --before N``: only the person's corrections count from those),
   or, with ``--finetune``, start from the previous round's weights. Score again on the held-out roads.

It prints one line per model and round; the README quotes a run. Real-time: about 2 minutes per round
plus training on this 2-core machine, too slow for the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from engine.demo.game import WINDOW_TITLE
from engine.demo.models.drive import DemoGame, drive_model
from engine.demo.models.make_demo_model import COLOR, FPS, FRAME_SIZE, SHIFT, WINDOW, demo_masks
from engine.demo.sim import ACTIONS
from engine.errors import EngineError

CALM = "demo-calm"
DAGGER = "demo-dagger"


def _run(cmd: Sequence[str], quiet: bool = True) -> str:
    done = subprocess.run([sys.executable, *cmd], text=True, capture_output=True)
    if done.returncode != 0:
        last = ((done.stderr or "").strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise EngineError(f"{cmd[1]} failed: {last}")
    if not quiet:
        print(done.stdout, end="")
    return done.stdout


def record_calm(data: Path, seeds: Sequence[int], seconds: float) -> list[str]:
    names = []
    for seed in seeds:
        name = f"{CALM}-seed{seed}"
        with DemoGame(data / f"game-{name}.csv", seed, "--autodrive"):
            _run(["-m", "engine.cli.record", "--window", WINDOW_TITLE, "--fps", str(FPS), "--size",
                  f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}", "--color", COLOR, "--actions", ",".join(ACTIONS), "--game", CALM,
                  "--name", name, "--duration", f"{seconds:g}", "--countdown", "0", "--data-dir", str(data)])
        names.append(name)
    return names


def play_with_takeover(model: Path, data: Path, name: str, seed: int, seconds: float, assist_px: float,
                       handback: float) -> tuple[float, int]:
    """engine-play --takeover --record on road ``seed`` in a crosswind, the assisting driver as the person.
    Returns (share of the time the person had control, takeovers), from the session's meta.json."""
    with DemoGame(data / f"game-{name}.csv", seed, "--gusts", "--assist", f"{assist_px:g}"):
        _run(["-m", "engine.cli.play", "--model", str(model), "--window", WINDOW_TITLE, "--duration", f"{seconds:g}",
              "--countdown", "0", "--takeover", "--handback", f"{handback:g}", "--record", "--name", name,
              "--game", DAGGER, "--data-dir", str(data)])
    meta = json.loads((data / "sessions" / name / "meta.json").read_text())
    spans = meta["takeover"]["spans_ns"]
    person = sum(e - s for s, e in spans) / 1e9
    return person / max(meta["duration_s"], 1e-9), len(spans)


def train(data: Path, sessions: Sequence[str], out: Path, *, epochs: int, weight: int, before: int,
          finetune: Path | None = None) -> Path:
    masks = [a for r in demo_masks() for a in ("--mask", ",".join(map(str, r)))]
    dataset = out.with_suffix(".h5")
    _run(["-m", "engine.cli.dataset", "build", *sessions, "--data-dir", str(data), "--window", str(WINDOW),
          "--split", "0.8,0.2", "--split-by", "time", "--blocks", "5", "--balance", "uniform", "--balance-mode",
          "over", "--interventions", f"weight={weight}", "--before", str(before), "--out", str(dataset),
          "--no-progress"])
    _run(["-m", "engine.cli.train", "--data", str(dataset), *masks, "--mirror", "left=right", "--shift", str(SHIFT),
          "--epochs", str(epochs), "--name", "demo", "--out", str(out), "--no-progress", "--no-uint8",
          *(["--finetune", str(finetune)] if finetune is not None else [])])
    return out / "demo.tflite"


def score(model: Path, seeds: Sequence[int], seconds: float, work: Path) -> list[float]:
    return [drive_model(model, seconds, s, work, game_args=("--gusts",)).on_road for s in seeds]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="engine.demo.dagger", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=40.0, help="each recording and each takeover run (default 40)")
    p.add_argument("--calm-seeds", default="1,2", help="roads of the calm recordings (default 1,2)")
    p.add_argument("--round-seeds", default="3,4", help="roads the model plays with corrections (default 3,4)")
    p.add_argument("--eval-seeds", default="11,12,13", help="held-out roads it is scored on (default 11,12,13)")
    p.add_argument("--eval-seconds", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--assist-px", type=float, default=24.0, help="the person takes over past this error (default 24)")
    p.add_argument("--handback", type=float, default=0.3)
    p.add_argument("--weight", type=int, default=3, help="--interventions weight=W (default 3)")
    p.add_argument("--before", type=int, default=5, help="frames before each takeover (default 5)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--finetune", action="store_true", help="fine-tune the previous model instead of retraining")
    p.add_argument("--work", type=Path)
    ns = p.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    calm_seeds, round_seeds, eval_seeds = ints(ns.calm_seeds), ints(ns.round_seeds), ints(ns.eval_seeds)

    from engine.xvfb import Xvfb

    work = ns.work or Path(tempfile.mkdtemp(prefix="engine-dagger-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    server = Xvfb(width=1280, height=720).start()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = server.display
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    try:
        sessions = record_calm(data, calm_seeds, ns.seconds)
        model = train(data, sessions, work / "model0", epochs=ns.epochs, weight=ns.weight, before=ns.before)
        on = score(model, eval_seeds, ns.eval_seconds, work / "eval0")
        say(f"round 0 (calm recordings only, {len(sessions)} x {ns.seconds:g} s): on the road "
            f"{', '.join(f'{x:.1%}' for x in on)} on held-out roads {eval_seeds} in a crosswind "
            f"(mean {sum(on) / len(on):.1%})")
        for k in range(1, ns.rounds + 1):
            shares = []
            for seed in round_seeds:
                name = f"{DAGGER}-r{k}-seed{seed}"
                share, count = play_with_takeover(model, data, name, seed, ns.seconds, ns.assist_px, ns.handback)
                shares.append(share)
                sessions.append(name)
                say(f"  round {k}, road {seed}: the person took over {count} times, {share:.1%} of the time")
            prev = model
            model = train(data, sessions, work / f"model{k}", epochs=ns.epochs, weight=ns.weight, before=ns.before,
                          finetune=prev.with_suffix(".weights.h5") if ns.finetune else None)
            on = score(model, eval_seeds, ns.eval_seconds, work / f"eval{k}")
            how = "fine-tuned from the previous model" if ns.finetune else "retrained from scratch on the aggregate"
            say(f"round {k} ({how}; the person had control {sum(shares) / len(shares):.1%} of the round's time): "
                f"on the road {', '.join(f'{x:.1%}' for x in on)} (mean {sum(on) / len(on):.1%})")
    except EngineError as e:
        print(f"engine.demo.dagger: {e}", file=sys.stderr)
        return 2
    finally:
        server.stop()
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
    (work / "dagger.txt").write_text("\n".join(lines) + "\n")
    print(f"{time.monotonic() - t0:.0f} s in all; work files in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
