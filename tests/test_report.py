"""engine-report on real data: a session recorded from a real window on Xvfb with real XTest keys, and the
telemetry of a real engine-play run; the PNG is decoded back by SDL_image (pygame.image.load), an
implementation independent of the engine's encoder, and compared pixel for pixel with what was drawn."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scenes import scene

from engine import _native
from engine.actions.outputs import XTestOutput
from engine.capture import open_source
from engine.cli.report import main
from engine.model.model import Model
from engine.play.loop import Player
from engine.record import RecordConfig, Recorder
from engine.report import Rendered, build_report, load, pacing, render
from engine.report.canvas import PNG_SIGNATURE, area_resize, encode_png, nice_ceil, nice_ticks
from engine.report.render import HIST_LABEL_ROOM
from engine.session import Session, SessionWriter
from engine.xvfb import Xvfb

MODELS = Path(__file__).parent / "fixtures" / "models"
TIMEOUT = 20.0  # a guard against hangs, never a performance claim


def decode_png(data: bytes) -> np.ndarray:
    """(H, W, 3) RGB through SDL_image, not through the engine's code."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    surface = pygame.image.load(io.BytesIO(data), "x.png")
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, each CRC checked."""
    assert data[:8] == PNG_SIGNATURE
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + payload) & 0xFFFFFFFF, tag
        out.append((tag, payload))
        pos += 12 + n
    return out


def png_size(data: bytes) -> tuple[int, int]:
    tag, ihdr = png_chunks(data)[0]
    assert tag == b"IHDR"
    w, h, depth, color, _, _, _ = struct.unpack(">IIBBBBB", ihdr)
    assert depth == 8 and color in (0, 2)
    return w, h


def assert_panels_drawn(drawn: Rendered, image: np.ndarray, names: set[str]) -> None:
    """Each plot is there and has its data drawn inside its frame: over time, one unbroken line across more
    than half the plot (the axis also spans the last decision's hold, and the rate starts at the second
    sample: a short play log's line stops short of the right edge); in a histogram, bars that stop below
    its "tallest bar" label."""
    assert set(drawn.panels) == names
    for name, (x, y, w, h) in drawn.panels.items():
        ink = np.all(image[y:y + h, x:x + w] == drawn.panel_ink[name], axis=2)
        cols = np.flatnonzero(ink.any(axis=0))
        assert len(cols), f"{name}: nothing drawn"
        if name in ("latency", "latency minus invoke"):
            assert not ink[: HIST_LABEL_ROOM - 4].any(), f"{name}: a bar reaches the label row"
        else:
            assert cols[-1] - cols[0] + 1 == len(cols) > w / 2, f"{name}: its line covers {len(cols)} of {w} columns"


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse errors (engine.cli.args.Parser exits 2)
        return int(e.code or 0)


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (3, 5, 3), (17, 33, 3), (17, 33), (64, 7, 3)])
def test_png_encoder_round_trips_through_sdl_image(shape: tuple[int, ...]) -> None:
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(img)
    assert png_size(data) == (shape[1], shape[0])
    assert [t for t, _ in png_chunks(data)] == [b"IHDR", b"IDAT", b"IEND"]
    want = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    assert np.array_equal(decode_png(data), want)


def test_png_encoder_refuses_what_it_cannot_write() -> None:
    for bad in (np.zeros((0, 4, 3), np.uint8), np.zeros((2, 2, 4), np.uint8), np.zeros((2, 2), np.float32)):
        with pytest.raises(ValueError):
            encode_png(bad)


def area_resize_reference(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """The definition, one output pixel at a time: the mean over its source box (edges floor(k * N / n)),
    or the nearest source pixel along an axis that grows."""
    src = img.astype(np.float64)
    out = np.zeros((h, w, *img.shape[2:]))
    H, W = img.shape[:2]

    def span(k: int, n: int, size: int) -> slice:
        if n >= size:
            i = k * size // n
            return slice(i, i + 1)
        return slice(k * size // n, (k + 1) * size // n)

    for y in range(h):
        for x in range(w):
            out[y, x] = src[span(y, h, H), span(x, w, W)].mean(axis=(0, 1))
    return np.round(out).astype(np.uint8)


@pytest.mark.parametrize(("src", "dst"), [((24, 32), (8, 16)), ((37, 53), (11, 19)), ((10, 10), (25, 13)),
                                         ((120, 160), (104, 138)), ((5, 7), (5, 7))])
def test_area_resize_equals_its_definition(src: tuple[int, int], dst: tuple[int, int]) -> None:
    rng = np.random.default_rng(src[0] * 1000 + dst[1])
    for shape in (src, (*src, 3)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(area_resize(img, dst[1], dst[0]), area_resize_reference(img, dst[1], dst[0]))


def test_axis_helpers_give_round_numbers() -> None:
    assert nice_ticks(0, 5, 10).tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]
    assert nice_ticks(0, 5.03, 10).tolist() == [0, 1, 2, 3, 4, 5]  # at most about `count` ticks
    assert nice_ticks(-0.2, 0.2, 4).tolist() == [-0.2, -0.1, 0, 0.1, 0.2]
    assert [nice_ceil(v) for v in (0.013, 45, 100, 7)] == [0.02, 50, 100, 10]


# ---------------------------------------------------------------- a real recorded session


def record_session(tmp_path: Path, display: str, win: Any) -> Session:
    """Two seconds of a real window at 30 fps; midway the window shows another image. Meanwhile XTest
    holds `right` for a while and taps `left`; `up` is recorded but never pressed."""
    act = _native.XTestActuator(display, ["left", "right", "up"])
    other = scene(120, 160, seed=32)

    def play() -> None:
        time.sleep(0.3)
        act.apply(np.array([0, 1, 0], np.uint8))
        time.sleep(0.5)
        act.apply(np.array([0, 0, 0], np.uint8))
        win.show(other)
        for _ in range(3):
            time.sleep(0.1)
            act.apply(np.array([1, 0, 0], np.uint8))
            time.sleep(0.02)
            act.apply(np.array([0, 0, 0], np.uint8))
        act.release_all()

    cfg = RecordConfig(actions=["left", "right", "up"], data_dir=tmp_path, countdown=0, game="report-test",
                       name="rec", fps=30.0, window="report-me", duration=2.0)
    thread = threading.Thread(target=play)
    thread.start()
    try:
        summary = Recorder(cfg).run(install_signals=False)
    finally:
        thread.join()
    return Session.open(summary.path)


def test_report_of_a_recorded_session(xvfb: Xvfb, image_window: Callable[..., Any], tmp_path: Path) -> None:
    win = image_window(scene(120, 160, seed=31), title="report-me")
    ses = record_session(tmp_path, xvfb.display, win)
    t = len(ses)
    assert t >= 30 and ses.actions[:, 1].any() and ses.actions[:, 0].any() and not ses.actions[:, 2].any()

    report = build_report(ses.path, tmp_path / "out")
    assert report.png == tmp_path / "out" / "rec.report.png" and report.html == tmp_path / "out" / "rec.report.html"
    data = report.png.read_bytes()
    assert png_size(data) == (report.width, report.height) == (1200, report.height)
    decoded = decode_png(data)
    run = load(ses.path)
    drawn = render(run, pacing(run))
    assert np.array_equal(decoded, drawn.image)  # what was drawn is what the file holds

    # The strip: 8 thumbnails from the first frame to the last, evenly spaced, each the frame itself.
    picks = [i for i, _ in drawn.thumbs]
    assert len(picks) == 8 and picks[0] == 0 and picks[-1] == t - 1
    assert np.ptp(np.diff(picks)) <= 1
    for i, (x, y, w, h) in drawn.thumbs:
        thumb = area_resize(np.asarray(ses.frames[i]), w, h)
        assert np.array_equal(decoded[y:y + h, x:x + w], np.repeat(thumb[..., None], 3, axis=2)), i
    first, last = drawn.thumbs[0][1], drawn.thumbs[-1][1]
    assert not np.array_equal(decoded[first[1]:first[1] + first[3], first[0]:first[0] + first[2]],
                              decoded[last[1]:last[1] + last[3], last[0]:last[0] + last[2]])  # the image changed

    # The timeline: bars in the lanes of the pressed keys, none in the lane of the key never pressed.
    assert [name for name, _ in drawn.lanes] == ["left", "right", "up"]
    for (name, (x, y, w, h)), color in zip(drawn.lanes, drawn.bar_colors, strict=True):
        bar = np.all(decoded[y:y + h, x:x + w] == color, axis=2)
        assert bar.any() == (name != "up"), name
    # `right` was held for about half a second of two: its bar covers far more columns than a 1-frame tap.
    right = drawn.lanes[1][1]
    cols = np.all(decoded[right[1]:right[1] + right[3], right[0]:right[0] + right[2]] == drawn.bar_colors[1],
                  axis=2).any(axis=0)
    assert cols.sum() > 5 * 1072 / (2 * 30)
    assert_panels_drawn(drawn, decoded, {"rate", "pacing"})

    # The page: the same PNG embedded, the numbers as text.
    page = report.html.read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert base64.b64decode(page.split("data:image/png;base64,")[1].split('"')[0]) == data
    rows = dict(report.rows)
    assert f"<tr><th>frames</th><td>{t}</td></tr>" in page
    assert rows["target rate"].startswith("30.000 Hz") and "missed schedule slots" in rows
    assert rows["action up"] == "held in 0.0% of frames, 0 presses"
    assert rows["action left"].endswith(", 3 presses") and rows["action right"].endswith(", 1 press")


def test_report_cli_defaults_beside_the_session(xvfb: Xvfb, tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, name="tiny", game="t", fps=20.0, frame_shape=(24, 32), color="gray",
                              actions=["left"], resize=(32, 24), source={}) as w:
        buf = w.frames_buffer(10)
        buf[:] = np.arange(10, dtype=np.uint8)[:, None, None] * 20
        t = 10**9 + np.arange(10, dtype=np.int64) * 50_000_000
        t[6:] += 100_000_000  # two slots missed before frame 6
        w.commit(10, t, np.zeros((10, 1), np.uint8))
    env = dict(os.environ, ENGINE_DATA_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "engine.cli.report", "tiny"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "sessions" / "tiny.report.png"
    assert r.stdout.splitlines() == [f"report: {out} (1200x{png_size(out.read_bytes())[1]})",
                                     f"report: {out.with_suffix('.html')}"]
    run = load(tmp_path / "sessions" / "tiny")
    pace = pacing(run)
    assert pace.missed == 2 and pace.gap_t.tolist() == [t[6]]
    assert np.allclose(pace.error_ns, 0) and run.slots.tolist() == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]


@pytest.mark.parametrize("late", [0.3, 0.6])
def test_pacing_error_is_lateness_even_when_the_first_frame_is_late(tmp_path: Path, late: float) -> None:
    # 25 fps (40 ms), frames on time within 0..0.5 ms of jitter except the first, `late` periods late, and
    # two slots missed before frame 20. Anchored on the first frame, every other error would be about
    # -late periods; past half a period, the nearest-slot rule would also give frames 0 and 1 one slot.
    period = 40_000_000
    n = 40
    slots = np.r_[np.arange(20), np.arange(22, 22 + n - 20)]
    jitter = np.random.default_rng(4).integers(0, 500_000, n)
    jitter[5] = 0  # one frame exactly on time: the schedule's origin is then exactly 10**9
    jitter[0] = round(late * period)
    t = 10**9 + slots * period + jitter
    with SessionWriter.create(tmp_path, name="late", game="t", fps=25.0, frame_shape=(24, 32), color="gray",
                              actions=["left"], resize=(32, 24), source={}) as w:
        w.frames_buffer(n)[:] = 128
        w.commit(n, t.astype(np.int64), np.zeros((n, 1), np.uint8))
    run = load(tmp_path / "sessions" / "late")
    pace = pacing(run)
    assert run.slots.tolist() == slots.tolist()
    assert pace.missed == 2 and pace.gap_t.tolist() == [t[20]]
    assert pace.s0_ns == 10**9 and np.array_equal(pace.error_ns, jitter.astype(np.float64))
    assert (pace.error_ns >= 0).all() and pace.error_ns.min() == 0
    rows = dict(build_report(tmp_path / "sessions" / "late").rows)
    assert rows["pacing error (lateness) p50 / p99 / max"].endswith(f" / {late * 40:.3f} ms")


def test_an_empty_session_still_gets_a_report(tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, name="empty", game="t", fps=30.0, frame_shape=(24, 32), color="gray",
                              actions=["left"], resize=(32, 24), source={}):
        pass
    report = build_report(tmp_path / "sessions" / "empty")
    assert png_size(report.png.read_bytes()) == (report.width, report.height)
    assert dict(report.rows)["frames"] == "0"


# ---------------------------------------------------------------- a real play log


def half_image(which: str) -> np.ndarray:
    img = np.full((96, 128, 3), 60, np.uint8)
    if which == "left":
        img[:, :64] = 220
    elif which == "right":
        img[:, 64:] = 220
    return img


def server_keys(display: str) -> list[bool]:
    return list(_native.XTestActuator(display, ["left", "right"]).system_held())


def wait_for(pred: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_report_of_a_play_log_npz_and_csv(xvfb: Xvfb, image_window: Callable[..., Any], tmp_path: Path) -> None:
    win = image_window(half_image("none"), title="report-play")
    output = XTestOutput(["left", "right"], xvfb.display)
    player = Player(Model.load(MODELS / "brighter_half.tflite"), output, duration=30, kill_key=None)
    thread = threading.Thread(target=lambda: player.live(open_source(window="report-play"), install_signals=False))
    thread.start()
    try:
        for which, keys in (("left", [True, False]), ("none", [False, False]), ("right", [False, True]),
                            ("none", [False, False])):
            win.show(half_image(which))
            wait_for(lambda k=keys: server_keys(xvfb.display) == k)  # type: ignore[misc]
    finally:
        player.stop("test over")
        thread.join()
        output.close()  # ends its watchdog process
    assert server_keys(xvfb.display) == [False, False]
    tel = player.telemetry.arrays()
    n = len(tel["tick"])
    player.telemetry.save(tmp_path / "play.npz", ["left", "right"])
    player.telemetry.save(tmp_path / "play.csv", ["left", "right"])

    reports = [build_report(tmp_path / name) for name in ("play.npz", "play.csv")]
    for rep in reports:
        data = rep.png.read_bytes()
        assert png_size(data) == (rep.width, rep.height)
        decoded = decode_png(data)
        run = load(rep.png.parent / rep.png.name.removesuffix(".report.png"))
        assert np.array_equal(decoded, render(run, pacing(run)).image)
        page = rep.html.read_text()
        assert f"<tr><th>decisions</th><td>{n}</td></tr>" in page
        assert "<tr><th>capture -&gt; keys minus invoke p50 / p99 / max</th>" in page
    assert reports[0].png.name == "play.npz.report.png" and reports[1].png.name == "play.csv.report.png"
    # Two formats of the same telemetry give the same numbers.
    assert reports[0].rows[1:] == reports[1].rows[1:]

    run = load(tmp_path / "play.npz")
    rows = dict(reports[0].rows)
    lat = (tel["t_sent_ns"] - tel["t_capture_ns"]) / 1e6
    assert rows["capture -> keys p50 / p99 / max"].startswith(f"{np.percentile(lat, 50):.3f} / ")
    assert run.slots.tolist() == (tel["tick"] - tel["tick"][0]).tolist()
    # Each key was pressed once and released once (the model followed the image), as the log says.
    for a, name in enumerate(["left", "right"]):
        assert (run.event_action == a).sum() == 2 and rows[f"action {name}"].endswith(", 1 press")
    drawn = render(run, pacing(run))
    for (_, (x, y, w, h)), color in zip(drawn.lanes, drawn.bar_colors, strict=True):
        assert np.all(drawn.image[y:y + h, x:x + w] == color, axis=2).any()
    assert_panels_drawn(drawn, drawn.image, {"rate", "pacing", "invoke", "latency", "latency minus invoke"})


# ---------------------------------------------------------------- bad input


def _write_bad(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / "in"
    if kind == "dir":
        p.mkdir()
    elif kind == "txt":
        p = tmp_path / "notes.txt"
        p.write_text("hello\n")
    elif kind == "npz-fields":
        p = tmp_path / "other.npz"
        np.savez(p, x=np.arange(3))
    elif kind == "npz-garbage":
        p = tmp_path / "garbage.npz"
        p.write_bytes(b"not a zip at all")
    elif kind == "csv-header":
        p = tmp_path / "table.csv"
        p.write_text("a,b\n1,2\n")
    elif kind == "csv-binary":
        p = tmp_path / "binary.csv"
        p.write_bytes(bytes(range(128, 256)))
    elif kind == "session-json":
        p.mkdir()
        (p / "meta.json").write_text("{not json")
    elif kind == "session-meta":
        p.mkdir()
        (p / "meta.json").write_text(json.dumps({"name": "x"}))
    elif kind == "missing":
        p = tmp_path / "nope"
    return p


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("dir", "is not a session (no meta.json)"),
        ("txt", "neither a session directory nor a play log"),
        ("npz-fields", "is not a play log: it has no tick"),
        ("npz-garbage", "is not a readable .npz archive"),
        ("csv-header", "is not a play log: its header has no tick"),
        ("csv-binary", "is not a valid play log CSV"),
        ("session-json", "is not valid JSON"),
        ("session-meta", "lacks game"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, kind: str, message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = run_main([str(_write_bad(tmp_path, kind))])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("engine-report: ") and message in lines[0], captured.err


def test_unwritable_out_and_missing_argument_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.zeros(0, np.int64)
    np.savez(tmp_path / "empty.npz", tick=t, t_capture_ns=t, t_invoke_ns=t, invoke_ns=t, t_sent_ns=t, skipped=t,
             events=t, decision=np.zeros((0, 1), np.uint8), actions=np.array(["left"]))
    (tmp_path / "file").write_text("")
    assert run_main([str(tmp_path / "empty.npz"), "--out", str(tmp_path / "file" / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the report" in err
    assert run_main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SESSION_OR_PLAY_LOG" in err
    assert run_main([str(tmp_path / "empty.npz")]) == 0  # an empty log is valid, just empty
    assert (tmp_path / "empty.npz.report.png").is_file()
