"""Human-gated DAgger on the demo game, measured: does training on a person's corrections help?

    python -m engine.demo.dagger [--seconds 40] [--rounds 2] [--size 80x60] [--seed 0] [--work DIR]

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

With ``--candidates N`` every model (round 0's too) is the best of N trainings (training seeds seed, seed+1,
...) by how they drive on validation roads (``--val-seeds``, used for nothing else), as DAgger returns the
best policy on validation: one training of a small model can drive far worse than another of the same data.
The validation drives run in the game's simulation (engine.demo.models.rollout: the game's renderer, the
engine's convert+resize and engine-play's model code, ~70x faster than real time), so a model is chosen on
many long drives, not on one short one; only the held-out scores are real engine-play drives.

It prints one line per model and round; the README quotes a run. Real-time: about 2 minutes per round
plus training on this 2-core machine, too slow for the test suite. tests/test_dagger.py runs the same
loop small (:class:`Sizes`: one calm recording, one round, 40x30 frames, short drives, few epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.demo.game import WINDOW_TITLE
from engine.demo.models.drive import DemoGame, drive_model
from engine.demo.models.make_demo_model import COLOR, FPS, FRAME_SIZE, SHIFT, WINDOW, demo_masks
from engine.demo.models.rollout import rollouts
from engine.demo.sim import ACTIONS
from engine.errors import EngineError

CALM = "demo-calm"
DAGGER = "demo-dagger"


@dataclass(frozen=True)
class Sizes:
    """How big one measured loop is. The defaults are the README's run (about 20 minutes on a 2-core
    machine); tests/test_dagger.py runs a small one (small frames, short drives, few epochs)."""

    seconds: float = 40.0  # each calm recording and each takeover run
    calm_seeds: tuple[int, ...] = (1, 2)  # roads of the calm recordings
    round_seeds: tuple[int, ...] = (3, 4)  # roads the model plays with corrections
    eval_seeds: tuple[int, ...] = (11, 12, 13)  # held-out roads it is scored on
    eval_seconds: float = 30.0
    rounds: int = 2
    assist_px: float = 24.0  # the person takes over past this error (320-px window units)
    handback: float = 0.3
    weight: int = 3  # engine-dataset --interventions weight=W
    before: int = 5  # frames before each takeover that count as the bot's mistake
    epochs: int = 20
    batch_size: int = 64  # engine-train --batch-size
    learning_rate: float = 1e-3  # engine-train --learning-rate
    finetune: bool = False  # fine-tune the previous round's model instead of retraining on the aggregate
    frame_size: tuple[int, int] = FRAME_SIZE  # what engine-record stores (the 320x240 window area-resized)
    seed: int = 0  # engine-dataset and engine-train --seed (split, balancing, shuffling, weights)
    candidates: int = 1  # trainings per model (seeds seed, seed+1, ...): the best on the validation roads is kept
    val_seeds: tuple[int, ...] = (5, 6, 7, 8, 9, 10)  # validation roads (crosswind, simulated), candidates > 1
    val_seconds: float = 14.0  # each validation drive, game time (about 0.15 s of CPU at 40x30)
    val_target: float = 0.0  # while the best training drives the validation roads less than this (0 to 1) ...
    max_candidates: int = 0  # ... train `candidates` more, up to this many in all (0: just `candidates`)


@dataclass
class Round:
    """One model of the loop: round 0 is the model trained on the calm recordings only."""

    round: int
    on_road: list[float]  # per held-out road, Sizes.eval_seeds order
    takeover_share: list[float] = field(default_factory=list)  # per round road: the person's share of time
    takeovers: list[int] = field(default_factory=list)  # per round road
    validation: list[float] = field(default_factory=list)  # per candidate: mean on-road on the validation roads
    kept: int = 0  # the candidate kept (its training seed is Sizes.seed + kept)

    @property
    def mean_on_road(self) -> float:
        return sum(self.on_road) / len(self.on_road)

    @property
    def mean_share(self) -> float:
        return sum(self.takeover_share) / len(self.takeover_share) if self.takeover_share else 0.0


def _run(cmd: Sequence[str]) -> str:
    done = subprocess.run([sys.executable, *cmd], text=True, capture_output=True)
    if done.returncode != 0:
        last = ((done.stderr or "").strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise EngineError(f"{cmd[1]} failed: {last}")
    return done.stdout


def record_calm(data: Path, seeds: Sequence[int], seconds: float, frame_size: tuple[int, int] = FRAME_SIZE
                ) -> list[str]:
    names = []
    for seed in seeds:
        name = f"{CALM}-seed{seed}"
        with DemoGame(data / f"game-{name}.csv", seed, "--autodrive"):
            _run(["-m", "engine.cli.record", "--window", WINDOW_TITLE, "--fps", str(FPS), "--size",
                  f"{frame_size[0]}x{frame_size[1]}", "--color", COLOR, "--actions", ",".join(ACTIONS), "--game", CALM,
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
          finetune: Path | None = None, frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0,
          batch_size: int = 64, learning_rate: float = 1e-3) -> Path:
    masks = [a for r in demo_masks(frame_size) for a in ("--mask", ",".join(map(str, r)))]
    shift = max(1, round(SHIFT * frame_size[0] / FRAME_SIZE[0]))  # the same share of the frame's width
    dataset = out.with_suffix(".h5")
    _run(["-m", "engine.cli.dataset", "build", *sessions, "--data-dir", str(data), "--window", str(WINDOW),
          "--split", "0.8,0.2", "--split-by", "time", "--blocks", "5", "--balance", "uniform", "--balance-mode",
          "over", "--interventions", f"weight={weight}", "--before", str(before), "--seed", str(seed),
          "--out", str(dataset), "--no-progress"])
    _run(["-m", "engine.cli.train", "--data", str(dataset), *masks, "--mirror", "left=right", "--shift", str(shift),
          "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", f"{learning_rate:g}",
          "--seed", str(seed), "--name", "demo", "--out", str(out), "--no-progress",
          "--no-uint8", *(["--finetune", str(finetune)] if finetune is not None else [])])
    return out / "demo.tflite"


def score(model: Path, seeds: Sequence[int], seconds: float, work: Path) -> list[float]:
    return [drive_model(model, seconds, s, work, game_args=("--gusts",)).on_road for s in seeds]


def run(sizes: Sizes, work: Path, say: Callable[[str], None] = print, times: dict[str, float] | None = None
        ) -> list[Round]:
    """The loop on $DISPLAY (an X server the demo game and the engine share), files under ``work``: round 0
    (calm recordings only), then ``sizes.rounds`` rounds of takeover runs, aggregate and retrain. Says one
    line per model and per takeover run; returns every model's scores; adds each step's wall time to
    ``times`` (record, train, score, takeover). Raises EngineError when a step fails."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    s = sizes
    clock = [time.monotonic()]

    def lap(step: str) -> None:
        now = time.monotonic()
        if times is not None:
            times[step] = times.get(step, 0.0) + now - clock[0]
        clock[0] = now

    sessions = record_calm(data, s.calm_seeds, s.seconds, s.frame_size)
    lap("record")

    def fit(out: Path, finetune: Path | None = None) -> tuple[Path, list[float], int]:
        """The model of one round: one training, or the best of ``s.candidates`` on the validation roads.
        Returns (model, each candidate's validation on-road, the one kept)."""
        def one(c: int) -> Path:
            return train(data, sessions, out if s.candidates == 1 else out.with_name(f"{out.name}c{c}"),
                         epochs=s.epochs, weight=s.weight, before=s.before, finetune=finetune,
                         frame_size=s.frame_size, seed=s.seed + c, batch_size=s.batch_size,
                         learning_rate=s.learning_rate)

        models: list[Path] = []
        val: list[float] = []
        most = max(s.candidates, s.max_candidates)
        while True:
            # Side by side: a training's own steps (imports, the dataset build, the export and its check) leave
            # a core idle much of the time; two at once took ~1.5x one on 2 cores (19.5 s against 13 s), not 2x.
            batch = range(len(models), min(len(models) + s.candidates, most))
            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                new = list(pool.map(one, batch))
            lap("train")
            models += new
            if len(models) == 1:
                return models[0], [], 0
            val += [sum(v) / len(v) for v in (rollouts(m, s.val_seconds, s.val_seeds) for m in new)]
            lap("validate")
            # A training that fell on a bad plateau drives the validation road off the line; one more batch is
            # cheaper than a model that cannot steer (what a person tuning this loop by hand would do too).
            if max(val) >= s.val_target or len(models) >= most:
                break
        kept = max(range(len(models)), key=val.__getitem__)
        more = f" (best under {s.val_target:.0%}: trained more)" if len(models) > s.candidates else ""
        say(f"  {out.name}: {len(models)} trainings on simulated validation roads {list(s.val_seeds)}: "
            f"{', '.join(f'{v:.1%}' for v in val)}{more}; kept training seed {s.seed + kept}")
        return models[kept], val, kept

    model, val, kept = fit(work / "model0")
    rounds = [Round(0, score(model, s.eval_seeds, s.eval_seconds, work / "eval0"), validation=val, kept=kept)]
    lap("score")
    say(f"round 0 (calm recordings only, {len(sessions)} x {s.seconds:g} s): on the road "
        f"{', '.join(f'{x:.1%}' for x in rounds[0].on_road)} on held-out roads {list(s.eval_seeds)} in a crosswind "
        f"(mean {rounds[0].mean_on_road:.1%})")
    for k in range(1, s.rounds + 1):
        shares, counts = [], []
        for seed in s.round_seeds:
            name = f"{DAGGER}-r{k}-seed{seed}"
            share, count = play_with_takeover(model, data, name, seed, s.seconds, s.assist_px, s.handback)
            lap("takeover")
            shares.append(share)
            counts.append(count)
            sessions.append(name)
            say(f"  round {k}, road {seed}: the person took over {count} times, {share:.1%} of the time")
        prev = model
        model, val, kept = fit(work / f"model{k}", prev.with_suffix(".weights.h5") if s.finetune else None)
        r = Round(k, score(model, s.eval_seeds, s.eval_seconds, work / f"eval{k}"), shares, counts, val, kept)
        lap("score")
        rounds.append(r)
        how = "fine-tuned from the previous model" if s.finetune else "retrained from scratch on the aggregate"
        say(f"round {k} ({how}; the person had control {r.mean_share:.1%} of the round's time): "
            f"on the road {', '.join(f'{x:.1%}' for x in r.on_road)} (mean {r.mean_on_road:.1%})")
    return rounds


