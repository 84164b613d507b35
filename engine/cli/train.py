"""engine-train: train the reference CNN on recorded windows and export .tflite models engine-play can run.

    engine-train --data D.h5|D.npz [options]            an engine-dataset export with train and val parts
    engine-train --game NAME | SESSION... [window knobs] windows cut here, as engine-dataset build cuts them

Exit status: 0 done, 2 bad input (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli import args as a
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.train import TrainData

PROG = "engine-train"

EPILOG = """\
Data: --data takes a file from `engine-dataset build --split 0.8,0.2 --out D.h5` (its train and val
parts). --game NAME (or session names/directories) cuts windows here with the same knobs as
engine-dataset build, split into train and validation parts that share no frame (default: by time, in
5 blocks per session, so one session is enough), optionally balancing the train part.

Model: a small CNN over the window's frames stacked on the channel axis (sidecar layout "channels");
one sigmoid per action (--encoding multihot) or a softmax over key combinations (combo). --mask X,Y,W,H
(frame pixels, repeatable) hides a region from the model, inside the model itself: use it for a HUD that
shows the keys being pressed, or the model learns to copy its own keys. --mirror left=right flips a
random half of each batch left-right and swaps those actions in its labels, for games that look the same
mirrored (a driving game): twice the situations, and no bias to one side; the masks are then mirrored
too. --shift N moves every training window sideways by up to N pixels, labels unchanged, for games where
what counts is where things are relative to each other (the car against the road), not on the screen.

Axes: sessions recorded with mouse motion or pad axes train those too (--axes to choose, none for keys
only; --axis NAME=ENCODING[:N][:KEY=VALUE] as in engine-dataset build): the output is the key outputs,
then per axis one linear value (raw, scaled) or a softmax over its bins (bins, mulaw); the encodings go
into the sidecar (format_version 2), and engine-play decodes with them. Not with --mirror.

Training stops early when the validation loss has not improved for --patience epochs; the best epoch's
weights are kept. The default patience is long (10) because a validation part cut from a minute of play
is small: its loss moves 10-15% from epoch to epoch while the trend still falls, and a shorter patience
stopped some runs at an undertrained epoch. --seed makes the split, the shuffling and the weights reproducible.

Output in --out DIR (NAME: --name, default the game or data file name):
  NAME.tflite + NAME.json             float32 model and its sidecar: engine-play --model DIR/NAME.tflite
  NAME_uint8.tflite + NAME_uint8.json full-integer quantised (uint8 in and out), unless --no-uint8
  NAME_report.txt, NAME_report.json   validation accuracy per action (confusion matrix for combo), and
                                      how each .tflite agrees with Keras when run as engine-play runs it
  NAME_curves.png                     loss and accuracy per epoch
  NAME.weights.h5                     the Keras weights: --finetune NAME.weights.h5 starts the next
                                      training from them (a .tflite cannot be trained further)

