"""End to end on the demo game, every step through the real command line, as a user runs it:
engine-record the scripted driver for 40 s at 40x30 (in the demo's crosswind, ``engine-demo --gusts``, so the
recording holds recoveries from far off the line: see engine.demo.models.make_demo_model), engine-dataset
build, then engine-train twice on that dataset, with Keras and with ``--framework torch`` (the reference CNN
in PyTorch, exported by engine.export.to_tflite); each model drives a fresh game (calm, no gusts) through
engine-play on a road it was not trained on for 15 s. The game's own log says how often the car was on the
road; the floor beside it is the same frames with no key pressed, from the game's own simulation.

The two trainers share one recording and one dataset (a module fixture): recording is real time, and the
recording is not what either test is about. The frames are 40x30 (the 320x240 window area-resized by 8;
the demo model ships at 80x60): a quarter of the pixels to train on, and the road and the car still show
(tests/test_dagger.py drives a crosswind at this size). Needs TensorFlow (pip install 'engine[train]') and, for the
second test, the [torch] extra; takes a few minutes: marked slow. Run it alone with
    .venv/bin/python -m pytest tests/test_e2e.py -s
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.demo.game import WINDOW_TITLE
from engine.demo.models.drive import DemoGame, DriveResult, drive_model, no_keys_on_road
from engine.demo.models.make_demo_model import COLOR, FPS, FRAME_SIZE, GAME, NAME, SHIFT, build_dataset, demo_masks
from engine.demo.sim import ACTIONS

# Sizes cut to keep make test under 15 min (was: 60 s recorded for Keras and 40 s for PyTorch, 80x60, 30 and
# 8 epochs, 20 s of play, and a random-keys policy driven beside the model but asserted on nothing). Not
# shorter: from 30 s recorded (10 epochs) a PyTorch model drove 81.9%; from these 40 s, 99-100%.
RECORD_SECONDS = 40.0
PLAY_SECONDS = 15.0  # road 5 bends early and often: the car without keys leaves it within 1.5 s
SIZE = (40, 30)
KERAS_EPOCHS = 12  # of 30 (early stopping)
TORCH_EPOCHS = 10  # with 6 (at 80x60) one PyTorch run never learnt to steer left (README); 8 drove 100%
# Both trainers at 40x30: batch 32 (twice the steps of the default 64 in each epoch, in about the same time).
# PyTorch with 64 and 8 epochs: one CI run drove 78.7% (two earlier runs 97.4% and 99.0%). Keras with 64 and
# 12 epochs: one CI run drove 78.9% (val loss 0.44); with 32, val loss 0.37-0.39 in two runs, both 100%.
BATCH = 32
TRAIN_ROAD = 1
PLAY_ROAD = 5  # bends early and often: with no keys the car is on it a third of the time


def _missing(*modules: str) -> bool:
    return any(importlib.util.find_spec(m) is None for m in modules)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(xvfb, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:  # type: ignore[no-untyped-def]
    """The recording and its dataset (engine-record, engine-dataset build), made once for both trainers;
    with the wall time of each step."""
    base = tmp_path_factory.mktemp("e2e")
    times: dict[str, float] = {}
    t = time.monotonic()
    with DemoGame(base / "game-record.csv", TRAIN_ROAD, "--autodrive", "--gusts"):
        _cli("engine.cli.record", "--window", WINDOW_TITLE, "--fps", str(FPS), "--size", f"{SIZE[0]}x{SIZE[1]}",
             "--color", COLOR, "--actions", ",".join(ACTIONS), "--game", GAME, "--name", f"{GAME}-seed{TRAIN_ROAD}",
             "--duration", f"{RECORD_SECONDS:g}", "--countdown", "0", "--data-dir", str(base / "data"))
    times["record"] = time.monotonic() - t
    t = time.monotonic()
    out = build_dataset(base / "data", base / "demo.h5", quiet=True)
    times["dataset"] = time.monotonic() - t
    return out, times


def _cli(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    assert done.returncode == 0, f"{module}: {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout


def _train(data: Path, out: Path, *extra: str, epochs: int) -> str:
    """engine-train with the demo model's settings (make_demo_model: masks, mirror, shift) at SIZE."""
    masks = [a for r in demo_masks(SIZE) for a in ("--mask", ",".join(map(str, r)))]
    shift = SHIFT * SIZE[0] // FRAME_SIZE[0]
    return _cli("engine.cli.train", *extra, "--data", str(data), *masks, "--mirror", "left=right", "--shift",
                str(shift), "--epochs", str(epochs), "--seed", "0", "--name", NAME, "--out", str(out), "--no-progress")


