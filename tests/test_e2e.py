"""End to end on the demo game, every step through the real command line, as a user runs it:
engine-record the scripted driver for 60 s (in the demo's crosswind, ``engine-demo --gusts``, so the
recording holds recoveries from far off the line: see engine.demo.models.make_demo_model), engine-dataset
build, engine-train, then engine-play drives a fresh game (calm, no gusts) on a road it was not trained
on for 20 s. The game's own log says how often the car was on the road; a random-keys policy is measured
on the same road beside it.

Needs TensorFlow (pip install 'engine[train]') and takes a few minutes: marked slow. Run it alone with
    .venv/bin/python -m pytest tests/test_e2e.py -s
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from engine.demo.models.drive import drive_model, drive_random, no_keys_on_road
from engine.demo.models.make_demo_model import build_dataset, label_rates, record, train

RECORD_SECONDS = 60.0
PLAY_SECONDS = 20.0  # was 30; cut to keep make test under 15 min (road 5 bends early and often)
TRAIN_ROAD = 1
PLAY_ROAD = 5  # bends early and often: with no keys the car is on it a third of the time

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("tensorflow", "matplotlib")),
                       reason="engine-train needs TensorFlow and matplotlib: pip install 'engine[train]'"),
]


def test_record_dataset_train_play_keeps_the_car_on_the_road(xvfb, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             record_property) -> None:
    times: dict[str, float] = {}
    t = time.monotonic()
    record(tmp_path / "data", [TRAIN_ROAD], RECORD_SECONDS, quiet=True)
    times["record"] = time.monotonic() - t
    t = time.monotonic()
    dataset = build_dataset(tmp_path / "data", tmp_path / "demo.h5", quiet=True)
    times["dataset"] = time.monotonic() - t
    t = time.monotonic()
    report = train(dataset, tmp_path / "model", quiet=True)
    times["train"] = time.monotonic() - t
    print(report)

    t = time.monotonic()
    model = drive_model(tmp_path / "model" / "demo.tflite", PLAY_SECONDS, PLAY_ROAD, tmp_path / "play")
    times["play"] = time.monotonic() - t
    t = time.monotonic()
    rates = label_rates(tmp_path / "data")
    rand = drive_random(PLAY_SECONDS, PLAY_ROAD, tmp_path / "play", rates)
    times["random"] = time.monotonic() - t

    print(f"trained model: {model.line()}")
    for line in model.summary:
        print(f"  {line}")
    print(f"random policy: {rand.line()}")
    floor = no_keys_on_road(PLAY_ROAD, model.rows)
    print(f"no keys (the game's simulation, the model's frames): {floor:.1%}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"wall time: {steps}; total {sum(times.values()):.0f} s")
    # The prints of a passing test are not shown (-ra lists only what did not pass): the scores also go into
    # the test report's properties (JUnit XML <property>, CI's test view) and into the failure message.
    for key, value in (("trained_on_road", model.on_road), ("random_on_road", rand.on_road),
                       ("no_keys_on_road", floor), *((f"seconds_{k}", v) for k, v in times.items())):
        record_property(key, round(value, 4))
    assert model.on_road >= 0.85, (f"trained model: {model.line()}; random policy beside it: {rand.line()}; "
                                   f"no keys: {floor:.1%}")
