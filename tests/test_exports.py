"""Directory exports that the ecosystem reads: LeRobot v3.0 (parquet + PNG) and WebDataset tar shards.
Each is read back with the readers people use (pyarrow, PIL, Hugging Face datasets, webdataset, Ray Data)
and must give back exactly the sessions' frames and engine.dataset's windows and labels."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_dataset import write_session

from engine.cli.dataset import main as dataset_main
from engine.dataset import DatasetError, Windows
from engine.dataset.lerobot import IMAGE_KEY, export_lerobot
from engine.dataset.outdir import png
from engine.dataset.webdataset import export_webdataset
from engine.session import Session, compact

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_session(data, "k1", 203, gaps=(90,), seed=1)
    write_session(data, "k2", 150, seed=2)
    write_session(data, "k3", 120, seed=3, shape=(6, 10))
    compact(data / "sessions" / "k2", chunk_frames=16)  # exports read compressed sessions too
    return data


def _png_array(b: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im)


@pytest.mark.parametrize("shape", [(7, 5), (4, 9, 3), (1, 1)])
def test_png_is_lossless(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(_png_array(png(a)), a)


def test_lerobot_layout_and_read_back(root: Path, tmp_path: Path) -> None:
    w = Windows(["k1", "k2", "k3"], window=4, skip=2, data_dir=root)
    parts = w.split((0.6, 0.4), by="session", seed=0)
    out = tmp_path / "lr"
    r = export_lerobot(parts, out)
    assert r.items == 203 + 150 + 120 and not (tmp_path / "lr.partial").exists()
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30 and info["total_episodes"] == 3
    assert info["total_frames"] == r.items and info["total_tasks"] == 1
    assert info["features"]["action"] == {"dtype": "float32", "shape": [4], "names": list(w.spec.actions)}
    assert info["features"][IMAGE_KEY]["dtype"] == "image" and info["features"][IMAGE_KEY]["shape"] == [6, 10, 1]
    assert set(info["splits"]) == {"train", "val"}
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert np.asarray(stats[IMAGE_KEY]["mean"]).shape == (1, 1, 1) and stats["action"]["count"] == [r.items]
    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pylist()
    assert tasks == [{"task": "kart", "task_index": 0}]
    episodes = pq.read_table(out / "meta" / "episodes").to_pylist()
    data = pq.read_table(out / "data")
    assert data.schema.field("action").type == pa.list_(pa.float32(), 4)
    index = data.column("index").to_numpy()
    assert np.array_equal(index, np.arange(r.items))
    for ep in episodes:
        s = Session.open(root / "sessions" / ep["engine/session"])
        lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
        assert hi - lo == ep["length"] == len(s) and ep["tasks"] == ["kart"]
        rows = data.slice(lo, hi - lo)
        assert (rows.column("episode_index").to_numpy() == ep["episode_index"]).all()
        assert np.array_equal(rows.column("frame_index").to_numpy(), np.arange(len(s)))
        frames = np.stack([_png_array(d["bytes"]) for d in rows.column(IMAGE_KEY).to_pylist()])
        assert np.array_equal(frames, np.asarray(s.frames))
        acts = np.asarray(rows.column("action").to_pylist(), np.float32)
        assert np.array_equal(acts, np.asarray(s.actions, np.float32))
        t = rows.column("timestamp").to_numpy()
        assert np.array_equal(t, (np.arange(len(s)) / 30).astype(np.float32))  # LeRobot's own convention
        cap = rows.column("capture_s").to_numpy()
        assert np.array_equal(cap, (s.timestamps - s.timestamps[0]) / 1e9)  # the recorded times, gaps included
    # The engine's windows: the same last frames and labels as the Windows parts.
    for name, part in parts.items():
        tw = pq.read_table(out / "meta" / "engine" / f"windows-{name}.parquet")
        sess, ends = part.index
        assert np.array_equal(tw.column("frame_index").to_numpy(), ends)
        ep_names = [episodes[e]["engine/session"] for e in tw.column("episode_index").to_numpy()]
        assert ep_names == [part.sessions[i].name for i in sess]
        labels = np.asarray(tw.column("label").to_pylist(), np.uint8)
        assert np.array_equal(labels, part.labels)


def test_lerobot_reads_with_hugging_face_datasets(root: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    w = Windows(["k1", "k3"], window=3, data_dir=root)
    export_lerobot(w, tmp_path / "lr")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "lr" / "data" / "*" / "*.parquet"),
                               split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 203 + 120
    row = ds[210]
    s = Session.open(root / "sessions" / "k3")
    assert row["episode_index"] == 1 and row["frame_index"] == 7
    assert np.array_equal(np.asarray(row[IMAGE_KEY]), s.frames[7])
    assert row["action"] == [float(v) for v in s.actions[7]]


def test_webdataset_shards_hold_every_window_once(root: Path, tmp_path: Path) -> None:
    from engine.dataset.webdataset import _sample_bytes

    w = Windows(["k1", "k2"], window=4, skip=2, encoding="combo", data_dir=root)
    out = tmp_path / "wds"
    r = export_webdataset(w, out, shard_bytes=20_000, seed=3)
    index = json.loads((out / "index.json").read_text())
    shards = index["parts"]["all"]["shards"]
    wanted = -(-len(w) * _sample_bytes(4 * 60) // 20_000)  # as many shards as 20 kB each needs
    assert r.files == len(shards) and wanted - 2 <= len(shards) <= wanted
    assert sum(s["samples"] for s in shards) == len(w)
    assert sorted(p.name for p in out.glob("*.tar")) == [s["file"] for s in shards]
    seen: list[int] = []
    stretches: list[bool] = []
    for s in shards:
        with tarfile.open(out / s["file"]) as tar:
            members = tar.getmembers()
            files = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
        keys = sorted({n.split(".", 1)[0] for n in files})
        assert len(files) == 3 * len(keys) == 3 * s["samples"]
        here = []
        for k in keys:
            meta = json.loads(files[f"{k}.json"])
            x = np.load(io.BytesIO(files[f"{k}.x.npy"]))
            y = np.load(io.BytesIO(files[f"{k}.y.npy"]))
            gx, gy = w[meta["window"]]
            assert np.array_equal(x, gx) and y.shape == () and int(y) == gy, (y, gy)
            here.append(meta["window"])
        seen += here
        stretches.append(len(here) > 1 and max(here) - min(here) + 1 == len(here))
    assert sorted(seen) == list(range(len(w)))  # every window, once
    assert sum(stretches) < len(shards) // 4  # mixed: a shard's windows are not one stretch of the data
    # Without shuffle, shards hold consecutive stretches.
    r2 = export_webdataset(w, tmp_path / "plain", shard_bytes=20_000, shuffle=False)
    with tarfile.open(tmp_path / "plain" / "all-000000.tar") as tar:
        first = sorted(json.loads(tar.extractfile(m).read())["window"]  # type: ignore[union-attr]
                       for m in tar.getmembers() if m.name.endswith(".json"))
    assert first == list(range(len(first))) and r2.items == len(w)


# webdataset leaves its shard files to the garbage collector (a ResourceWarning, not ours).
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_webdataset_reads_with_the_webdataset_package(root: Path, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    w = Windows(["k1"], window=3, data_dir=root)
    export_webdataset(w, tmp_path / "wds", shard_bytes=10_000)
    urls = sorted(str(p) for p in (tmp_path / "wds").glob("*.tar"))
    n = 0
    for x, y, meta in wds.WebDataset(urls, shardshuffle=False).decode().to_tuple("x.npy", "y.npy", "json"):
        gx, gy = w[meta["window"]]
        assert np.array_equal(x, gx) and np.array_equal(y, gy)
        n += 1
    assert n == len(w)


def test_directory_exports_are_atomic(root: Path, tmp_path: Path) -> None:
    w = Windows(["k1"], window=3, data_dir=root)
    (tmp_path / "taken").mkdir()
    with pytest.raises(DatasetError, match="already exists"):
        export_lerobot(w, tmp_path / "taken")

    def stop(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    for export in (export_lerobot, export_webdataset):
        with pytest.raises(KeyboardInterrupt):
            export(w, tmp_path / "cut", progress=stop)  # type: ignore[operator]
        assert not (tmp_path / "cut").exists() and not (tmp_path / "cut.partial").exists()


def test_cli_build_lerobot_and_webdataset(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["build", "--game", "kart", "--data-dir", str(root), "--window", "4"]
    assert dataset_main([*base, "--format", "lerobot", "--out", str(tmp_path / "lr"), "--progress"]) == 0
    out = capsys.readouterr()
    assert "lerobot" in out.out and "MB/s" in out.err
    assert (tmp_path / "lr" / "meta" / "info.json").is_file()
    assert dataset_main([*base, "--split", "0.5,0.5", "--format", "webdataset", "--out", str(tmp_path / "w")]) == 0
    assert {p.name.split("-")[0] for p in (tmp_path / "w").glob("*.tar")} == {"train", "val"}
    capsys.readouterr()
    assert dataset_main(["info", str(tmp_path / "lr")]) == 0
    assert "LeRobot dataset v3.0, 3 episodes, 473 frames at 30 fps" in capsys.readouterr().out
    assert dataset_main(["info", str(tmp_path / "w")]) == 0
    assert "train:" in capsys.readouterr().out
    assert dataset_main([*base, "--format", "lerobot", "--out", str(tmp_path / "lr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]
    assert dataset_main(["info", str(root)]) == 2
    assert "not a LeRobot or WebDataset export" in capsys.readouterr().err


@pytest.mark.slow
# Ray warns about its own deprecated settings and leaves sockets to the garbage collector: not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_ray_data_reads_the_lerobot_export_as_the_same_windows(root: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from engine.dataset.ray_reader import read_windows

    w = Windows(["k1", "k2", "k3"], window=4, skip=2, data_dir=root)
    parts = w.split((0.5, 0.5), by="time")
    export_lerobot(parts, tmp_path / "lr")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 << 20)
    try:
        rows = read_windows(tmp_path / "lr", "val").take_all()
    finally:
        ray.shutdown()
    rows.sort(key=lambda r: r["window_index"])
    val = parts["val"]
    gx, gy = val.gather(np.arange(len(val)))
    assert [r["window_index"] for r in rows] == list(range(len(val)))
    assert np.array_equal(np.stack([r["x"] for r in rows]), gx)
    assert np.array_equal(np.stack([r["y"] for r in rows]), gy)