def _check_drive(model: DriveResult, times: dict[str, float], record_property) -> None:  # type: ignore[no-untyped-def]
    print(f"trained model: {model.line()}")
    for line in model.summary:
        print(f"  {line}")
    floor = no_keys_on_road(PLAY_ROAD, model.rows)
    print(f"no keys (the game's simulation, the model's frames): {floor:.1%}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"wall time: {steps}; total {sum(times.values()):.0f} s")
    # The prints of a passing test are not shown (-ra lists only what did not pass): the scores also go into
    # the test report's properties (JUnit XML <property>, CI's test view) and into the failure message.
    for key, value in (("trained_on_road", model.on_road), ("no_keys_on_road", floor),
                       *((f"seconds_{k}", v) for k, v in times.items())):
        record_property(key, round(value, 4))
    assert model.on_road >= 0.85, f"trained model: {model.line()}; no keys on the same frames: {floor:.1%}"


@pytest.mark.skipif(_missing("tensorflow", "matplotlib"),
                    reason="engine-train needs TensorFlow and matplotlib: pip install 'engine[train]'")
def test_record_dataset_train_play_keeps_the_car_on_the_road(dataset, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             record_property) -> None:
    data, times = dataset[0], dict(dataset[1])
    t = time.monotonic()
    report = _train(data, tmp_path / "model", "--batch-size", str(BATCH), epochs=KERAS_EPOCHS)
    times["train"] = time.monotonic() - t
    print(report)
    t = time.monotonic()
    model = drive_model(tmp_path / "model" / "demo.tflite", PLAY_SECONDS, PLAY_ROAD, tmp_path / "play")
    times["play"] = time.monotonic() - t
    _check_drive(model, times, record_property)


@pytest.mark.skipif(_missing("torch", "litert_torch", "ai_edge_quantizer", "matplotlib"),
                    reason="engine-train --framework torch needs the [torch] extra: pip install 'engine[torch]'")
def test_torch_trained_model_keeps_the_car_on_an_unseen_road(dataset, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              record_property) -> None:
    data, times = dataset[0], dict(dataset[1])
    t = time.monotonic()
    report = _train(data, tmp_path / "model", "--framework", "torch", "--batch-size", str(BATCH),
                    epochs=TORCH_EPOCHS)
    times["train"] = time.monotonic() - t
    print(report)

    model_dir = tmp_path / "model"
    assert sorted(p.name for p in model_dir.iterdir() if p.suffix in (".tflite", ".json")) == [
        "demo.json", "demo.tflite", "demo_report.json", "demo_uint8.json", "demo_uint8.tflite"]
    report = json.loads((model_dir / "demo_report.json").read_text())
    assert [e["input_dtype"] for e in report["exports"]] == ["float32", "int8"]
    side = json.loads((model_dir / "demo.json").read_text())
    assert side["layout"] == "channels" and side["training"]["framework"].startswith("torch")

    t = time.monotonic()
    model = drive_model(model_dir / "demo.tflite", PLAY_SECONDS, PLAY_ROAD, tmp_path / "play")
    times["play"] = time.monotonic() - t
    _check_drive(model, times, record_property)
