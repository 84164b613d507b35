"""The converter process behind :func:`engine.export.to_tflite` (``python -m engine.export._convert``).

    python -m engine.export._convert PROGRAM.pt2 OUT_DIR --shape 1,H,W,C [--sidecar M.json --representative R.npy]

Reads a saved ``torch.export`` program (engine-play's input -> probabilities), writes OUT_DIR/float32.tflite
with litert-torch and, given a sidecar and uint8 representative windows, OUT_DIR/uint8.tflite with
ai-edge-quantizer, calibrated on those windows fed through engine-play's own input code. Writes
OUT_DIR/timings.json. Exit 0, or 2 with one line on stderr.

Why a process of its own: litert-torch lowers through JAX, and once JAX has started its runtime it hooks
``os.fork`` for the rest of the process, warning (and risking a deadlock) at every fork after: a
DataLoader with workers, or anything else that forks, in the caller's process. The converters' progress
bars and MLIR lines stay in this process's captured output too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def convert(program: Path, out_dir: Path, shape: tuple[int, ...]) -> float:
    """litert-torch: program -> out_dir/float32.tflite; returns seconds."""
    import torch

    t0 = time.monotonic()
    try:
        import litert_torch
    except ImportError as e:
        raise SystemExit(f"to_tflite needs litert-torch ({_first_line(e)}); pip install 'engine[torch]'") from None
    exported = torch.export.load(str(program))
    try:
        litert_torch.convert(exported.module(), (torch.zeros(shape),)).export(str(out_dir / "float32.tflite"))
    except Exception as e:  # the converter raises whatever its passes raise
        raise SystemExit(f"litert-torch could not convert the module: {_first_line(e)}") from None
    return time.monotonic() - t0


def quantize(out_dir: Path, sidecar: Path, representative: Path) -> float:
    """ai-edge-quantizer, static 8-bit weights and activations: out_dir/float32.tflite -> uint8.tflite."""
    import numpy as np

    from engine.model import Model, load_interpreter
    from engine.sidecar import ModelSidecar

    t0 = time.monotonic()
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError as e:
        raise SystemExit(f"the 8-bit export needs ai-edge-quantizer ({_first_line(e)}); "
                         "pip install 'engine[torch]'") from None
    float_path = out_dir / "float32.tflite"
    model = Model.load(float_path, sidecar=ModelSidecar.load(sidecar))
    interpreter, _ = load_interpreter(float_path)
    ((name, io),) = interpreter.get_signature_list().items()  # the one signature litert-torch writes
    (arg,) = io["inputs"]
    calibration = {name: [{arg: model.prepare(w)} for w in np.load(representative)]}
    try:
        q = quantizer.Quantizer(str(float_path))
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        qsvs = q.calibrate(calibration)
        if model.spec.axes:
            _widen_output(qsvs, interpreter, model, np.load(representative))
        q.quantize(qsvs).export_model(str(out_dir / "uint8.tflite"), overwrite=True)
    except Exception as e:
        raise SystemExit(f"ai-edge-quantizer could not quantise the model: {_first_line(e)}") from None
    return time.monotonic() - t0


def _widen_output(qsvs: dict[str, Any], interpreter: Any, model: Any, windows: Any) -> None:
    """Set the output tensor's calibrated range to the true min and max over the representative windows.

    The calibrator keeps a moving average of each window's min and max; the key and bin columns of the
    output are probabilities whose range every window spans, but a regression axis' value (a stick, a
    clipped mouse motion) reaches its extremes in few windows, so the averaged range clipped it (a model of
    keys alone keeps the calibrator's range: its exports do not change)."""
    import numpy as np

    name = interpreter.get_output_details()[0]["name"]
    if name not in qsvs:
        return
    outs, _ = model.run_windows(windows)
    qsvs[name]["min"] = np.minimum(qsvs[name]["min"], np.float32(outs.min()))
    qsvs[name]["max"] = np.maximum(qsvs[name]["max"], np.float32(outs.max()))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.export._convert")
    p.add_argument("program", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--shape", required=True, type=lambda t: tuple(int(d) for d in t.split(",")))
    p.add_argument("--sidecar", type=Path)
    p.add_argument("--representative", type=Path)
    ns = p.parse_args(argv)
    warnings.simplefilter("ignore")  # the converters' notices about torch and TF internals: not the caller's
    try:
        timings = {"float32": convert(ns.program, ns.out_dir, ns.shape)}
        if ns.representative is not None:
            timings["uint8"] = quantize(ns.out_dir, ns.sidecar, ns.representative)
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        return 2
    (ns.out_dir / "timings.json").write_text(json.dumps(timings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
