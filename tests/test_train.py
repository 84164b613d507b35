"""engine-train: inputs identical to play's, masks inside the model, real training and export on a small
learnable game, both .tflite models checked through engine-play's Model, one-line errors.

Training tests need TensorFlow (the [train] extra) and skip without it; the rest run everywhere."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.dataset import Windows, export
from engine.model.model import Model
from engine.session import Session, SessionWriter
from engine.sidecar import ModelSidecar
from engine.train import (
    Mirror,
    TrainConfig,
    TrainData,
    TrainError,
    mask_array,
    mirrored_rects,
    parse_mirror,
    parse_rect,
    shift_batch,
    to_input,
)
from engine.train.progress import EpochProgress
from engine.train.report import score

HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "matplotlib"))
NO_TF = "TensorFlow or matplotlib is not installed (pip install 'engine[train]')"
needs_tf = pytest.mark.skipif(not HAVE_TF, reason=NO_TF)

ACTIONS = ("left", "right", "up")
H, W = 24, 32
HUD = (0, 20, 8, 4)  # x, y, w, h: where the synthetic game draws the keys held (a trap without a mask)


def bar_game(n: int, seed: int, color: str = "gray") -> tuple[np.ndarray, np.ndarray]:
    """Frames of a learnable toy game and their labels: a vertical bar wanders; left is held while it is
    in the left third, right in the right third, up while it is bright. The bottom-left HUD shows the
    labels, as the demo's indicators do."""
    rng = np.random.default_rng(seed)
    x = np.clip(np.cumsum(rng.choice([-2, -1, 1, 2], n)) % (2 * W), 0, 2 * W - 1)
    x = np.where(x >= W, 2 * W - 1 - x, x)  # reflect: a walk that stays in the frame
    bright = (np.cumsum(rng.random(n) < 0.05) % 2).astype(bool)
    frames = np.full((n, H, W), 40, np.uint8)
    for i in range(n):
        frames[i, :, max(0, x[i] - 1) : x[i] + 2] = 250 if bright[i] else 150
    # Left and right mirror each other about the centre column (W - 1 - x), as --mirror left=right assumes.
    labels = np.stack([x < W // 3, x > W - 1 - W // 3, bright], axis=1).astype(np.uint8)
    hx, hy, _, hh = HUD
    for a in range(3):
        frames[:, hy : hy + hh, hx + a * 2 : hx + a * 2 + 2] = np.where(labels[:, a, None, None], 255, 0)
    if color == "rgb":
        rgb = np.repeat(frames[..., None], 3, axis=3)
        rgb[..., 1] //= 2  # channels must differ, or a wrong channel order would pass unnoticed
        return rgb, labels
    return frames, labels


def write_session(root: Path, name: str, n: int, seed: int, color: str = "gray") -> Session:
    frames, labels = bar_game(n, seed, color)
    w = SessionWriter.create(root, name=name, game="bars", fps=30.0, frame_shape=frames.shape[1:], color=color,
                             actions=ACTIONS, resize=None, source={"backend": "x11", "region": [0, 0, W, H],
                                                                   "window": None})
    buf = w.frames_buffer(n)
    buf[:] = frames
    w.commit(n, 1_000_000_000 + np.arange(n, dtype=np.int64) * 33_333_333, labels)
    w.close()
    return Session.open(root / "sessions" / name)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.train", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=600)


# ---- without TensorFlow -----------------------------------------------------------------------------------
def test_importing_engine_train_and_its_cli_does_not_import_tensorflow() -> None:
    code = ("import sys, engine, engine.train, engine.cli.train, engine.demo.models, engine.demo.models.drive; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_tensorflow_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    write_session(tmp_path, "b1", 100, 1)
    code = ("import sys; sys.modules['tensorflow'] = None; from engine.cli.train import main; "
            f"raise SystemExit(main(['--game', 'bars', '--data-dir', {str(tmp_path)!r}, '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "pip install 'engine[train]'" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_training_inputs_stack_frames_on_channels_oldest_first(tmp_path: Path, color: str) -> None:
    ses = write_session(tmp_path, "b1", 60, 1, color)
    data = TrainData.from_windows(Windows(ses, window=3, skip=2), (0.5, 0.5), by="time", blocks=1)
    x = data.train.windows(np.arange(4))
    got = to_input(x, data.spec)
    c = 3 if color == "rgb" else 1
    assert got.dtype == np.float32 and got.shape == (4, H, W, 3 * c) == (4, *data.input_shape)
    for i in range(4):  # the sidecar's "channels" layout: channel f*C + c is channel c of frame f
        frames = x[i].reshape(3, H, W, c)
        want = np.concatenate([frames[f] for f in range(3)], axis=-1).astype(np.float64) / 255.0
        assert np.array_equal(got[i], want.astype(np.float32))


def test_mask_array_clips_and_refuses_mistakes() -> None:
    m = mask_array([(-2, 20, 6, 10), (30, 0, 5, 2)], (W, H))
    assert m is not None and m.shape == (H, W, 1)
    assert not m[20:, :4].any() and m[20:, 4:].all() and not m[:2, 30:].any()
    assert mask_array([], (W, H)) is None
    with pytest.raises(TrainError, match="outside"):
        mask_array([(100, 100, 5, 5)], (W, H))
    with pytest.raises(TrainError, match="whole"):
        mask_array([(0, 0, W, H)], (W, H))
    with pytest.raises(TrainError, match="X,Y,W,H"):
        parse_rect("1,2,3")


def test_mirror_flips_half_a_batch_swaps_labels_and_mirrors_the_masks(tmp_path: Path) -> None:
    ses = write_session(tmp_path, "b1", 80, 1)
    spec = Windows(ses, window=2).spec
    mirror = Mirror.build([parse_mirror("left=right")], spec)
    x = np.random.default_rng(0).random((64, H, W, 2)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, (64, 3)).astype(np.float32)
    fx, fy = mirror.apply(x.copy(), y, np.random.default_rng(2))
    flipped = np.array([not np.array_equal(fx[i], x[i]) for i in range(64)])
    assert 16 < flipped.sum() < 48
    assert np.array_equal(fx[flipped], x[flipped][:, :, ::-1])
    assert mirrored_rects([HUD, (10, 0, 12, 2)], (W, H)) == (HUD, (W - 8, 20, 8, 4), (10, 0, 12, 2))
    assert np.array_equal(fy[flipped], y[flipped][:, [1, 0, 2]]) and np.array_equal(fy[~flipped], y[~flipped])
    combo = Windows(ses, window=2, encoding="combo", classes="none,left,right,left+up").spec
    m = Mirror.build([("left", "right")], combo)
    assert m.class_map.tolist() == [0, 2, 1, -1]  # right+up is not a class: left+up stays unflipped
    with pytest.raises(TrainError, match="not one of the actions"):
        Mirror.build([("left", "down")], spec)
    with pytest.raises(TrainError, match="one pair"):
        Mirror.build([("left", "right"), ("left", "up")], spec)
    with pytest.raises(TrainError, match="ACTION=ACTION"):
        parse_mirror("left")


def test_shift_moves_each_window_sideways_and_repeats_the_edge() -> None:
    x = np.arange(40 * 3 * 7 * 2, dtype=np.float32).reshape(40, 3, 7, 2)
    got = shift_batch(x.copy(), np.random.default_rng(5), 3)
    shifts = np.random.default_rng(5).integers(-3, 4, 40)
    assert set(shifts.tolist()) == {-3, -2, -1, 0, 1, 2, 3}
    for i, k in enumerate(shifts.tolist()):
        cols = np.clip(np.arange(7) - k, 0, 6)  # output column c shows input column c - k, edges repeated
        assert np.array_equal(got[i], x[i][:, cols]), k


def test_scores_and_confusion_matrix() -> None:
    out = np.array([[0.9, 0.1, 0.6], [0.2, 0.7, 0.1], [0.1, 0.1, 0.1], [0.6, 0.2, 0.9]], np.float32)
    y = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 0, 1]], np.uint8)
    m = score(out, y, "multihot", ACTIONS)
    assert [a.accuracy for a in m.actions] == [0.75, 0.75, 1.0]
    assert [a.majority for a in m.actions] == [0.75, 0.5, 0.5]
    assert m.exact == 0.5 and m.actions[1].recall == 0.5 and m.actions[0].precision == 0.5
    classes = [(), ("left",), ("right",)]
    probs = np.eye(3, dtype=np.float32)[[0, 1, 2, 2, 1]]
    c = score(probs, np.array([0, 1, 2, 1, 1]), "combo", ACTIONS, classes)
    assert c.confusion is not None and c.confusion.tolist() == [[1, 0, 0], [0, 2, 1], [0, 0, 1]]
    assert "  confusion (rows: true class, columns: predicted):" in c.lines()


def test_progress_is_a_live_bar_on_terminals_and_one_line_per_epoch_elsewhere() -> None:
    import io

    for live in (True, False):
        buf = io.StringIO()
        p = EpochProgress(buf, epochs=2, live=live)
        p.start(1, 3)
        for b in (1, 2, 3):
            p.step(b, 0.5)
        p.end("epoch 1/2: done")
        text = buf.getvalue()
        assert text.endswith("epoch 1/2: done\n")
        assert ("[" in text and "3/3 batches" in text) == live


# Flags checked before TensorFlow is looked for (so they fail the same without it), then data problems.
EARLY = [
    (["--game", "bars", "--mask", "1,2"], "X,Y,W,H"),
    (["--game", "bars", "--epochs", "0"], "must be a positive integer"),
    (["--game", "bars", "--name", "a/b"], "plain file stem"),
    (["--game", "bars", "--shift", "-1"], "must be an integer >= 0"),
]
LATE = [
    ([], "no data given"),
    (["--game", "bars", "--data", "x.h5"], "--data and --game given"),
    (["--game", "nosuchgame"], "no sessions of game 'nosuchgame'"),
    (["--game", "bars", "--classes", "none,left"], "--classes needs --encoding combo"),
    (["--game", "bars", "--mask", "500,500,4,4"], "outside the 32x24 frame"),
    (["--game", "bars", "--split", "1.0"], "validation part"),
    (["--game", "bars", "--mirror", "left=down"], "'down' is not one of the actions"),
]


@pytest.mark.parametrize(("args", "message"), EARLY + [pytest.param(*c, marks=needs_tf) for c in LATE])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    write_session(tmp_path, "b1", 100, 1)
    done = run_cli(*args, "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


@needs_tf
def test_a_data_file_without_a_validation_part_is_refused(tmp_path: Path) -> None:
    ses = write_session(tmp_path, "b1", 100, 1)
    export(Windows(ses, window=2), tmp_path / "all.npz")
    done = run_cli("--data", str(tmp_path / "all.npz"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "has no train part (it holds all)" in done.stderr and "--split 0.8,0.2" in done.stderr


# ---- training for real ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """engine-train (the CLI, in-process) on two sessions of the toy game, exported as .h5 with a split,
    with the HUD masked."""
    if not HAVE_TF:
        pytest.skip(NO_TF)
    from engine.cli.train import main

    root = tmp_path_factory.mktemp("train")
    s1, s2 = write_session(root, "b1", 700, 1), write_session(root, "b2", 500, 2)
    parts = Windows([s1, s2], window=2).split((0.8, 0.2), by="time", blocks=3)
    export(parts, root / "bars.h5")
    out = root / "out"
    mask = ",".join(map(str, HUD))
    status = main(["--data", str(root / "bars.h5"), "--epochs", "12", "--patience", "4", "--batch-size", "32",
                   "--mask", mask, "--mirror", "left=right", "--shift", "2", "--out", str(out), "--seed", "3",
                   "--no-progress"])
    assert status == 0
    report = json.loads((out / "bars_report.json").read_text())
    return {"root": root, "out": out, "report": report, "val": parts["val"]}


@needs_tf
def test_training_learns_the_toy_game_and_reports_it(trained: dict[str, Any]) -> None:
    out, report = trained["out"], trained["report"]
    val = report["validation"]["actions"]
    print({a: round(v["accuracy"], 3) for a, v in val.items()}, "majority", {a: v["majority"] for a, v in val.items()})
    for a in ACTIONS:
        assert val[a]["accuracy"] >= 0.9 and val[a]["accuracy"] > val[a]["majority"]
    assert 1 <= report["best_epoch"] <= len(report["history"]) <= 12
    text = (out / "bars_report.txt").read_text()
    assert "accuracy" in text and "majority answer" in text and "bars_uint8.tflite" in text
    assert (out / "bars_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_tf
def test_exported_models_fit_play_and_agree_with_keras(trained: dict[str, Any]) -> None:
    out, report = trained["out"], trained["report"]
    exports = {Path(e["path"]).name: e for e in report["exports"]}
    print({n: (round(e["same_decisions"], 4), round(e["max_output_diff"], 4), e["size_bytes"],
               round(e["invoke_ms_p50"], 3)) for n, e in exports.items()})
    assert exports["bars.tflite"]["same_decisions"] >= 0.99 and exports["bars.tflite"]["max_output_diff"] < 1e-4
    assert exports["bars_uint8.tflite"]["same_decisions"] >= 0.95
    for name, dtype in (("bars.tflite", np.float32), ("bars_uint8.tflite", np.uint8)):
        m = Model.load(out / name)  # the sidecar beside it: no flags
        assert m.input_dtype == dtype and m.input_layout == "channels" and m.input_shape == (1, H, W, 2)
        assert m.spec == ModelSidecar.load(out / name.replace(".tflite", ".json"))
        assert m.spec.actions == ACTIONS and m.spec.fps == 30.0 and m.spec.window == 2
        assert m.spec.extra["training"]["masks"] == [list(HUD), [W - 8, 20, 8, 4]]  # mirrored with --mirror
    u8 = Model.load(out / "bars_uint8.tflite")
    assert u8.input_quantization is not None
    scale, zero = u8.input_quantization
    assert zero == 0 and abs(scale - 1 / 255) < 1e-6  # the pixel values themselves go in


@needs_tf
def test_play_feeds_exactly_the_training_inputs(trained: dict[str, Any]) -> None:
    # Model.prepare is play's reference input path; to_input is training's. Same numbers, bit for bit.
    f32 = Model.load(trained["out"] / "bars.tflite")
    val: Windows = trained["val"]
    x, _ = val.gather(np.arange(5))
    got = to_input(x, val.spec)
    for i in range(5):
        assert np.array_equal(f32.prepare(x[i])[0], got[i])


@needs_tf
def test_the_masked_hud_cannot_change_a_decision(trained: dict[str, Any]) -> None:
    val: Windows = trained["val"]
    x, _ = val.gather(np.arange(20))
    hx, hy, hw, hh = HUD
    noisy = x.copy()
    noisy[:, :, hy : hy + hh, hx : hx + hw] = np.random.default_rng(0).integers(0, 256, (20, 2, hh, hw))
    outside = x.copy()
    outside[:, :, 0:4, 10:20] = 255  # the same change outside the mask must matter somewhere
    for name in ("bars.tflite", "bars_uint8.tflite"):
        m = Model.load(trained["out"] / name)
        a = np.stack([m.predict(w) for w in x])
        assert np.array_equal(a, np.stack([m.predict(w) for w in noisy])), name
    f32 = Model.load(trained["out"] / "bars.tflite")
    assert not np.array_equal(np.stack([f32.predict(w) for w in x]), np.stack([f32.predict(w) for w in outside]))


@needs_tf
def test_combo_encoding_from_sessions_reports_a_confusion_matrix(tmp_path: Path) -> None:
    write_session(tmp_path, "b1", 600, 4)
    out = tmp_path / "out"
    done = run_cli("--game", "bars", "--data-dir", str(tmp_path), "--encoding", "combo", "--actions", "left,right",
                   "--window", "2", "--epochs", "6", "--out", str(out), "--no-uint8", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "confusion (rows: true class, columns: predicted):" in done.stdout
    assert not (out / "bars_uint8.tflite").exists()
    m = Model.load(out / "bars.tflite")
    assert m.spec.encoding == "combo" and set(m.spec.classes) == {(), ("left",), ("right",)}
    report = json.loads((out / "bars_report.json").read_text())
    assert np.array(report["validation"]["confusion"]).sum() == report["validation"]["windows"]
    assert report["exports"][0]["same_decisions"] >= 0.99
    print(done.stdout)


@needs_tf
def test_same_seed_same_weights(tmp_path: Path) -> None:
    from engine.train import train

    ses = write_session(tmp_path, "b1", 300, 5)
    data = TrainData.from_windows(Windows(ses, window=2), (0.8, 0.2), by="time", blocks=2)
    cfg = TrainConfig(epochs=2, seed=7, quantize=False, name="a")
    a = train(data, tmp_path / "a", cfg, log=lambda _: None, live_progress=False)
    b = train(data, tmp_path / "b", cfg, log=lambda _: None, live_progress=False)
    # Not the bytes: Keras numbers layer names per process (dense_1, dense_3), and they are in the file.
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    x = data.val.windows(np.arange(10))
    ma, mb = Model.load(a.float32), Model.load(b.float32)
    assert all(np.array_equal(ma.predict(w), mb.predict(w)) for w in x)


@needs_tf
def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path: Path) -> None:
    # Labels drawn at random, independent of the frames: nothing generalises, so after an epoch or two the
    # model only memorises the training part and the validation loss stops falling. With patience 1 the
    # trainer must stop at the first epoch that is not better than the best, and restore the best weights.
    from engine.train import train

    n = 240
    frames, _ = bar_game(n, 6)
    labels = np.random.default_rng(6).integers(0, 2, (n, 3)).astype(np.uint8)
    w = SessionWriter.create(tmp_path, name="noise", game="noise", fps=30.0, frame_shape=frames.shape[1:],
                             color="gray", actions=ACTIONS, resize=None, source={})
    w.frames_buffer(n)[:] = frames
    w.commit(n, 1_000_000_000 + np.arange(n, dtype=np.int64) * 33_333_333, labels)
    w.close()
    data = TrainData.from_windows(Windows(Session.open(tmp_path / "sessions" / "noise"), window=2), (0.75, 0.25),
                                  by="time", blocks=2)
    cfg = TrainConfig(epochs=20, patience=1, batch_size=16, learning_rate=3e-3, quantize=False, name="noise")
    result = train(data, tmp_path / "out", cfg, log=lambda _: None, live_progress=False)

    losses = [h["val_loss"] for h in result.history]
    print(f"val losses {[round(v, 4) for v in losses]}; best epoch {result.best_epoch}; {result.stop_reason}")
    # The trainer's promise (engine.train.trainer, step 2): stop after `patience` epochs without a better
    # validation loss; best_epoch is 1-based, so the run is best_epoch + patience epochs long.
    assert result.stop_reason == "early stop: no better validation loss for 1 epoch"
    assert len(result.history) == result.best_epoch + cfg.patience < cfg.epochs
    assert losses[result.best_epoch - 1] == min(losses) < losses[-1]
    # The exported model holds the best epoch's weights, not the last epoch's: its own validation loss,
    # computed here from its outputs, is the best epoch's.
    model = Model.load(result.float32)
    x = data.val.windows(np.arange(len(data.val)))
    p = np.clip(np.stack([model.predict(win) for win in x]).astype(np.float64), 1e-7, 1 - 1e-7)
    y = data.val.labels.astype(np.float64)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert abs(loss - losses[result.best_epoch - 1]) < 1e-4 < abs(loss - losses[-1]), (loss, losses)
    training = model.spec.extra["training"]
    assert training["best_epoch"] == result.best_epoch and training["epochs_run"] == len(result.history)
