"""End to end on the demo game, every step through the real command line, as a user runs it:
engine-record the scripted driver for 60 s (in the demo's crosswind, ``engine-demo --gusts``, so the
recording holds recoveries from far off the line: see engine.demo.models.make_demo_model), engine-dataset
build, engine-train, then engine-play drives a fresh game (calm, no gusts) on a road it was not trained
on for 30 s. The game's own log says how often the car was on the road; a random-keys policy is measured
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
PLAY_SECONDS = 30.0
TRAIN_ROAD = 1
PLAY_ROAD = 5  # bends early and often: with no keys the car is on it a third of the time

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("tensorflow", "matplotlib")),
                       reason="engine-train needs TensorFlow and matplotlib: pip install 'engine[train]'"),
]


def test_record_dataset_train_play_keeps_the_car_on_the_road(xvfb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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
    print(f"no keys (the game's simulation, the model's frames): {no_keys_on_road(PLAY_ROAD, model.rows):.1%}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"wall time: {steps}; total {sum(times.values()):.0f} s")
    assert model.on_road >= 0.85, model.line()