Needs TensorFlow and matplotlib: pip install 'engine[train]'. --framework torch trains the same CNN in
PyTorch (same options, report and files; the 8-bit model has int8 tensors in and out) and needs
pip install 'engine[torch]' instead.
"""


def build_parser() -> a.Parser:
    p = a.Parser(prog=PROG, description="Train the reference CNN on recorded windows; export .tflite for engine-play.",
                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("data (one of)")
    src.add_argument("sessions", nargs="*", metavar="SESSION", help="session directories or names")
    src.add_argument("--data", type=Path, metavar="D.h5|D.npz",
                     help="an engine-dataset export with train and val parts")
    src.add_argument("--game", help="all sessions of this game")
    src.add_argument("--data-dir", type=Path, help="where sessions are (default $ENGINE_DATA_DIR or ./data)")
    win = p.add_argument_group("windows (with --game or sessions; as engine-dataset build)")
    a.add_window_options(win, window=4, offset_help="label frame relative to the last frame (default 0)")
    win.add_argument("--max-gap", type=a.positive_float, default=1.5, metavar="PERIODS",
                     help="a timestamp step over this many frame periods is a gap (default 1.5)")
    win.add_argument("--actions", help="label columns, comma-separated (default: the first session's actions)")
    win.add_argument("--encoding", choices=("multihot", "combo"), default="multihot",
                     help="one sigmoid per action, or a softmax over key combinations (default multihot)")
    win.add_argument("--classes", help="combo classes: wasd9, arrows9 or a list like none,w,a,w+a")
    a.add_axis_options(win)
    win.add_argument("--split", default="0.8,0.2", metavar="TRAIN,VAL",
                     help="train and validation fractions (default 0.8,0.2)")
    win.add_argument("--split-by", choices=("session", "time"), default="time",
                     help="whole sessions, or time blocks within each session (default time)")
    win.add_argument("--blocks", type=a.positive_int, default=5, help="--split-by time: blocks per session (default 5)")
    win.add_argument("--balance", metavar="TARGET", help="uniform, or CLASS=WEIGHT,... (train part only)")
    win.add_argument("--balance-mode", choices=("under", "over", "both"), default="under",
                     help="undersample, oversample or both (default under)")
    win.add_argument("--balance-axes", choices=("sign", "bin", "none"), default="sign",
                     help="with axis targets, a balancing class is the key class and each axis' sign (default), "
                          "bin, or the key class alone (none)")
    tr = p.add_argument_group("training")
    tr.add_argument("--framework", choices=("keras", "torch"), default="keras",
                    help="train the reference CNN in Keras (TensorFlow) or PyTorch (default keras)")
    tr.add_argument("--epochs", type=a.positive_int, default=30, help="at most this many epochs (default 30)")
    tr.add_argument("--batch-size", type=a.positive_int, default=64, help="windows per batch (default 64)")
    tr.add_argument("--learning-rate", type=a.positive_float, default=1e-3, help="Adam step size (default 0.001)")
    tr.add_argument("--patience", type=a.positive_int, default=10,
                    help="stop after this many epochs without a better validation loss (default 10)")
    tr.add_argument("--mask", action="append", default=[], metavar="X,Y,W,H",
                    help="hide this frame rectangle from the model (frame pixels; repeatable)")
    tr.add_argument("--mirror", action="append", default=[], metavar="A=B",
                    help="also train on mirrored windows with actions A and B swapped, e.g. left=right (repeatable)")
    tr.add_argument("--shift", type=a.nonnegative_int, default=0, metavar="PIXELS",
                    help="also train on windows shifted sideways by up to this many pixels (default 0)")
    tr.add_argument("--seed", type=a.integer, default=0, help="seed for the split, shuffling and weights (default 0)")
    tr.add_argument("--finetune", type=Path, metavar="NAME.weights.h5",
                    help="start from the weights engine-train saved beside an earlier model (same shape) instead "
                         "of random ones; the report says which it did")
    tk = p.add_argument_group("takeover sessions (engine-play --takeover --record), as engine-dataset build")
    a.add_intervention_options(tk, only_help="keep the windows the person labelled (only, the default), or "
                               "repeat each W times")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("models"), metavar="DIR",
                     help="output directory (default models)")
    out.add_argument("--name", help="file stem (default: the game, or the data file's name)")
    out.add_argument("--no-uint8", action="store_true", help="export the float32 model only")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="live progress bar per epoch on stderr (default: when stderr is a terminal)")
    return p


def _data(ns: argparse.Namespace) -> TrainData:
    """TrainData from the flags (imports the dataset kernels only now: --help stays fast)."""
    from engine.dataset import Windows
    from engine.dataset.balance import parse_weights
    from engine.dataset.interventions import Interventions
    from engine.dataset.labels import parse_classes
    from engine.dataset.split import parse_fractions
    from engine.dataset.windows import game_sessions
    from engine.train import TrainData

    given = [name for name, on in (("--data", ns.data is not None), ("--game", ns.game is not None),
                                   ("SESSION...", bool(ns.sessions))) if on]
    if len(given) != 1:
        what = "no data given" if not given else f"{' and '.join(given)} given"
        raise EngineError(f"{what}; give exactly one of --data FILE, --game NAME or SESSION...")
    if ns.classes is not None and ns.encoding != "combo":
        raise EngineError("--classes needs --encoding combo")
    if ns.data is not None:
        return TrainData.from_file(ns.data)
    fractions = parse_fractions(ns.split)
    # --game matches games only, as in engine-dataset build: resolved as a SESSION it could take a session's name.
    windows = Windows(
        game_sessions(ns.game, ns.data_dir) if ns.game is not None else ns.sessions, window=ns.window,
        skip=ns.skip, stride=ns.stride, offset=ns.offset, encoding=ns.encoding,
        classes=parse_classes(ns.classes) if ns.classes else None,
        actions=[x.strip() for x in ns.actions.split(",")] if ns.actions else None, data_dir=ns.data_dir,
        max_gap=ns.max_gap, interventions=Interventions.parse(ns.interventions, ns.before),
        axes=ns.axes, axis_specs=ns.axis,
    )
    return TrainData.from_windows(windows, fractions, by=ns.split_by, blocks=ns.blocks, seed=ns.seed,
                                  balance=parse_weights(ns.balance) if ns.balance else None,
                                  balance_mode=ns.balance_mode, balance_axes=ns.balance_axes)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of engine-train; returns the exit status."""
    ns = build_parser().parse_args(argv)
    try:
        from engine.train import Mirror, TrainConfig, mask_array, parse_mirror, parse_rect, train

        config = TrainConfig(
            epochs=ns.epochs, batch_size=ns.batch_size, learning_rate=ns.learning_rate, patience=ns.patience,
            seed=ns.seed, masks=tuple(parse_rect(m) for m in ns.mask), mirror=tuple(parse_mirror(m) for m in ns.mirror),
            shift=ns.shift, quantize=not ns.no_uint8, finetune=ns.finetune,
            name=ns.name or (ns.game if ns.game else ns.data.stem if ns.data is not None else "model"),
        )
        config.validate()
        # Everything a user can get wrong is checked before TensorFlow is imported (seconds of start-up),
        # and a missing TensorFlow before any data is read.
        fit = train
        if ns.framework == "torch":
            from engine.train import torch_trainer
            from engine.train.torch_net import require_torch_extra

            require_torch_extra()
            fit = torch_trainer.train  # the same signature, options and outputs, in PyTorch
        else:
            from engine.train.net import require_train_extra

            require_train_extra()
        data = _data(ns)
        mask_array(config.masks, data.sidecar().frame_size)
        Mirror.build(config.mirror, data.spec)
        result = fit(data, ns.out, config, live_progress=ns.progress)
    except EngineError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; models already written in {ns.out} are complete, the rest were not written",
              file=sys.stderr)
        return 130
    for line in result.lines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
