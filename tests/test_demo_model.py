"""The model shipped with the demo game: it loads without TensorFlow, fits the demo's capture spec, and
drives the real game on Xvfb through the real engine-play command, on a road it was not trained on,
better than not pressing any key on the same road."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.demo.game import DEFAULT_SIZE
from engine.demo.models import DEMO_MODEL, DEMO_MODEL_UINT8
from engine.demo.models.drive import drive_model, no_keys_on_road
from engine.demo.models.make_demo_model import COLOR, FPS, FRAME_SIZE, demo_masks
from engine.demo.sim import ACTIONS
from engine.model.model import Model
from engine.train.data import mirrored_rects

MODELS = (DEMO_MODEL, DEMO_MODEL_UINT8)
ROAD = 5  # the recordings were made on roads 1 and 2; with no keys the car leaves road 5 within 1.5 s
SECONDS = 8.0


def test_shipped_files_are_package_data_and_small() -> None:
    for m in MODELS:
        assert m.is_file() and m.with_suffix(".json").is_file(), m
    total = sum(p.stat().st_size for m in MODELS for p in (m, m.with_suffix(".json")))
    print(f"shipped model files: {total / 1024:.0f} KiB "
          f"({', '.join(f'{m.name} {m.stat().st_size / 1024:.0f} KiB' for m in MODELS)})")
    assert total < 450 * 1024


def test_loads_with_the_play_runtime_and_no_tensorflow() -> None:
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from engine.demo.models import DEMO_MODEL, DEMO_MODEL_UINT8\n"
        "from engine.model.model import Model\n"
        "for p in (DEMO_MODEL, DEMO_MODEL_UINT8):\n"
        "    m = Model.load(p)\n"
        "    print(p.name, m.runtime, m.input_dtype.name, m.sidecar_path.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["demo.tflite ai_edge_litert float32 demo.json",
                                           "demo_uint8.tflite ai_edge_litert uint8 demo_uint8.json"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_fits_the_demo_capture_spec(path: Path) -> None:
    m = Model.load(path)
    s = m.spec
    assert s.actions == ACTIONS and s.fps == FPS and s.color == COLOR and s.frame_size == FRAME_SIZE
    # The frame is the demo window area-resized by a whole factor: what engine-record --size stores and
    # engine-play captures.
    factor = DEFAULT_SIZE[0] // FRAME_SIZE[0]
    assert (FRAME_SIZE[0] * factor, FRAME_SIZE[1] * factor) == DEFAULT_SIZE
    assert s.encoding == "multihot" and s.layout == "channels" and s.history == 0
    assert s.extra["training"]["masks"] == [list(r) for r in mirrored_rects(demo_masks(), FRAME_SIZE)]
    x = np.zeros((s.window, s.height, s.width, s.channels), np.uint8)
    out = m.predict(x)
    assert out.shape == (3,) and np.all((out >= 0) & (out <= 1))


def test_drives_the_demo_game_better_than_no_keys(xvfb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # No keys on the same road is the game's own simulation over the model's frames (no_keys_on_road: the
    # Sim is deterministic, so driving a game with no key for 8 s, as this test once did, gives the same).
    for path in MODELS:
        r = drive_model(path, SECONDS, ROAD, tmp_path)
        floor = no_keys_on_road(ROAD, r.rows)
        print(f"{r.line()}; no keys on the same frames: {floor:.1%}")
        for line in r.summary:
            print(f"  {line}")
        # A broken model (no keys, wrong keys, stuck keys) leaves this road as soon as it bends.
        assert r.on_road >= 0.75 and r.on_road >= floor + 0.3, r.line()
