"""train(): the reference CNN in PyTorch, with the options, report and outputs of the Keras trainer.

``engine-train --framework torch`` runs this instead of :func:`engine.train.trainer.train`. Same
:class:`~engine.train.trainer.TrainConfig`, same data (:class:`~engine.train.data.TrainData`), same
augmentations (``mirror``, ``shift``: applied to the NumPy batch before it becomes a tensor), same
seeded batch order, early stopping on the validation loss as Keras computes it, and the same files in
``out_dir``: ``name.tflite`` + .json, ``name_uint8.tflite`` + .json (8-bit: int8 tensors in and out, see
:mod:`engine.export.torch_tflite`), ``name_report.txt``/.json and ``name_curves.png``.

Export goes through :func:`engine.export.to_tflite` (the public API a user of their own module calls):
it refuses a file that differs from the module beyond its tolerance on the validation windows; the report
then checks each file the way the Keras trainer does (:func:`engine.train.check.compare`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine.train.check import compare
from engine.train.data import TrainData
from engine.train.mixed import Layout
from engine.train.report import plot_curves, score
from engine.train.trainer import (
    TrainConfig,
    TrainResult,
    _engine_version,
    _loss_and_accuracy,
    _spread,
    _targets,
    _write_report,
    val_axis_scores,
)


def _tensor(x: np.ndarray) -> Any:
    """TrainData's (n, H, W', W*C) float32 input -> the adapter's "channels" tensor (n, W*C, H, W')."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _probabilities(model: Any, data: TrainData, idx: np.ndarray, batch_size: int, encoding: str) -> np.ndarray:
    """Outputs (n, outputs) as probabilities for validation windows ``idx`` (eval mode, batches); with axes,
    head by head as the exported model gives them (engine.export.torch_tflite.activate)."""
    import torch

    from engine.export.torch_tflite import activate, heads_of

    heads = heads_of(data.sidecar(), logits=True)
    model.eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            logits = model(_tensor(data.input(data.val, idx[i : i + batch_size])))
            chunks.append(activate(logits, heads).numpy())
    return np.concatenate(chunks) if chunks else np.empty((0, data.outputs), np.float32)


def _mixed_loss(layout: Layout) -> Any:
    """The loss of engine.train.mixed on logits: BCE-with-logits (or cross-entropy) for the keys, plus the
    mean over the axes of their bins' cross-entropy or squared error."""
    import torch

    heads, has_keys, n_axes = layout.heads(), bool(layout.keys), max(1, len(layout.axes))

    def loss(logits: Any, target: Any) -> Any:
        total = logits.new_zeros(())
        for i, (start, stop, act) in enumerate(heads):
            z, y = logits[:, start:stop], target[:, start:stop]
            if act == "sigmoid":
                part = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
            elif act == "softmax":
                part = -(y * torch.log_softmax(z, dim=-1)).sum(dim=1).mean()
            else:
                part = torch.mean((z - y) ** 2)
            total = total + (part if (i == 0 and has_keys) else part / n_axes)
        return total

    return loss


