"""Takeover sessions (engine-play --takeover --record) on the data side: engine-dataset keeps the person's
corrections, engine-report draws who had control. No display needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.session import Session

ACTIONS = ["left", "right"]

PERIOD = 33_333_333


def _session(data: Path, name: str, n: int, control: np.ndarray | None, axes: bool = False) -> Session:
    """A session of n frames (frame i filled with i % 256) whose person pressed `right` on frames 20..29;
    with ``control``, a takeover session (control.npy, model_actions.npy always `left`, spans in meta).
    With ``axes``, mouse_dx too: the person's motion is +5 a frame on frames 20..29 (-1 elsewhere), the
    model's proposal -3 on every frame (model_axes.npy in a takeover session)."""
    from engine.play.takeover import CONTROL_FILE, MODEL_ACTIONS_FILE, MODEL_AXES_FILE, control_flags
    from engine.session import SessionWriter

    w = SessionWriter.create(data, name=name, game="g", fps=30.0, frame_shape=(6, 8), color="gray", actions=ACTIONS,
                             axes=["mouse_dx"] if axes else (), resize=(8, 6),
                             source={"backend": "test", "region": [0, 0, 8, 6], "window": None})
    t = 1_000_000_000 + np.arange(n, dtype=np.int64) * PERIOD
    acts = np.zeros((n, 2), np.uint8)
    acts[20:30, 1] = 1
    dx = np.full((n, 1), -1.0, np.float32)
    dx[20:30] = 5.0
    buf = w.frames_buffer(n)
    buf[:] = (np.arange(n) % 256).astype(np.uint8)[:, None, None]
    w.commit(n, t, acts, dx if axes else None)
    if control is not None:
        starts = np.flatnonzero(control & ~np.concatenate([[0], control[:-1]]).astype(bool))
        ends = np.flatnonzero(control & ~np.concatenate([control[1:], [0]]).astype(bool))
        spans = [(int(t[s]), int(t[e]) + 1) for s, e in zip(starts, ends, strict=True)]
        np.testing.assert_array_equal(control_flags(t, spans), control)
        np.save(w.path / CONTROL_FILE, control.astype(np.uint8))
        np.save(w.path / MODEL_ACTIONS_FILE, np.tile(np.array([1, 0], np.uint8), (n, 1)))
        if axes:
            np.save(w.path / MODEL_AXES_FILE, np.full((n, 1), -3.0, np.float32))
        w.annotate("takeover", {"control": CONTROL_FILE, "model_actions": MODEL_ACTIONS_FILE,
                                **({"model_axes": MODEL_AXES_FILE} if axes else {}),
                                "spans_ns": [list(s) for s in spans], "frames_lost": 0})
    w.close()
    return Session.open(w.path)


def test_dataset_keeps_only_the_persons_corrections_from_takeover_sessions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.dataset import Windows
    from engine.dataset.interventions import Interventions, intervention_frames

    control = np.zeros(60, np.uint8)
    control[20:30] = 1
    takeover = _session(tmp_path, "tk", 60, control)
    ordinary = _session(tmp_path, "plain", 60, None)
    assert ordinary.control is None and takeover.control is not None
    np.testing.assert_array_equal(takeover.model_actions, np.tile([1, 0], (60, 1)))

    mask, rows = intervention_frames(control, takeover.actions, before=5)
    assert np.flatnonzero(mask).tolist() == list(range(15, 30))
    assert (rows[15:20] == [0, 1]).all()  # before the takeover: what the person then did

    only = Windows([ordinary, takeover], window=2)
    # Every window of the ordinary session; of the takeover session those labelled on frames 20..29.
    assert len(only) == 59 + 10 and only.intervention_windows == 10
    heavy = Windows([ordinary, takeover], window=2, interventions=Interventions.parse("weight=3", before=5))
    assert len(heavy) == 59 + 3 * 15 and heavy.intervention_windows == 45
    x, y = heavy.gather(np.arange(59, len(heavy)))
    assert (y == [0, 1]).all()  # every correction says `right`
    assert sorted(set(x[:, -1, 0, 0].tolist())) == list(range(15, 30))  # the frames they were labelled on


