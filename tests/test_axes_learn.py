"""Axis targets (mouse motion, pad sticks) from dataset to model (issue 14): the encodings of
engine.axes_spec, the targets every export and adapter carries, the sidecar's axes (format_version 2), play's
Decoder.decode_axes, and a tiny model trained on a synthetic axis session whose .tflite decodes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.axes_spec import AxisSpec, AxisSpecError, default_axis, make_axis, parse_axis, resolve_axes
from engine.dataset import DatasetError, Windows, export, load, load_axes, read_spec
from engine.model.decode import Decoder
from engine.session import Session, SessionWriter
from engine.sidecar import ModelSidecar, SidecarError

W, H = 32, 24
SOURCE = {"backend": "x11", "region": [0, 0, W, H], "window": None}
AXES = ["mouse_dx", "pad_lx"]


def _session(root: Path, name: str, n: int = 240, seed: int = 0, axes: list[str] = AXES) -> Session:
    """A gray W x H session whose frames show a bright column at x; mouse_dx is the column's motion to the
    next frame (so the frame tells the target), pad_lx its position in [-1, 1], key "w" held on the right half."""
    rng = np.random.default_rng(seed)
    # x sweeps the whole width back and forth (every session covers both sides: a uint8 model is calibrated
    # on the training session and checked on the validation one)
    x = (np.arange(n) * 1.5 + rng.integers(0, W)).astype(np.int64) % (2 * (W - 1))
    x = np.where(x > W - 1, 2 * (W - 1) - x, x)
    w = SessionWriter.create(root, name=name, game="axisgame", fps=30.0, frame_shape=(H, W), color="gray",
                             actions=["w", "s"], resize=None, source=SOURCE, axes=axes)
    values = {"mouse_dx": (rng.integers(-20, 21, n)).astype(np.float32),
              "pad_lx": (x / (W - 1) * 2 - 1).astype(np.float32), "wheel": rng.integers(-2, 3, n).astype(np.float32)}
    # mouse_dx decides where the column is drawn: the picture tells the motion (column at 16 + dx/2... clipped)
    col = np.clip(W // 2 + (values["mouse_dx"] * 0.7).round().astype(np.int64), 0, W - 1)
    done = 0
    while done < n:
        buf = w.frames_buffer(min(50, n - done))
        k = len(buf)
        buf[:] = 0
        for i in range(k):
            buf[i, :, col[done + i]] = 255
            buf[i, : H // 2, x[done + i]] = 128
        t = (np.arange(done, done + k, dtype=np.int64) + 1) * 33_333_333
        acts = np.zeros((k, 2), np.uint8)
        acts[:, 0] = x[done : done + k] > W // 2
        w.commit(k, t, acts, np.stack([values[a][done : done + k] for a in axes], axis=1))
        done += k
    w.close()
    return Session.open(root / "sessions" / name)


# ---- encodings -------------------------------------------------------------------------------------------
def test_mulaw_is_monotone_symmetric_and_round_trips_its_centres() -> None:
    a = parse_axis("mouse_dx=mulaw:11:max=40")
    assert a == make_axis("mouse_dx", "mulaw", n=11, max=40.0, mu=10.0) == default_axis("mouse_dx")
    c = a.centres()
    assert c[5] == 0.0 and c[0] == -40.0 and c[-1] == 40.0
    np.testing.assert_allclose(c, -c[::-1], atol=1e-5)
    assert np.all(np.diff(c) > 0) and np.all(np.diff(np.diff(c[5:])) > 0)  # finer near 0, as VPT's camera bins
    v = np.linspace(-100, 100, 2001)
    e = a.encode(v)
    assert np.all(np.diff(e) >= 0) and e.min() == 0 and e.max() == 10  # monotone, clipped at +-max
    np.testing.assert_array_equal(a.encode(c), np.arange(11))  # a centre encodes to its own bin
    for i in range(11):
        assert a.decode(a.target_block(np.array([i], np.float32))[0]) == pytest.approx(c[i])


def test_uniform_bins_scaled_and_raw_encode_and_decode() -> None:
    b = parse_axis("wheel=bins:5:lo=-2.5:hi=2.5")
    np.testing.assert_allclose(b.centres(), [-2, -1, 0, 1, 2])
    np.testing.assert_array_equal(b.encode(np.array([-9, -2, -0.4, 0, 1.2, 2, 9])), [0, 0, 2, 2, 3, 4, 4])
    s = parse_axis("pad_lx=scaled:scale=2:clip=1")
    np.testing.assert_allclose(s.encode(np.array([-1, -0.25, 0.3, 1])), [-1, -0.5, 0.6, 1])
    assert s.decode(np.array([0.6])) == pytest.approx(0.3) and s.decode(np.array([5.0])) == pytest.approx(0.5)
    r = default_axis("pad_lt")
    assert (r.encoding, r.lo, r.hi) == ("raw", 0.0, 1.0)
    np.testing.assert_allclose(r.encode(np.array([-0.5, 0.25, 3.0, np.nan])), [0, 0.25, 1, 0])
    assert r.decode(np.array([1.7])) == 1.0 and r.decode(np.array([np.nan])) == 0.0
    assert default_axis("pad_ly").encoding == "scaled" and default_axis("mouse_dy").encoding == "mulaw"


@pytest.mark.parametrize("text", ["mouse_dx", "mouse_dx=", "mouse_dx=cubic", "mouse_dx=mulaw:eleven",
                                  "mouse_dx=mulaw:1", "wheel=bins:5:lo=2:hi=1", "pad_lx=scaled:scale=0",
                                  "pad_lx=scaled:n=3", "mouse_dx=raw:lo=0", "mouse_dx=mulaw:11:max=inf"])
def test_a_bad_axis_spec_is_one_line(text: str) -> None:
    with pytest.raises(AxisSpecError) as e:
        parse_axis(text)
    assert "\n" not in str(e.value)


def test_resolve_axes_refuses_an_axis_the_data_lacks() -> None:
    assert resolve_axes(["mouse_dx", "pad_lx"], ["pad_lx=raw"])[1] == make_axis("pad_lx", "raw")
    with pytest.raises(AxisSpecError, match="no axis wheel"):
        resolve_axes(["mouse_dx"], ["wheel=bins:3:lo=-1:hi=1"])


# ---- sidecar and decoder ---------------------------------------------------------------------------------
def _sidecar(**kw: object) -> ModelSidecar:
    base: dict[str, object] = {"fps": 30, "window": 2, "frame_size": [W, H], "color": "gray", "layout": "channels",
                               "actions": ["w"]}
    return ModelSidecar.from_dict({**base, **kw})


def test_sidecar_with_axes_is_version_2_and_key_only_stays_version_1(tmp_path: Path) -> None:
    keys = _sidecar()
    assert keys.format_version == 1 and "axes" not in keys.to_dict()
    mixed = _sidecar(axes=[default_axis("mouse_dx").to_dict(), {"name": "pad_lx", "encoding": "scaled"}])
    assert mixed.format_version == 2 and mixed.outputs == 1 + 11 + 1 and mixed.axis_names == ("mouse_dx", "pad_lx")
    mixed.save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["format_version"] == 2
    assert ModelSidecar.load(tmp_path / "m.json") == mixed
    for bad, match in (({"format_version": 1, "axes": [{"name": "mouse_dx", "encoding": "raw"}]}, "must be 2"),
                       ({"format_version": 2}, "must be 1"),
                       ({"axes": [{"name": "wheel", "encoding": "mulaw"}]}, "bin count"),
                       ({"axes": [{"name": "mouse_dx", "encoding": "raw", "n": 3}]}, "not n"),
                       ({"axes": [{"name": "w", "encoding": "raw"}]}, "both an action and an axis"),
                       ({"axes": [{"name": "x", "encoding": "raw"}, {"name": "x", "encoding": "raw"}]}, "twice")):
        with pytest.raises(SidecarError, match=match) as e:
            _sidecar(**bad)
        assert "\n" not in str(e.value)


def test_decoder_reads_keys_then_each_axis_block() -> None:
    spec = _sidecar(axes=[default_axis("mouse_dx").to_dict(), {"name": "pad_lx", "encoding": "scaled", "scale": 2.0},
                          default_axis("wheel").to_dict()])
    d = Decoder(spec)
    assert d.axes == ("mouse_dx", "pad_lx", "wheel")
    out = np.zeros(spec.outputs, np.float32)
    out[0] = 0.7  # w
    out[1 + 2] = 0.9  # mouse_dx bin 2
    out[12] = -0.8  # pad_lx, scaled by 2
    out[13 + 4] = 0.6  # wheel bin 4
    np.testing.assert_array_equal(d.decode(out), [True])
    v = d.decode_axes(out)
    assert v.dtype == np.float32 and v.shape == (3,)
    np.testing.assert_allclose(v, [default_axis("mouse_dx").centres()[2], -0.4, 2.0], rtol=1e-6)
    with pytest.raises(ValueError):
        d.decode_axes(out[:-1])
    assert Decoder(_sidecar()).decode_axes(np.array([0.2], np.float32)).shape == (0,)


# ---- dataset: windows, exports, adapters -----------------------------------------------------------------
@pytest.fixture(scope="module")
def axis_sessions(tmp_path_factory: pytest.TempPathFactory) -> list[Session]:
    root = tmp_path_factory.mktemp("axdata")
    return [_session(root, f"s{i}", seed=i) for i in range(2)]


def test_windows_carry_the_label_frames_axes_encoded(axis_sessions: list[Session]) -> None:
    w = Windows(axis_sessions, window=2, offset=0)
    assert [a.name for a in w.spec.axes] == AXES and w.spec.axes == (default_axis("mouse_dx"), default_axis("pad_lx"))
    sess, ends = w.index
    raw = np.stack([np.asarray(axis_sessions[s].axes)[e] for s, e in zip(sess, ends, strict=True)])
    np.testing.assert_array_equal(w.axis_values, raw)
    np.testing.assert_array_equal(w.axis_targets[:, 0], default_axis("mouse_dx").encode(raw[:, 0]))
    np.testing.assert_array_equal(w.axis_targets[:, 1], raw[:, 1])  # scaled x1 within [-1, 1]
    only = Windows(axis_sessions, window=2, axes=["pad_lx=scaled:scale=0.5"])
    assert only.spec.axes == (make_axis("pad_lx", "scaled", scale=0.5),)
    np.testing.assert_allclose(only.axis_targets[:, 0], raw[:, 1] * 0.5)
    assert Windows(axis_sessions, window=2, axes=()).spec.axes == ()
    with pytest.raises(DatasetError, match="does not record axis 'wheel'"):
        Windows(axis_sessions, window=2, axes=["wheel"])
    # split and balance keep windows and targets aligned; balancing by key class x axis bucket
    parts = w.split((0.5, 0.5), by="session")
    for p in parts.values():
        s2, e2 = p.index
        np.testing.assert_array_equal(p.axis_values[:, 1],
                                      [np.asarray(axis_sessions[s].axes)[e, 1] for s, e in zip(s2, e2, strict=True)])
    b = w.balance("uniform", mode="under", seed=0)
    after = b.balance_report.after if b.balance_report is not None else {}
    assert len(set(after.values())) == 1 and all("mouse_dx:" in k and "pad_lx:" in k for k in after)


@pytest.mark.parametrize("fmt,store", [("npz", "windows"), ("hdf5", "frames")])
def test_exports_carry_the_axis_targets_as_encoded(axis_sessions: list[Session], tmp_path: Path, fmt: str,
                                                   store: str) -> None:
    w = Windows(axis_sessions, window=2, skip=2, axes=["mouse_dx=mulaw:7:max=20", "pad_lx"])
    parts = w.split((0.8, 0.2), by="session")
    out = tmp_path / ("d.npz" if fmt == "npz" else "d.h5")
    res = export(parts, out, store=store)  # type: ignore[arg-type]
    spec = read_spec(out)
    assert spec["axes"] == [make_axis("mouse_dx", "mulaw", n=7, max=20.0).to_dict(), default_axis("pad_lx").to_dict()]
    for name, p in parts.items():
        targets, values = load_axes(out, name)
        np.testing.assert_array_equal(targets, p.axis_targets)
        np.testing.assert_array_equal(values, p.axis_values)
        assert sum(spec["parts"][name]["axis_counts"]["mouse_dx"].values()) == len(p)
        _x, y = load(out, name)
        np.testing.assert_array_equal(y, p.labels)
    side = ModelSidecar.load(res.sidecar) if res.sidecar is not None else None
    assert side is not None and side.format_version == 2 and side.axes == w.spec.axes and side.outputs == 2 + 7 + 1


def test_adapters_yield_the_axis_targets(axis_sessions: list[Session]) -> None:
    w = Windows(axis_sessions, window=2)
    batches = list(w.batches(64, shuffle=True, seed=3))
    order = np.concatenate(list(w.batch_indices(64, shuffle=True, seed=3)))
    np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), w.axis_targets[order])
    torch_adapter = pytest.importorskip("engine.dataset.torch_adapter")
    loader = torch_adapter.data_loader(w, 64, shuffle=True, seed=3)
    got = list(loader)
    assert len(got[0]) == 3
    np.testing.assert_array_equal(np.concatenate([b[2].numpy() for b in got]), w.axis_targets[order])
    one = torch_adapter.WindowsDataset(w)[5]
    np.testing.assert_array_equal(one[2].numpy(), w.axis_targets[5])
    keys_only = Windows(axis_sessions, window=2, axes=())
    assert len(next(iter(torch_adapter.data_loader(keys_only, 8)))) == 2  # key-only data: (x, y) as before
    pytest.importorskip("tensorflow")
    from engine.dataset.tf_adapter import tf_dataset

    tf_batches = list(tf_dataset(w, 64, shuffle=True, seed=3).as_numpy_iterator())
    assert len(tf_batches[0]) == 3
    np.testing.assert_array_equal(np.concatenate([b[2] for b in tf_batches]), w.axis_targets[order])
    assert len(next(iter(tf_dataset(keys_only, 8).as_numpy_iterator()))) == 2


def test_the_session_report_draws_a_lane_per_axis(axis_sessions: list[Session]) -> None:
    from engine.report.data import load as load_run
    from engine.report.data import pacing, summary
    from engine.report.render import render

    run = load_run(axis_sessions[0].path)
    assert run.axis_names == AXES and run.axis_values.shape == (len(axis_sessions[0]), 2)
    out = render(run, pacing(run))
    names = [n for n, _ in out.lanes]
    assert names == ["w", "s", "mouse_dx", "pad_lx"]
    _, (x, y, w, h) = out.lanes[3]
    lane = out.image[y : y + h, x : x + w]
    assert (lane != lane[0, 0]).any(axis=-1).mean() > 0.01  # the line is drawn, not an empty lane
    rows = dict(summary(run, pacing(run)))
    assert "axis pad_lx" in rows and "min -1" in rows["axis pad_lx"]


# ---- training: keys and axes in one model, its .tflite and sidecar ---------------------------------------
def _check_trained(result: object, data: object, axes: tuple[AxisSpec, ...]) -> None:
    from engine.model import Model

    for path in (result.float32, result.uint8):  # type: ignore[attr-defined]
        if path is None:
            continue
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["format_version"] == 2 and side["axes"] == [a.to_dict() for a in axes]
        model = Model.load(path)  # play's loader: the sidecar beside it, output width checked against it
        assert model.spec.axes == axes and model.spec.outputs == 2 + sum(a.size for a in axes)
        outs, _ = model.run_windows(data.val.windows(np.arange(8)))  # type: ignore[attr-defined]
        assert outs.shape == (8, model.spec.outputs)
        d = Decoder(model.spec)
        values = np.array([d.decode_axes(o) for o in outs])
        assert values.shape == (8, len(axes)) and np.isfinite(values).all()
        assert set(values[:, 0].tolist()) <= set(axes[0].centres().tolist())  # a binned axis: bin centres
        assert np.all(np.abs(values[:, 1]) <= 1.0)  # a scaled stick, clipped to +-clip / scale
    assert [s["name"] for s in result.axes] == [a.name for a in axes]  # type: ignore[attr-defined]


def test_keras_learns_keys_and_axes_into_one_tflite(axis_sessions: list[Session], tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from engine.train import TrainConfig, TrainData
    from engine.train.trainer import train

    w = Windows(axis_sessions, window=1, axes=["mouse_dx=mulaw:7:max=20", "pad_lx"])
    data = TrainData.from_windows(w, fractions=(0.8, 0.2), by="session")
    cfg = TrainConfig(epochs=1, batch_size=64, name="ax", check_windows=20, representative=60, dense=16)
    result = train(data, tmp_path, cfg, log=lambda _: None)
    _check_trained(result, data, w.spec.axes)
    report = json.loads((tmp_path / "ax_report.json").read_text())
    assert [a["name"] for a in report["validation_axes"]] == ["mouse_dx", "pad_lx"]
    # the same data without axes: the sidecar the trainers write (TrainData.sidecar) is version 1, no axes
    keys = TrainData.from_windows(Windows(axis_sessions, window=1, axes=()), fractions=(0.8, 0.2), by="session")
    side = keys.sidecar().to_dict()
    assert keys.outputs == 2 and side["format_version"] == 1 and "axes" not in side


def test_torch_learns_keys_and_axes_into_one_tflite(axis_sessions: list[Session], tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    from engine.train import TrainConfig, TrainData
    from engine.train.torch_trainer import train

    w = Windows(axis_sessions, window=1, axes=["mouse_dx=mulaw:7:max=20", "pad_lx"])
    data = TrainData.from_windows(w, fractions=(0.8, 0.2), by="session")
    cfg = TrainConfig(epochs=1, batch_size=64, name="ax", check_windows=20, representative=120, dense=16)
    result = train(data, tmp_path, cfg, log=lambda _: None)
    _check_trained(result, data, w.spec.axes)


def test_lerobot_and_webdataset_exports_carry_the_axes(axis_sessions: list[Session], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import tarfile

    import pyarrow.parquet as pq

    from engine.dataset.lerobot import export_lerobot
    from engine.dataset.webdataset import export_webdataset

    w = Windows(axis_sessions, window=2, stride=20)
    export_lerobot(w, tmp_path / "lr")
    info = json.loads((tmp_path / "lr" / "meta" / "info.json").read_text())
    assert info["features"]["action"]["names"] == ["w", "s", *AXES]
    rows = pq.read_table(next((tmp_path / "lr" / "data").rglob("*.parquet"))).to_pydict()
    first = axis_sessions[0]
    np.testing.assert_array_equal(np.array(rows["action"][: len(first)])[:, 2:], np.asarray(first.axes))
    win = pq.read_table(tmp_path / "lr" / "meta" / "engine" / "windows-all.parquet").to_pydict()
    np.testing.assert_array_equal(np.array(win["axes"]), w.axis_targets)
    export_webdataset(w, tmp_path / "wds", shuffle=False)
    idx = json.loads((tmp_path / "wds" / "index.json").read_text())
    with tarfile.open(next((tmp_path / "wds").glob("*.tar"))) as tar:
        member = tar.extractfile("all-000000003.a.npy")
        assert member is not None
        np.testing.assert_array_equal(np.load(io.BytesIO(member.read())), w.axis_targets[3])
    assert idx["axes"] == [a.to_dict() for a in w.spec.axes]


def test_axes_alone_make_a_dataset_and_a_sidecar(tmp_path: Path) -> None:
    """A mouse-steered game recorded with --actions mouse_dx: no key, one axis; its windows, export sidecar
    and decoder work without key columns."""
    w = SessionWriter.create(tmp_path, name="m", game="mouse", fps=30.0, frame_shape=(H, W), color="gray",
                             actions=[], resize=None, source=SOURCE, axes=["mouse_dx"])
    buf = w.frames_buffer(40)
    buf[:] = 0
    dx = np.linspace(-30, 30, 40, dtype=np.float32)
    w.commit(40, (np.arange(40, dtype=np.int64) + 1) * 33_333_333, np.zeros((40, 0), np.uint8), dx[:, None])
    w.close()
    win = Windows(tmp_path / "sessions" / "m", window=2)
    assert win.spec.actions == () and win.labels.shape == (39, 0)
    np.testing.assert_array_equal(win.axis_values[:, 0], dx[1:])
    res = export(win, tmp_path / "m.npz")
    side = ModelSidecar.load(res.sidecar) if res.sidecar is not None else None
    assert side is not None and side.actions == () and side.outputs == 11 and side.format_version == 2
    out = np.zeros(11, np.float32)
    out[10] = 1.0
    d = Decoder(side)
    assert d.decode(out).shape == (0,) and d.decode_axes(out)[0] == pytest.approx(40.0)
    with pytest.raises(SidecarError, match="actions is empty"):
        _sidecar(actions=[])  # keys-only models still need their actions