def train(
    data: TrainData,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    stream: TextIO | None = None,
    live_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """As :func:`engine.train.trainer.train`, in PyTorch (``config`` None: the defaults). Raises TrainError,
    DatasetError or ExportError (one line) for bad settings, an unwritable ``out_dir`` or an export that
    does not match the module."""
    import torch

    from engine.export import to_tflite
    from engine.train import torch_net
    from engine.train.fit import fit_epochs, prepare

    config = config if config is not None else TrainConfig()
    setup = prepare(data, out_dir, config, log)
    say, out, spec, sidecar, masks = setup.say, setup.out, setup.spec, setup.sidecar, setup.masks

    torch_net.seed_everything(config.seed)
    model = torch_net.build_model(data.input_shape, data.outputs, setup.mask, dense=config.dense,
                                  dropout=config.dropout)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    mixed = data.layout if spec.axes else None  # keys + axes: engine.train.mixed
    loss_fn = (torch.nn.BCEWithLogitsLoss() if spec.encoding == "multihot" else torch.nn.CrossEntropyLoss()
               ) if mixed is None else _mixed_loss(mixed)
    y_train = _targets(data.train.labels, spec.encoding) if mixed is None else data.targets(data.train)
    y_val = np.asarray(data.val.labels)
    t_val = data.targets(data.val) if mixed is not None else None
    val_idx = np.arange(len(data.val), dtype=np.int64)
    h, w, c = data.input_shape
    say(f"training in PyTorch on {len(data.train)} windows, validating on {len(data.val)}: input ({c}, {h}, {w}) "
        f"(frames x channels, H, W), {data.outputs} outputs ({spec.encoding}), {params:,} parameters")

    def train_batch(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        model.train()
        target = torch.from_numpy(np.ascontiguousarray(y))
        optimizer.zero_grad()
        logits = model(_tensor(x))
        loss = loss_fn(logits, target)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            if mixed is not None:  # the same accuracy as validation, on this batch's probabilities
                from engine.export.torch_tflite import activate, heads_of

                p = activate(logits, heads_of(sidecar, logits=True)).numpy()
                return float(loss), mixed.loss_and_accuracy(p, np.asarray(y))[1]
            hit = ((logits >= 0) == (target != 0)) if spec.encoding == "multihot" else logits.argmax(1) == target
        return float(loss), float(hit.float().mean())

    def validate() -> tuple[float, float]:
        out = _probabilities(model, data, val_idx, config.batch_size, spec.encoding)
        if mixed is not None and t_val is not None:
            return mixed.loss_and_accuracy(out, t_val)
        return _loss_and_accuracy(out, y_val, spec.encoding)

    fitted = fit_epochs(data, config, setup, y_train, train_batch=train_batch, validate=validate,
                        keep=lambda: copy.deepcopy(model.state_dict()), restore=model.load_state_dict,
                        stream=stream, live_progress=live_progress)
    history, best_epoch, stop_reason = fitted.history, fitted.best_epoch, fitted.stop_reason

    check_idx = _spread(len(data.val), config.check_windows)
    val_out = _probabilities(model, data, val_idx, config.batch_size, spec.encoding)
    metrics = score(val_out[:, : sidecar.key_outputs], y_val, spec.encoding, spec.actions, spec.classes,
                    sidecar.thresholds or None)
    axes = val_axis_scores(data, val_out, sidecar.key_outputs)

    note = {"engine_train": _engine_version(), "framework": f"torch {torch.__version__}", "seed": config.seed,
            "best_epoch": best_epoch, "epochs_run": len(history), "masks": [list(r) for r in masks],
            "mirror": [f"{a}={b}" for a, b in config.mirror], "shift": config.shift,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    say("exporting .tflite models (float32" + (", uint8)" if config.quantize else ")"))
    windows = data.val.windows(check_idx)
    rep = data.train.windows(_spread(len(data.train), config.representative)) if config.quantize else None
    exported = to_tflite(model, spec, out / f"{config.name}.tflite", windows=windows, representative=rep,
                         quantize=config.quantize, check_windows=len(windows),
                         representative_windows=config.representative, notes=note)
    f32_path = exported[0].path
    u8_path = exported[1].path if config.quantize else None
    agreements = [compare(e.path, windows, val_out[check_idx], reference="PyTorch") for e in exported]
    notes = [f"{a.path.name} decides differently from PyTorch on {1 - a.decisions:.1%} of the checked windows"
             for a in agreements if a.decisions < 0.95]
    notes += [f"{e.path.name}: converted by litert-torch in {e.convert_s:.1f} s" for e in exported[:1]]

    curves = plot_curves(history, out / f"{config.name}_curves.png", best_epoch,
                         f"engine-train {config.name} (PyTorch): {len(data.train)} train / {len(data.val)} val windows")
    result = TrainResult(
        out_dir=out, float32=f32_path, uint8=u8_path, history=history, best_epoch=best_epoch,
        stop_reason=stop_reason, metrics=metrics, agreements=agreements, curves=curves,
        report=out / f"{config.name}_report.txt", elapsed_s=time.monotonic() - setup.t_start,
        data_source=data.source, params=params, notes=notes, framework="PyTorch", axes=axes,
    )
    _write_report(result, config, data)
    return result


__all__ = ["train"]
