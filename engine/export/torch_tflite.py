"""to_tflite(): a PyTorch module trained on engine.dataset windows -> a .tflite engine-play runs, checked.

Steps, for a module taking the adapter's layout (:mod:`engine.dataset.torch_adapter`):

1. Wrap it: the exported graph takes engine-play's input tensor ((1, H, W', W*C) for layout "channels",
   (1, W, H, W', C) for "frames"), permutes it to the module layout with
   :func:`~engine.dataset.torch_adapter.to_module_layout` (the one permutation the adapter's training
   tensors are defined by), runs the module in eval mode and, with ``logits`` (the default: PyTorch's
   losses take logits), applies sigmoid (multihot) or softmax (combo), since engine-play's decoder reads
   probabilities against the sidecar's thresholds. With axes (the sidecar's format 2), head by head:
   the keys as said, a softmax over each binned axis' block, a regression axis' value as it is
   (:func:`heads_of`).
2. Trace it with ``torch.export`` here, then convert with litert-torch (why this converter: see the choice
   below) in a process of its own (:mod:`engine.export._convert`: litert-torch starts JAX, which would
   otherwise hook every later ``fork`` of the caller's process, e.g. a DataLoader's workers), to a
   temporary name. The m.json sidecar is the dataset spec's (fps, window, skip, frame size, colour,
   actions, encoding, classes), the layout, scale pixel/255.
3. Check: load the file through engine-play's own :class:`~engine.play.Model` (its sidecar, the runtime play
   picks), feed real dataset windows through play's LUT (:meth:`Model.feed`), invoke, and compare with the
   module's own outputs on the same windows in its training layout. The largest absolute output
   difference must be within ``tolerance`` (float32: 1e-4 by default; the measured difference is ~1e-7) or
   the export is refused (:class:`ExportError`) and nothing is left behind. Then both files move into place.
4. With ``quantize``: ``<stem>_uint8.tflite``, every op in 8-bit integers, calibrated on representative
   training windows (fed through play's input code, as play will), checked the same way against
   ``quantized_tolerance`` (0.5 by default: one output step is 1/256 but rounding compounds layer by layer,
   and on the demo game 8-bit models differ from their float twins by 0.17-0.27 yet drive as well; past 0.5
   a probability can land on the other side of any threshold, and the model is broken, not rounded).
   Its tensors in and out are int8 rather than uint8 (the quantiser has no uint8 interface; with the input
   zero point at -128 the values are uint8's shifted by 128, and engine-play's LUT writes either).

Converter choice (measured on this reference CNN, 4x80x60 rgb, 2-core AMD EPYC; numbers in the README):
litert-torch 0.10 converts in ~4 s with torch 2.13 as installed, its float32 file differs from the module
by ~1e-7 at most and runs in LiteRT (engine-play's first runtime) in ~0.2 ms. onnx2tf 2.x needs Python
>= 3.12; the last release for 3.11 (1.29) pins tensorflow 2.19 and numpy 1.26, which would downgrade the
[train] extra's TensorFlow 2.21 and NumPy 2, and goes through ONNX and a TensorFlow graph (two more
translations, each a place to lose layout or precision). litert-torch needs no TensorFlow; its sibling
ai-edge-quantizer does the 8-bit variant on the .tflite itself.

Errors a user can fix are :class:`ExportError`, one line. Imports torch, litert-torch and, with
``quantize``, ai-edge-quantizer: ``pip install 'engine[torch]'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from engine.axes_spec import blocks
from engine.dataset import DatasetSpec, Windows
from engine.dataset.kernels import scale_lut
from engine.dataset.torch_adapter import TorchLayout, to_module_layout, windows_to_layout
from engine.errors import EngineError
from engine.model import Decoder, Model, ModelError
from engine.model.decode import axes_agree
from engine.sidecar import ModelSidecar, SidecarError

Kind = Literal["float32", "uint8"]

DEFAULT_TOLERANCE = 1e-4  # float32 .tflite vs the module, largest absolute output difference
DEFAULT_QUANTIZED_TOLERANCE = 0.5  # the 8-bit .tflite vs the module
_INSTALL = "pip install 'engine[torch]'"


class ExportError(EngineError):
    """The module cannot be exported, or its .tflite does not match it; one line saying what to do."""


@dataclass(frozen=True)
class Exported:
    """One written .tflite and how it compares with the module it came from, run as engine-play runs it."""

    path: Path
    sidecar: Path
    kind: Kind
    runtime: str  # engine-play's runtime that ran the check
    input_dtype: str
    size_bytes: int
    convert_s: float
    windows: int  # real windows checked
    max_abs_diff: float  # largest |tflite - module| over all outputs of those windows
    tolerance: float
    decisions: float  # share of windows where play's decoder decides the same (keys and axes) as on the module
    invoke_ms: tuple[float, float]  # p50, p99

    def line(self) -> str:
        return (f"{self.path.name}: {self.input_dtype} in, {self.size_bytes / 1024:.0f} KiB, converted in "
                f"{self.convert_s:.1f} s; {self.runtime}: max |tflite - module| {self.max_abs_diff:.2g} "
                f"(tolerance {self.tolerance:g}) and same decisions on {self.decisions:.1%} of {self.windows} "
                f"windows; invoke p50 {self.invoke_ms[0]:.3f} ms p99 {self.invoke_ms[1]:.3f} ms")


Heads = tuple[tuple[int, int, str], ...]  # (start, stop, "sigmoid" | "softmax" | "linear") per output head


def heads_of(sidecar: ModelSidecar, logits: bool) -> Heads:
    """The activation of each part of the output: the keys' sigmoid (multihot) or softmax (combo), then per
    axis a softmax over its bins or nothing (regression); all "linear" when the module gives probabilities."""
    keys = "sigmoid" if sidecar.encoding == "multihot" else "softmax"
    out = [(0, sidecar.key_outputs, keys if logits else "linear")] if sidecar.key_outputs else []
    for a, b in zip(sidecar.axes, blocks(sidecar.axes, sidecar.key_outputs), strict=True):
        out.append((b.start, b.stop, "softmax" if logits and a.binned else "linear"))
    return tuple(out)


def activate(y: torch.Tensor, heads: Heads) -> torch.Tensor:
    """Logits (n, outputs) -> what play reads, head by head (see :func:`heads_of`)."""
    if len(heads) == 1:
        act = heads[0][2]
        return torch.sigmoid(y) if act == "sigmoid" else torch.softmax(y, dim=-1) if act == "softmax" else y
    # Each head padded to the full width and summed, not concatenated: an 8-bit CONCATENATION must give its
    # inputs one scale, and the quantiser pins it to the sigmoid/softmax range [0, 1], which clipped a
    # regression axis' negative values; ADD rescales each input.
    width = heads[-1][1]
    total: torch.Tensor | None = None
    for start, stop, act in heads:
        p = y[:, start:stop]
        p = torch.sigmoid(p) if act == "sigmoid" else torch.softmax(p, dim=-1) if act == "softmax" else p
        p = torch.nn.functional.pad(p, (start, width - stop))
        total = p if total is None else total + p
    assert total is not None
    return total


class _PlayInput(nn.Module):
    """engine-play's input tensor -> module layout -> module -> probabilities (see the module docs)."""

    def __init__(self, module: nn.Module, layout: TorchLayout, heads: Heads) -> None:
        super().__init__()
        self.module, self.layout, self.heads = module, layout, heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(to_module_layout(x, self.layout))
        return activate(y.reshape(1, -1), self.heads)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _sample(source: Windows | np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` uint8 windows (n, W, H, W'[, C]) spread evenly over ``source`` (time order kept)."""
    n = len(source)
    idx = np.unique(np.linspace(0, n - 1, num=min(n, count)).round().astype(np.int64)) if n else np.empty(0, int)
    if isinstance(source, Windows):
        return source.gather(idx)[0]
    return np.asarray(source[idx])


def _window_shape(source: Windows | np.ndarray) -> tuple[int, ...]:
    """(W, H, W'[, C]) of one window of ``source``."""
    if isinstance(source, Windows):
        return (source.spec.window, *source.spec.frame_shape)
    return tuple(int(d) for d in np.shape(source)[1:])


def _module_outputs(wrapped: _PlayInput, windows: np.ndarray, spec: DatasetSpec, batch: int = 64) -> np.ndarray:
    """The module's outputs (n, outputs) on uint8 windows, fed as the adapter feeds it in training (the
    pixel/255 LUT, then :func:`windows_to_layout`), with the export's activation."""
    lut = scale_lut()
    c = 3 if spec.color == "rgb" else 1
    outs = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(windows_to_layout(lut[windows[i : i + batch]], wrapped.layout, c))
            y = activate(wrapped.module(x).reshape(len(x), -1), wrapped.heads)
            outs.append(y.numpy())
    return np.concatenate(outs) if outs else np.empty((0, 0), np.float32)


def _decide(outputs: np.ndarray, spec: ModelSidecar) -> np.ndarray:
    """(n, outputs) -> (n, A) held actions by play's Decoder, reset per row (the windows are independent)."""
    decoder = Decoder(spec)
    out = np.empty((len(outputs), len(spec.actions)), bool)
    for i, row in enumerate(outputs):
        decoder.reset()
        out[i] = decoder.decode(row)
    return out


def _check(path: Path, sidecar: ModelSidecar, windows: np.ndarray, reference: np.ndarray, kind: Kind,
           tolerance: float, convert_s: float, final: Path) -> Exported:
    """Run ``path`` through engine-play's Model on ``windows``; compare with ``reference``; refuse beyond
    ``tolerance``. ``final`` is the name the file will have (for messages and the result)."""
    try:
        model = Model.load(path, sidecar=sidecar)
    except ModelError as e:
        raise ExportError(f"engine-play refuses the exported {final.name}: {e}") from None
    outs, times = model.run_windows(windows)
    diff = float(np.abs(outs - reference).max())
    if not diff <= tolerance:
        raise ExportError(f"{final.name} ({kind}) differs from the module by up to {diff:.3g} on {len(windows)} "
                          f"dataset windows run as engine-play runs it (tolerance {tolerance:g}); not written: "
                          "check the module's input layout and that it is deterministic in eval mode")
    same = ((_decide(outs, model.spec) == _decide(reference, model.spec)).all(axis=1)
            & axes_agree(outs, reference, model.spec).all(axis=1))
    return Exported(
        path=final, sidecar=final.with_suffix(".json"), kind=kind, runtime=model.runtime,
        input_dtype=model.input_dtype.name, size_bytes=path.stat().st_size, convert_s=convert_s,
        windows=len(windows), max_abs_diff=diff, tolerance=tolerance, decisions=float(same.mean()),
        invoke_ms=(float(np.percentile(times, 50) / 1e6), float(np.percentile(times, 99) / 1e6)),
    )


def _convert(wrapped: _PlayInput, sidecar: ModelSidecar, tmp: Path, representative: np.ndarray | None
             ) -> dict[str, float]:
    """torch.export here, then litert-torch (and ai-edge-quantizer with ``representative``) in a process of
    its own (see :mod:`engine.export._convert` for why): writes tmp/float32.tflite (and tmp/uint8.tflite);
    returns the seconds each took."""
    t0 = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.export's notices about its own internals
            program = torch.export.export(wrapped, (torch.zeros(sidecar.input_shape),))
        torch.export.save(program, str(tmp / "program.pt2"))
    except Exception as e:  # torch.export raises many kinds of errors, all about the module's code
        raise ExportError(f"torch.export could not trace the module: {_first_line(e)}; it must run without "
                          "data-dependent Python control flow") from None
    traced = time.monotonic() - t0
    cmd = [sys.executable, "-m", "engine.export._convert", str(tmp / "program.pt2"), str(tmp),
           "--shape", ",".join(map(str, sidecar.input_shape))]
    if representative is not None:
        sidecar.save(tmp / "sidecar.json")
        np.save(tmp / "representative.npy", representative)
        cmd += ["--sidecar", str(tmp / "sidecar.json"), "--representative", str(tmp / "representative.npy")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise ExportError(f"{lines[-1]}; {_INSTALL} if a package is missing")
    timings: dict[str, float] = json.loads((tmp / "timings.json").read_text())
    timings["float32"] += traced
    return timings


def to_tflite(
    module: nn.Module,
    spec: DatasetSpec | Windows,
    out: str | os.PathLike[str] = "m.tflite",
    *,
    windows: Windows | np.ndarray | None = None,
    layout: TorchLayout = "channels",
    logits: bool = True,
    quantize: bool = False,
    representative: Windows | np.ndarray | None = None,
    check_windows: int = 200,
    representative_windows: int = 300,
    tolerance: float = DEFAULT_TOLERANCE,
    quantized_tolerance: float = DEFAULT_QUANTIZED_TOLERANCE,
    thresholds: Sequence[float] | None = None,
    notes: dict[str, Any] | None = None,
) -> list[Exported]:
    """Export ``module`` to ``out`` (.tflite) with its m.json, checked as the module docs say; with
    ``quantize`` also ``<stem>_uint8.tflite`` + .json. Returns what was written (float32 first).

    module: takes float32 windows in ``layout`` (as :func:`engine.dataset.torch_adapter.data_loader` gives
    them) and returns (N, outputs): logits (``logits=True``) or probabilities. spec: the training windows
    (their spec, and then also the check and calibration windows), or a DatasetSpec. windows: real uint8
    windows (n, W, H, W'[, C]) or a Windows for the check (default: ``spec`` when it is a Windows).
    representative: calibration windows (default: ``spec`` when it is a Windows, else ``windows``).
    thresholds: multihot decision thresholds for the sidecar (default 0.5 each). notes: kept in the sidecar
    under "training".

    Raises ExportError (one line): no windows to check against, a conversion failure, or a .tflite that
    engine-play refuses or that differs from the module beyond the tolerance (nothing is written then).
    """
    data_spec = spec.spec if isinstance(spec, Windows) else spec
    if windows is None and isinstance(spec, Windows):
        windows = spec
    if windows is None or len(windows) == 0:
        raise ExportError("to_tflite checks the .tflite on real dataset windows: pass the training Windows as "
                          "spec, or windows=")
    if representative is None:
        representative = spec if isinstance(spec, Windows) else windows
    final = Path(out)
    if final.suffix != ".tflite":
        raise ExportError(f"out {final} must end in .tflite (the sidecar goes beside it as .json)")
    want = (data_spec.window, *data_spec.frame_shape)
    for name, given in (("windows", windows), ("representative", representative)):
        shape = _window_shape(given)
        if shape != want:
            raise ExportError(f"{name} are {shape} per window but the spec says {want} (window, frame shape); "
                              "pass windows cut the way the module was trained")
    try:
        sidecar = data_spec.sidecar(layout)
        changes: dict[str, Any] = {}
        if thresholds is not None:
            changes["thresholds"] = list(thresholds)
        if notes is not None:
            changes["training"] = notes
        if changes:
            sidecar = sidecar.replace(**changes)
    except SidecarError as e:
        raise ExportError(str(e)) from None
    was_training = module.training
    module.eval()
    wrapped = _PlayInput(module, layout, heads_of(sidecar, logits)).eval()
    check = _sample(windows, check_windows)
    try:
        reference = _module_outputs(wrapped, check, data_spec)
        if reference.shape[1] != sidecar.outputs:
            raise ExportError(f"the module gives {reference.shape[1]} outputs per window but the dataset has "
                              f"{sidecar.outputs} {'actions' if sidecar.encoding == 'multihot' else 'classes'}"
                              f"{' and axis outputs' if sidecar.axes else ''}; "
                              "make its last layer that wide")
        final.parent.mkdir(parents=True, exist_ok=True)
        f32_side = sidecar.replace(training={**notes, "quantization": "float32"}) if notes else sidecar
        rep = _sample(representative, representative_windows) if quantize else None
        q8_side = (sidecar.replace(training={**notes, "quantization": "uint8", "representative_windows": len(rep)})
                   if notes and rep is not None else sidecar)
        written: list[Exported] = []
        with tempfile.TemporaryDirectory(prefix=".engine-export-", dir=final.parent) as name:
            tmp = Path(name)
            seconds = _convert(wrapped, f32_side, tmp, rep)
            written.append(_check(tmp / "float32.tflite", f32_side, check, reference, "float32", tolerance,
                                  seconds["float32"], final))
            staged = [(tmp / "float32.tflite", f32_side, final)]
            if rep is not None:
                q8_final = final.with_name(f"{final.stem}_uint8.tflite")
                written.append(_check(tmp / "uint8.tflite", q8_side, check, reference, "uint8", quantized_tolerance,
                                      seconds["uint8"], q8_final))
                staged.append((tmp / "uint8.tflite", q8_side, q8_final))
            for src, side, dst in staged:  # every check passed: the sidecar, then the model beside it
                side.save(dst.with_suffix(".json"))
                os.replace(src, dst)
    except OSError as e:
        raise ExportError(f"cannot write {final}: {e.strerror or e}; check the directory") from None
    except SidecarError as e:
        raise ExportError(str(e)) from None
    finally:
        module.train(was_training)
    return written


__all__ = ["DEFAULT_QUANTIZED_TOLERANCE", "DEFAULT_TOLERANCE", "ExportError", "Exported", "to_tflite"]
