"""End to end with the mouse (issue 14), every step through the real command line as tests/test_e2e.py does
for keys: engine-record the scripted driver steering the mouse-steered demo game (``engine-demo --mouse
--autodrive --gusts``: the pointer grabbed as mouse-look games do, the driver's XTest relative motion, a
crosswind so the recording holds recoveries) recording ``mouse_dx`` alone (XI2 raw motion: the mouse-steered
game has no keys, so the model is one of axes alone), engine-dataset build with an axis spec,
engine-train, then engine-play with XTest relative mouse output drives a fresh ``engine-demo --mouse`` (no
autodrive) on a road it was not trained on. The game's own log says how often the car was on the road;
random mouse motion (normal, the recording's spread per frame) is measured on the same road beside it.

Choices, measured on 30 s recordings of road 1 (80x60 rgb, 30 fps, window 4), 12 epochs, scored 15 s on road
5 (lscpu: AMD EPYC, 2 cores shared with other jobs):

- Axis encoding: scaled regression, ``mouse_dx=scaled:scale=0.0625:clip=1`` (counts / 16: the driver's
  motion stays within +-15 counts a frame). Binned mu-law (``mulaw:11:max=16``, the default's shape)
  learns too slowly for the epochs this test can pay for: after 12 epochs its validation error was the
  always-0 answer's (mean |error| 3.55 counts, right bin 3.8%) and it drove 18.2% on the road, what no
  motion at all scores; scaled regression reached 1.61 counts, right sign 92.3%, and drove 100%. (On a
  40 s recording mu-law needed 15 epochs to come near: 2.58 counts against scaled's 2.48.) Steering is
  one smooth quantity whose size matters; a softmax over 11 levels has to find that order itself.
- Label timing: ``--offset 1``. A relative axis' frame value is the motion over (t[i-1], t[i]]; the
  driver decides after the game frame it sees and its motion is spread over the next tick, so the
  decision made on what frame t shows is in frame t+1's motion. With --offset 1 the label is the motion
  that answers the window; with --offset 0 it is the motion that already moved the car in it. Measured:
  offset 1 right sign 92.3% (mean |error| 1.61), offset 0 86.4% (1.64); both drove road 5 100% (the
  driver eases in, so consecutive frames' motion is alike and a late hand is forgiven here).
- --batch-size 32: with the default 64, 12 epochs of ~1000 windows were too few steps (right sign 65%,
  61.5% on the road); a larger --learning-rate (0.003) was unstable (kept epoch 5, 55% on the road).
- No --mirror (engine-train refuses it with axes); the key model's masks and --shift 8.

Needs TensorFlow (pip install 'engine[train]'); about 90 s: marked slow. Run it alone with
    .venv/bin/python -m pytest tests/test_mouse_e2e.py -s
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from engine.demo.models.drive import drive_model, drive_random_mouse, no_keys_on_road
from engine.demo.models.make_demo_model import axis_spread, build_dataset, record, train

RECORD_SECONDS = 30.0
EPOCHS = 12
BATCH = 32  # see the module docs
PLAY_SECONDS = 15.0
RANDOM_SECONDS = 10.0  # a baseline, reported only: shorter than the model's run
TRAIN_ROAD = 1
PLAY_ROAD = 5  # bends early and often: with no motion the car is on it about a third of the time
AXIS = "mouse_dx=scaled:scale=0.0625:clip=1"  # see the module docs
OFFSET = 1  # see the module docs
# One training at this size can come out weak: a local run on 2026-12-07 validated at right sign 82.0% (the
# measured trainings: 92.3% and 93.8%, 86.4% at --offset 0) and drove road 5 84.6%, under the 85%,
# while each of those drove 100%. So when the first training (seed 0) validates under SIGN_TARGET, a second (seed 1)
# is trained and the one with the better right-sign share on the validation windows plays: a person reading
# the training report would retrain too. engine-train's own validation, no extra drive; ~22 s when it happens.
SIGN_TARGET = 0.88

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("tensorflow", "matplotlib")),
                       reason="engine-train needs TensorFlow and matplotlib: pip install 'engine[train]'"),
]


def _sign_accuracy(model_dir: Path) -> float:
    """engine-train's right-sign share of mouse_dx on the validation windows (its demo_report.json)."""
    report = json.loads((model_dir / "demo_report.json").read_text())
    return float(next(a for a in report["validation_axes"] if a["name"] == "mouse_dx")["sign_accuracy"])


def test_mouse_record_dataset_train_play_keeps_the_car_on_the_road(xvfb, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   record_property) -> None:
    times: dict[str, float] = {}
    t = time.monotonic()
    record(tmp_path / "data", [TRAIN_ROAD], RECORD_SECONDS, mouse=True, quiet=True)
    times["record"] = time.monotonic() - t
    spread = axis_spread(tmp_path / "data")
    assert spread > 1.0, f"the recording holds almost no mouse motion (mouse_dx spread {spread:.2f} counts a frame)"
    t = time.monotonic()
    dataset = build_dataset(tmp_path / "data", tmp_path / "mouse.h5", axis=AXIS, offset=OFFSET, quiet=True)
    times["dataset"] = time.monotonic() - t
    t = time.monotonic()
    trained = []
    for seed in (0, 1):
        out = tmp_path / f"model{seed}"
        print(train(dataset, out, epochs=EPOCHS, seed=seed, mirror=False, extra=("--batch-size", str(BATCH)),
                    quiet=True))
        trained.append((_sign_accuracy(out), out))
        if trained[-1][0] >= SIGN_TARGET:
            break
    times["train"] = time.monotonic() - t
    sign, best = max(trained)
    print(f"trainings: right sign {', '.join(f'{a:.1%}' for a, _ in trained)} on the validation windows; "
          f"playing {best.name} ({sign:.1%})")

    t = time.monotonic()
    model = drive_model(best / "demo.tflite", PLAY_SECONDS, PLAY_ROAD, tmp_path / "play",
                        game_args=("--mouse",))
    times["play"] = time.monotonic() - t
    t = time.monotonic()
    rand = drive_random_mouse(RANDOM_SECONDS, PLAY_ROAD, tmp_path / "play", spread)
    times["random"] = time.monotonic() - t

    print(f"trained model: {model.line()}")
    for line in model.summary:
        print(f"  {line}")
    print(f"random policy: {rand.line()}")
    floor = no_keys_on_road(PLAY_ROAD, model.rows)
    print(f"no motion (the game's simulation, the model's frames): {floor:.1%}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"wall time: {steps}; total {sum(times.values()):.0f} s")
    for key, value in (("trained_on_road", model.on_road), ("random_on_road", rand.on_road),
                       ("no_motion_on_road", floor), ("mouse_dx_spread", spread), ("sign_accuracy", sign),
                       ("trainings", len(trained)),
                       *((f"seconds_{k}", v) for k, v in times.items())):
        record_property(key, round(value, 4))
    assert model.on_road >= 0.85, (f"trained model: {model.line()}; random motion beside it: {rand.line()}; "
                                   f"no motion: {floor:.1%}")