def main(argv: Sequence[str] | None = None) -> int:
    d = Sizes()
    p = argparse.ArgumentParser(prog="engine.demo.dagger", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    seeds = lambda t: ",".join(map(str, t))  # noqa: E731
    p.add_argument("--seconds", type=float, default=d.seconds,
                   help=f"each recording and each takeover run (default {d.seconds:g})")
    p.add_argument("--calm-seeds", type=ints, default=d.calm_seeds,
                   help=f"roads of the calm recordings (default {seeds(d.calm_seeds)})")
    p.add_argument("--round-seeds", type=ints, default=d.round_seeds,
                   help=f"roads the model plays with corrections (default {seeds(d.round_seeds)})")
    p.add_argument("--eval-seeds", type=ints, default=d.eval_seeds,
                   help=f"held-out roads it is scored on (default {seeds(d.eval_seeds)})")
    p.add_argument("--eval-seconds", type=float, default=d.eval_seconds)
    p.add_argument("--rounds", type=int, default=d.rounds)
    p.add_argument("--assist-px", type=float, default=d.assist_px,
                   help=f"the person takes over past this error (default {d.assist_px:g})")
    p.add_argument("--handback", type=float, default=d.handback)
    p.add_argument("--weight", type=int, default=d.weight, help=f"--interventions weight=W (default {d.weight})")
    p.add_argument("--before", type=int, default=d.before, help=f"frames before each takeover (default {d.before})")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--finetune", action="store_true", help="fine-tune the previous model instead of retraining")
    p.add_argument("--size", type=lambda s: tuple(int(x) for x in s.split("x")), default=d.frame_size,
                   metavar="WxH", help=f"recorded frame size (default {d.frame_size[0]}x{d.frame_size[1]})")
    p.add_argument("--seed", type=int, default=d.seed, help="engine-dataset/engine-train --seed (default 0)")
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help="trainings per model (seeds seed, seed+1, ...), the best on the validation roads kept "
                        f"(default {d.candidates})")
    p.add_argument("--val-seeds", type=ints, default=d.val_seeds,
                   help=f"validation roads for --candidates, simulated (default {seeds(d.val_seeds)})")
    p.add_argument("--val-seconds", type=float, default=d.val_seconds,
                   help=f"each simulated validation drive, game time (default {d.val_seconds:g})")
    p.add_argument("--val-target", type=float, default=d.val_target,
                   help="while the best training drives the validation roads less than this share of the time "
                        "(0 to 1), train --candidates more (default 0: never)")
    p.add_argument("--max-candidates", type=int, default=d.max_candidates,
                   help="most trainings per model with --val-target (default: --candidates)")
    p.add_argument("--work", type=Path)
    ns = p.parse_args(argv)
    if ns.candidates < 1:
        p.error(f"--candidates {ns.candidates}: train at least 1 model per round")
    if ns.candidates > 1 and set(ns.val_seeds) & set((*ns.calm_seeds, *ns.round_seeds, *ns.eval_seeds)):
        p.error(f"--val-seeds {seeds(ns.val_seeds)}: validation roads must differ from the calm, round and "
                "held-out roads (pick others, e.g. 5,6,7,8,9,10)")
    if not 0 <= ns.val_target <= 1:
        p.error(f"--val-target {ns.val_target:g}: a share of the validation drive, from 0 to 1 (e.g. 0.8)")
    if ns.max_candidates and (ns.max_candidates < ns.candidates or ns.candidates < 2):
        p.error(f"--max-candidates {ns.max_candidates}: needs --candidates 2 or more and at least as many "
                f"(--candidates is {ns.candidates})")
    if ns.candidates > 1 and not ns.val_seconds > 0:
        p.error(f"--val-seconds {ns.val_seconds:g}: a validation drive needs a positive length, e.g. 14")
    sizes = Sizes(ns.seconds, ns.calm_seeds, ns.round_seeds, ns.eval_seeds, ns.eval_seconds, ns.rounds, ns.assist_px,
                  ns.handback, ns.weight, ns.before, ns.epochs, ns.batch_size, ns.learning_rate, ns.finetune, ns.size,
                  ns.seed, ns.candidates, ns.val_seeds, ns.val_seconds, ns.val_target, ns.max_candidates)

    from engine.xvfb import Xvfb

    work = ns.work or Path(tempfile.mkdtemp(prefix="engine-dagger-"))
    t0 = time.monotonic()
    server = Xvfb(width=1280, height=720).start()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = server.display
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    times: dict[str, float] = {}
    try:
        run(sizes, work, say, times)
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
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"{time.monotonic() - t0:.0f} s in all ({steps}); work files in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
