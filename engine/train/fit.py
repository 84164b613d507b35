"""What both trainers (Keras: engine.train.trainer, PyTorch: engine.train.torch_trainer) do the same way:
the run's setup (output directory, mirror, masks) and the epoch loop (a reproducible shuffle per epoch,
augmentation, progress, validation, early stopping on the validation loss, the best epoch's weights
kept). The framework only supplies how one batch is trained, how validation outputs are computed, and
how weights are saved and restored.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from engine.train.data import Mirror, Rect, TrainData, TrainError, mask_array, mirrored_rects, shift_batch
from engine.train.progress import EpochProgress

if TYPE_CHECKING:
    from engine.dataset.spec import DatasetSpec
    from engine.sidecar import ModelSidecar
    from engine.train.trainer import TrainConfig


@dataclass
class Setup:
    """One training run's fixed parts, made by :func:`prepare`."""

    say: Callable[[str], None]
    out: Path
    spec: DatasetSpec
    sidecar: ModelSidecar
    mirror: Mirror | None
    masks: tuple[Rect, ...]
    mask: np.ndarray | None  # the input mask the model multiplies by (0 on masked parts); None: no mask
    t_start: float = field(default_factory=time.monotonic)


def prepare(data: TrainData, out_dir: str | Path, config: TrainConfig,
            log: Callable[[str], None] | None) -> Setup:
    """Check the config, create ``out_dir`` (TrainError, one line, when it cannot be), build the mirror and
    the mask (mirrored too when mirroring, so a masked part stays masked in the flipped frames)."""
    config.validate()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"cannot create {out}: {e.strerror or e}; pick another --out") from None
    spec, sidecar = data.spec, data.sidecar()
    mirror = Mirror.build(config.mirror, spec) if config.mirror else None
    masks = mirrored_rects(config.masks, sidecar.frame_size) if mirror is not None else tuple(config.masks)
    return Setup(say=log if log is not None else print, out=out, spec=spec, sidecar=sidecar, mirror=mirror,
                 masks=masks, mask=mask_array(masks, sidecar.frame_size))


@dataclass
class Fitted:
    history: list[dict[str, float]]  # per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds
    best_epoch: int
    stop_reason: str


def fit_epochs(
    data: TrainData,
    config: TrainConfig,
    setup: Setup,
    y_train: np.ndarray,
    *,
    train_batch: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
    validate: Callable[[], tuple[float, float]],
    keep: Callable[[], Any],
    restore: Callable[[Any], None],
    stream: TextIO | None = None,
    live_progress: bool | None = None,
) -> Fitted:
    """Train up to config.epochs; stop early after config.patience epochs without a better validation loss;
    restore the best epoch's weights. train_batch(x, y) -> (loss, accuracy) of that batch; validate() ->
    (val_loss, val_accuracy); keep() returns the weights, restore(weights) puts them back."""
    progress = EpochProgress(stream if stream is not None else sys.stderr, config.epochs, live_progress)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best, stale = math.inf, 0, None, 0
    stop_reason = f"all {config.epochs} epochs"
    for epoch in range(1, config.epochs + 1):
        t0 = time.monotonic()
        # A new order every epoch, reproducible from (seed, epoch).
        batches = data.train.batches(config.batch_size, shuffle=True, seed=config.seed * 100_003 + epoch)
        progress.start(epoch, len(batches))
        flips = np.random.default_rng([config.seed, epoch, 1])
        seen, loss_sum, acc_sum = 0, 0.0, 0.0
        for b, idx in enumerate(batches, 1):
            x, y = data.input(data.train, idx), y_train[idx]
            if setup.mirror is not None:
                x, y = setup.mirror.apply(x, y, flips)
            if config.shift:
                x = shift_batch(x, flips, config.shift)
            loss, acc = train_batch(x, y)
            seen += len(idx)
            loss_sum += loss * len(idx)
            acc_sum += acc * len(idx)
            progress.step(b, loss_sum / seen)
        val_loss, val_acc = validate()
        row = {"epoch": float(epoch), "loss": loss_sum / seen, "accuracy": acc_sum / seen, "val_loss": val_loss,
               "val_accuracy": val_acc, "seconds": time.monotonic() - t0}
        history.append(row)
        if not (math.isfinite(row["loss"]) and math.isfinite(val_loss)):
            raise TrainError(f"the loss became {row['loss']} (validation {val_loss}) at epoch {epoch}; "
                             "lower --learning-rate")
        better = val_loss < best_loss
        if better:
            best_loss, best_epoch, best, stale = val_loss, epoch, keep(), 0
        else:
            stale += 1
        progress.end(f"epoch {epoch}/{config.epochs}: loss {row['loss']:.4f} accuracy {row['accuracy']:.1%} | "
                     f"val loss {val_loss:.4f} accuracy {val_acc:.1%} | {row['seconds']:.1f} s"
                     + ("  (best)" if better else ""))
        if stale >= config.patience:
            stop_reason = (f"early stop: no better validation loss for {config.patience} "
                           f"epoch{'' if config.patience == 1 else 's'}")
            break
    assert best is not None  # epochs >= 1, and the first epoch (finite, or we raised) is "better"
    restore(best)
    return Fitted(history=history, best_epoch=best_epoch, stop_reason=stop_reason)


__all__ = ["Fitted", "Setup", "fit_epochs", "prepare"]
