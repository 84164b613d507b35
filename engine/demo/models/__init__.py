"""The model shipped with the demo game, and the tools that make and score it.

``demo.tflite`` (float32) and ``demo_uint8.tflite`` (full-integer), each with its m.json sidecar, were
trained by ``python -m engine.demo.models.make_demo_model`` (the scripted driver recorded with
engine-record on a virtual display, engine-dataset, engine-train; fixed seeds). They play the demo with
no flags and no TensorFlow: ``engine-play --model <DEMO_MODEL> --window "engine demo"``.
:mod:`engine.demo.models.drive` runs a policy on the game and scores it by the game's own log.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_MODEL = HERE / "demo.tflite"  # float32
DEMO_MODEL_UINT8 = HERE / "demo_uint8.tflite"  # full-integer quantised

__all__ = ["DEMO_MODEL", "DEMO_MODEL_UINT8", "HERE"]
