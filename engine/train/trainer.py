"""train(): fit the reference CNN on TrainData, keep the best epoch, export, check, report.

Steps, and what lands in ``out_dir`` (``name`` from :class:`TrainConfig`):

1. Seed everything (:func:`engine.train.net.seed_everything`) and build the model for the data's input
   (:mod:`engine.train.net`), with the configured masks inside it (and their mirror images, with
   ``mirror``).
2. Epochs of mini-batches in a seeded shuffled order (with ``mirror``, a random half of each batch
   flipped left-right and its action pairs swapped: :class:`engine.train.data.Mirror`; with ``shift``,
   every window moved sideways by a few pixels: :func:`engine.train.data.shift_batch`). After each
   epoch the validation loss and accuracy are computed on the whole validation part; the weights of the
   epoch with the lowest validation loss are kept, and training stops when it has not improved for
   ``patience`` epochs (early stopping).
3. Export (:mod:`engine.train.tflite`): ``name.tflite`` (float32) and, unless ``quantize`` is off,
   ``name_uint8.tflite`` (full-integer, calibrated on ``representative`` training windows), each with
   its ``.json`` sidecar, so ``engine-play --model name.tflite`` needs no flags.
4. Check (:mod:`engine.train.check`): each .tflite through engine-play's Model against Keras on up to
   ``check_windows`` validation windows: same decisions, largest output difference, invoke times.
5. Report (:mod:`engine.train.report`): ``name_report.txt`` (what :meth:`TrainResult.lines` prints),
   ``name_report.json`` (the numbers), ``name_curves.png`` (loss and accuracy per epoch).

Errors the user can fix are TrainError / DatasetError (one line). TensorFlow is imported in step 1.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine.train.check import Agreement, compare
from engine.train.data import Rect, TrainData, TrainError
from engine.train.mixed import axis_lines, axis_scores
from engine.train.report import Metrics, plot_curves, score

_EPS = 1e-7  # Keras' epsilon: probabilities are clipped to [eps, 1 - eps] in its cross-entropies


@dataclass(frozen=True)
class TrainConfig:
    """How to train. See the module docs; :meth:`validate` raises TrainError for values that cannot work."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 10  # epochs without a better validation loss before stopping (see engine-train --help)
    seed: int = 0
    masks: tuple[Rect, ...] = ()  # frame rectangles the model does not see (mirrored too, with ``mirror``)
    mirror: tuple[tuple[str, str], ...] = ()  # action pairs swapped by horizontal-flip augmentation
    shift: int = 0  # random sideways shifts of up to this many pixels (augmentation; labels unchanged)
    name: str = "model"  # file stem of everything written
    quantize: bool = True  # also export the uint8 model
    representative: int = 300  # training windows that calibrate the uint8 model
    check_windows: int = 1000  # at most this many validation windows in the .tflite checks
    dense: int = 64
    dropout: float = 0.2
    # Start from these weights (a NAME.weights.h5 that engine-train wrote beside NAME.tflite) instead of
    # random ones: fine-tuning on corrections. The network must be the same shape.
    finetune: Path | None = None

    def validate(self) -> None:
        for key in ("epochs", "batch_size", "patience", "representative", "check_windows", "dense"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TrainError(f"{key} must be an integer >= 1, got {v!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise TrainError(f"learning rate must be a positive number, got {self.learning_rate}")
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or self.shift < 0:
            raise TrainError(f"shift must be an integer >= 0, got {self.shift!r}")
        if not 0 <= self.dropout < 1:
            raise TrainError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.finetune is not None and not Path(self.finetune).is_file():
            raise TrainError(f"--finetune {self.finetune} does not exist; give the NAME.weights.h5 engine-train "
                             "wrote beside NAME.tflite")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise TrainError(f"name {self.name!r} must be a plain file stem like 'model'")


@dataclass
class TrainResult:
    """What :func:`train` did and wrote."""

    out_dir: Path
    float32: Path
    uint8: Path | None
    history: list[dict[str, float]]  # per epoch: loss, accuracy, val_loss, val_accuracy, seconds
    best_epoch: int  # 1-based
    stop_reason: str
    metrics: Metrics  # Keras model at the kept epoch, on the validation part
    agreements: list[Agreement]
    curves: Path
    report: Path
    elapsed_s: float
    data_source: str
    params: int
    notes: list[str] = field(default_factory=list)
    framework: str = "Keras"  # what trained it: "Keras" (engine.train.trainer) or "PyTorch" (torch_trainer)
    start_from: str = "random weights (trained from scratch)"
    weights: Path | None = None  # NAME.weights.h5, for engine-train --finetune
    axes: list[dict[str, Any]] = field(default_factory=list)  # per axis validation scores (engine.train.mixed)

    def lines(self) -> list[str]:
        """The final report, as printed and written to ``name_report.txt``."""
        last = self.history[self.best_epoch - 1]
        out = [
            f"data: {self.data_source}",
            f"started from {self.start_from}",
            f"model: reference CNN{'' if self.framework == 'Keras' else ' in ' + self.framework}, "
            f"{self.params:,} parameters; {len(self.history)} epochs in {self.elapsed_s:.1f} s "
            f"({self.stop_reason}); kept epoch {self.best_epoch}: val loss {last['val_loss']:.4f}, "
            f"val accuracy {last['val_accuracy']:.1%}",
            *self.metrics.lines(),
            *axis_lines(self.axes),
            f"exported (checked through engine-play's Model against {self.framework} on validation windows):",
            *(f"  {a.line()}" for a in self.agreements),
            *(f"note: {n}" for n in self.notes),
            f"curves: {self.curves}",
            f"play: engine-play --model {self.float32} --window TITLE",
            *([f"fine-tune later: engine-train --finetune {self.weights} ..."] if self.weights else []),
        ]
        return out


def _loss_and_accuracy(outputs: np.ndarray, labels: np.ndarray, encoding: str) -> tuple[float, float]:
    """Validation loss and accuracy as Keras computes them for the compiled loss and metric."""
    p = np.clip(outputs.astype(np.float64), _EPS, 1 - _EPS)
    if encoding == "multihot":
        y = labels.astype(np.float64)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        acc = np.mean((outputs >= 0.5) == (labels != 0))
    else:
        loss = -np.mean(np.log(p[np.arange(len(labels)), labels]))
        acc = np.mean(np.argmax(outputs, axis=1) == labels)
    return float(loss), float(acc)


def _targets(labels: np.ndarray, encoding: str) -> np.ndarray:
    return labels.astype(np.float32) if encoding == "multihot" else labels.astype(np.int64)


def _spread(n: int, k: int) -> np.ndarray:
    """min(n, k) indices spread evenly over range(n): a sample that covers a whole session in time order."""
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(np.int64))


def _predict_val(model: Any, data: TrainData, idx: np.ndarray, batch_size: int) -> np.ndarray:
    """Model outputs (n, outputs) for validation windows ``idx``, in batches (dropout off)."""
    chunks = [np.asarray(model.predict_on_batch(data.input(data.val, idx[i : i + batch_size])))
              for i in range(0, len(idx), batch_size)]
    return np.concatenate(chunks) if chunks else np.empty((0, data.outputs), np.float32)


def train(
    data: TrainData,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    stream: TextIO | None = None,
    live_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, export, check and report as the module docs say; return what was done.

    stream: where the per-epoch progress goes (default stderr; a live bar only on a terminal unless
    ``live_progress`` says otherwise). log: called with each status line (default: print to stdout).
    Raises TrainError / DatasetError (one line) for bad settings or an unwritable ``out_dir``.
    """
    from engine.train import net, tflite
    from engine.train.fit import fit_epochs, prepare

    setup = prepare(data, out_dir, config, log)
    say, out, spec, sidecar, masks = setup.say, setup.out, setup.spec, setup.sidecar, setup.masks

    net.seed_everything(config.seed)
    mixed = data.layout if spec.axes else None  # keys + axes: engine.train.mixed
    model = net.build_model(data.input_shape, data.outputs, spec.encoding, setup.mask, dense=config.dense,
                            dropout=config.dropout, heads=mixed.heads() if mixed is not None else None)
    net.compile_model(model, spec.encoding, config.learning_rate, mixed)
    start_from = "random weights (trained from scratch)"
    if config.finetune is not None:
        try:
            with warnings.catch_warnings():  # as for save_weights below
                warnings.simplefilter("ignore", DeprecationWarning)
                # The file holds the optimizer's state too (Adam's moments): build it so that it loads.
                model.optimizer.build(model.trainable_variables)
                model.load_weights(str(config.finetune))
                model.optimizer.learning_rate = config.learning_rate  # the file's would win otherwise
        except (OSError, ValueError) as e:
            raise TrainError(f"cannot fine-tune from {config.finetune}: {str(e).splitlines()[0]}; give the "
                             "NAME.weights.h5 engine-train wrote for the same window, frame size and actions") from None
        start_from = f"the weights of {config.finetune} (fine-tuned)"
    params = int(model.count_params())
    y_train = _targets(data.train.labels, spec.encoding) if mixed is None else data.targets(data.train)
    y_val = np.asarray(data.val.labels)
    t_val = data.targets(data.val) if mixed is not None else None
    val_idx = np.arange(len(data.val), dtype=np.int64)
    say(f"training on {len(data.train)} windows, validating on {len(data.val)}: input {data.input_shape} "
        f"(H, W, frames x channels), {data.outputs} outputs ({spec.encoding}"
        f"{''.join(f', {a.name} {a.encoding} {a.size}' for a in spec.axes)}), {params:,} parameters, "
        f"starting from {start_from}")

    def train_batch(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        logs = model.train_on_batch(x, y, return_dict=True)
        return float(logs["loss"]), float(logs["accuracy"])

    def validate() -> tuple[float, float]:
        out = _predict_val(model, data, val_idx, config.batch_size)
        if mixed is not None and t_val is not None:
            return mixed.loss_and_accuracy(out, t_val)
        return _loss_and_accuracy(out, y_val, spec.encoding)

    fitted = fit_epochs(data, config, setup, y_train, train_batch=train_batch, validate=validate,
                        keep=model.get_weights, restore=model.set_weights, stream=stream,
                        live_progress=live_progress)
    history, best_epoch, stop_reason = fitted.history, fitted.best_epoch, fitted.stop_reason

    # Report on the kept weights; the same outputs are what the exported models are checked against.
    check_idx = _spread(len(data.val), config.check_windows)
    val_out = _predict_val(model, data, val_idx, config.batch_size)
    metrics = score(val_out[:, : sidecar.key_outputs], y_val, spec.encoding, spec.actions, spec.classes,
                    sidecar.thresholds or None)
    axes = val_axis_scores(data, val_out, sidecar.key_outputs)

    note = {"engine_train": _engine_version(), "seed": config.seed, "best_epoch": best_epoch,
            "epochs_run": len(history), "masks": [list(r) for r in masks],
            "mirror": [f"{a}={b}" for a, b in config.mirror], "shift": config.shift,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    weights_path = out / f"{config.name}.weights.h5"  # what --finetune starts from next time
    with warnings.catch_warnings():  # Keras' h5 writer trips NumPy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save_weights(str(weights_path))
    say("exporting .tflite models (float32" + (", uint8)" if config.quantize else ")"))
    f32_path, _ = tflite.write_model(tflite.convert(model), out / f"{config.name}.tflite",
                                     sidecar.replace(training={**note, "quantization": "float32"}))
    u8_path: Path | None = None
    if config.quantize:
        rep_idx = _spread(len(data.train), config.representative)
        rep = data.input(data.train, rep_idx)
        u8_path, _ = tflite.write_model(tflite.convert(model, tflite.representative_windows(rep)),
                                        out / f"{config.name}_uint8.tflite",
                                        sidecar.replace(training={**note, "quantization": "uint8",
                                                                  "representative_windows": len(rep_idx)}))
    windows = data.val.windows(check_idx)
    agreements = [compare(p, windows, val_out[check_idx]) for p in (f32_path, u8_path) if p is not None]
    notes = [f"{a.path.name} decides differently from Keras on {1 - a.decisions:.1%} of the checked windows"
             for a in agreements if a.decisions < 0.95]

    curves = plot_curves(history, out / f"{config.name}_curves.png", best_epoch,
                         f"engine-train {config.name}: {len(data.train)} train / {len(data.val)} val windows")
    result = TrainResult(
        out_dir=out, float32=f32_path, uint8=u8_path, history=history, best_epoch=best_epoch,
        stop_reason=stop_reason, metrics=metrics, agreements=agreements, curves=curves,
        report=out / f"{config.name}_report.txt", elapsed_s=time.monotonic() - setup.t_start,
        data_source=data.source, params=params, notes=notes, start_from=start_from, weights=weights_path,
        axes=axes,
    )
    _write_report(result, config, data)
    return result


def val_axis_scores(data: TrainData, val_out: np.ndarray, key_outputs: int) -> list[dict[str, Any]]:
    """Per-axis validation scores of outputs on the whole validation part ([] without axes)."""
    if not data.spec.axes or data.val.axes is None or data.val.axis_values is None:
        return []
    return axis_scores(val_out, data.val.axis_values, data.val.axes, data.spec.axes, key_outputs)


def _engine_version() -> str:
    from engine import __version__

    return str(__version__)


def _write_report(result: TrainResult, config: TrainConfig, data: TrainData) -> None:
    doc = {
        "config": {**asdict(config), "finetune": str(config.finetune) if config.finetune else None},
        "data": {"source": data.source, "train": len(data.train), "val": len(data.val),
                 "spec": data.spec.with_(sources=()).to_dict()},
        "params": result.params,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "validation": result.metrics.to_dict(),
        **({"validation_axes": result.axes} if result.axes else {}),
        "exports": [{"path": str(a.path), "runtime": a.runtime, "input_dtype": a.input_dtype,
                     "size_bytes": a.size_bytes, "windows": a.windows, "same_decisions": a.decisions,
                     "per_action": list(a.per_action), "max_output_diff": a.max_output_diff,
                     "invoke_ms_p50": a.invoke_ms[0], "invoke_ms_p99": a.invoke_ms[1]} for a in result.agreements],
        "elapsed_s": result.elapsed_s,
    }
    try:
        result.report.write_text("\n".join(result.lines()) + "\n", encoding="utf-8")
        result.report.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise TrainError(f"cannot write {result.report}: {e.strerror or e}; check the --out directory") from None


__all__ = ["TrainConfig", "TrainResult", "train"]