def test_report_draws_the_takeover_spans(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.report import load, pacing, render
    from engine.report.data import summary
    from engine.report.render import TAKEOVER

    control = np.zeros(60, np.uint8)
    control[20:30] = 1
    ses = _session(tmp_path, "tk", 60, control)
    run = load(ses.path)
    drawn = render(run, pacing(run))
    names = [name for name, _ in drawn.lanes]
    assert names == ["left", "right", "person"]
    x, y, w, h = drawn.lanes[2][1]
    cols = np.flatnonzero(np.all(drawn.image[y:y + h, x:x + w] == TAKEOVER, axis=2).any(axis=0))
    right = drawn.lanes[1][1]
    held = np.flatnonzero(np.all(drawn.image[right[1]:right[1] + right[3], x:x + w] == drawn.bar_colors[1],
                                 axis=2).any(axis=0))
    assert len(cols) and abs(int(cols[0]) - int(held[0])) <= 1  # the person's span lines up with their key
    assert dict(summary(run, pacing(run)))["takeovers (engine-play --takeover)"].startswith("1; ")


def test_train_finetunes_from_the_weights_it_saved_and_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed (pip install 'engine[train]')")
    import h5py

    from engine.dataset import Windows
    from engine.train import TrainConfig, TrainData, train

    control = np.zeros(120, np.uint8)
    control[20:30] = 1
    sessions = [_session(tmp_path, "plain", 120, None), _session(tmp_path, "tk", 120, control)]
    data = TrainData.from_windows(Windows(sessions, window=2), (0.8, 0.2), by="time", blocks=2, seed=0)
    quiet = dict(stream=None, live_progress=False, log=lambda _: None)
    first = train(data, tmp_path / "a", TrainConfig(epochs=1, quantize=False, name="m"), **quiet)  # type: ignore[arg-type]
    assert first.weights == tmp_path / "a" / "m.weights.h5" and "from scratch" in first.lines()[1]
    # A step too small to move any weight: the fine-tuned model is the first one, so its weights were loaded.
    again = train(data, tmp_path / "b", TrainConfig(epochs=1, quantize=False, name="m", learning_rate=1e-30,
                                                    finetune=first.weights), **quiet)  # type: ignore[arg-type]
    assert "(fine-tuned)" in again.lines()[1]

    def weights(path: Path) -> list[np.ndarray]:  # the layers' (the file holds Adam's moments too)
        out: list[np.ndarray] = []
        with h5py.File(path) as f:
            f.visititems(lambda name, d: out.append(np.asarray(d))
                         if isinstance(d, h5py.Dataset) and name.startswith("layers/") else None)
        return out

    a, b = weights(first.weights), weights(tmp_path / "b" / "m.weights.h5")
    assert len(a) == len(b) > 0 and all(np.allclose(x, y, rtol=0, atol=1e-12) for x, y in zip(a, b, strict=True))


def test_a_killed_takeover_run_gives_no_training_windows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # control.npy is written when play ends; a run killed before that is still named a takeover session,
    # and with no frame known to be the person's none of it is a label.
    from engine.dataset import Windows
    from engine.play.takeover import CONTROL_FILE, MODEL_ACTIONS_FILE

    control = np.zeros(60, np.uint8)
    control[20:30] = 1
    killed = _session(tmp_path, "killed", 60, control)
    (killed.path / CONTROL_FILE).unlink()
    (killed.path / MODEL_ACTIONS_FILE).unlink()
    killed = Session.open(killed.path)
    assert killed.control is not None and not killed.control.any() and killed.model_actions is None
    w = Windows([_session(tmp_path, "plain", 60, None), killed], window=2)
    assert len(w) == 59 and w.intervention_windows == 0


def test_axis_takeover_sessions_give_the_persons_motion_as_targets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from engine.dataset import Windows
    from engine.dataset.interventions import Interventions
    from engine.play.takeover import MODEL_AXES_FILE
    from engine.report import load, pacing, render
    from engine.session import StorageError

    control = np.zeros(60, np.uint8)
    control[20:30] = 1
    takeover = _session(tmp_path, "tk", 60, control, axes=True)
    ordinary = _session(tmp_path, "plain", 60, None, axes=True)
    assert takeover.model_axes is not None and ordinary.model_axes is None
    np.testing.assert_array_equal(takeover.model_axes, np.full((60, 1), -3.0, np.float32))
    assert _session(tmp_path, "keys", 60, control).model_axes is None  # a takeover session without axes

    w = Windows([ordinary, takeover], window=2, axes=["mouse_dx=raw"],
                interventions=Interventions.parse("weight=2", before=5))
    assert len(w) == 59 + 2 * 15 and w.intervention_windows == 30
    mine = np.arange(59, len(w))
    x, y = w.gather(mine)
    assert (y == [0, 1]).all()
    # The person's motion on the frames they drove, and on the 5 frames before, the motion they made at the
    # takeover's first frame; never the -1 the person did not make while the model drove, nor the model's -3.
    assert (w.axis_values[mine] == 5.0).all() and (w.axis_targets[mine] == 5.0).all()
    assert sorted(set(x[:, -1, 0, 0].tolist())) == list(range(15, 30))
    np.testing.assert_array_equal(w.axis_values[:59, 0], np.r_[np.full(19, -1.0), np.full(10, 5.0),
                                                                np.full(30, -1.0)])  # the ordinary session, whole

    drawn = render(load(takeover.path), pacing(load(takeover.path)))
    names = [name for name, _ in drawn.lanes]
    assert names == ["left", "right", "person", "mouse_dx"]

    np.save(takeover.path / MODEL_AXES_FILE, np.zeros((60, 2), np.float32))
    with pytest.raises(StorageError, match="damaged"):
        _ = Session.open(takeover.path).model_axes
