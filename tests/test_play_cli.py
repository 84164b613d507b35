"""engine-play as a user runs it: the real CLI in a subprocess, so crashes (signals), exit codes and exactly
what reaches stdout and stderr are what is asserted.

In-process tests cannot see these: a segfault kills pytest itself, and pytest's filterwarnings = error once
turned tf.lite's deprecation warning into an exception that hid the crash of a truncated model.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.session import SessionWriter
from engine.telemetry import STAGE_FIELDS, TELEMETRY_FIELDS

MODELS = Path(__file__).parent / "fixtures" / "models"
H, W = 24, 32  # brighter_half's frame: 32x24 gray at 30 fps


def play(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.play", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def own_lines(err: str) -> list[str]:
    """stderr without the lines every run prints (LiteRT's delegate notice, the model line)."""
    return [ln for ln in err.strip().splitlines() if not ln.startswith(("INFO:", "model "))]


def halves_session(data: Path, name: str, fps: float) -> None:
    """60 frames in brighter_half's format: 20 left-bright (labelled left), 20 right-bright, 20 even."""
    frames = np.full((60, H, W), 60, np.uint8)
    frames[:20, :, : W // 2] = 220
    frames[20:40, :, W // 2 :] = 220
    labels = np.zeros((60, 2), np.uint8)
    labels[:20, 0] = labels[20:40, 1] = 1
    with SessionWriter.create(data, name=name, game="t", fps=fps, frame_shape=(H, W), color="gray",
                              actions=["left", "right"], resize=(W, H), source={}) as w:
        w.frames_buffer(60)[:] = frames
        w.commit(60, 10**9 + np.arange(60, dtype=np.int64) * round(1e9 / fps), labels)


def test_truncated_model_is_one_line_never_a_signal(tmp_path: Path) -> None:
    # 50 cut points across the file (6818 is where tensorflow.lite used to segfault), in parallel batches.
    good = (MODELS / "brighter_half.tflite").read_bytes()
    cuts = sorted({*np.linspace(0, len(good) - 1, 50).astype(int).tolist(), 6818})
    for batch in (cuts[i : i + 8] for i in range(0, len(cuts), 8)):
        procs = []
        for cut in batch:
            path = tmp_path / f"cut{cut}.tflite"
            path.write_bytes(good[:cut])
            procs.append((cut, play("--model", str(path), "--actions", "left,right", "--dry-run",
                                    "--duration", "1", "--countdown", "0")))
        for cut, proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, f"cut at {cut}: exit {proc.returncode}: {err}"
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("engine-play: model file"), f"cut at {cut}: {err}"
            assert "empty" in lines[0] or "truncated or corrupt" in lines[0] or "no TFL3" in lines[0], lines[0]


def test_the_one_reading_of_a_sidecarless_model_is_said_in_one_line(tmp_path: Path) -> None:
    # slow.tflite stacks 4 channels (4 gray frames is the only reading that fits); no m.json beside the copy.
    model = tmp_path / "s.tflite"
    model.write_bytes((MODELS / "slow.tflite").read_bytes())
    proc = play("--model", str(model), "--actions", "left,right", "--color", "gray", "--replay", "nosuch",
                "--data-dir", str(tmp_path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err  # the session is missing, after the model loaded
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("INFO:")]
    assert lines[0].startswith(f"model {model} on ") and "4 x 84x84 gray" in lines[0]
    assert lines[1] == ("model input (1, 84, 84, 4) stacks 4 channels: read as 4 gray frames (the only reading "
                        "that fits --color gray)")
    assert lines[2].startswith("engine-play: no session 'nosuch'") and len(lines) == 3


@pytest.mark.parametrize(("sig", "kill_key"), [(signal.SIGINT, "f12"), (signal.SIGTERM, "f12"),
                                               (signal.SIGINT, "none")])
def test_a_signal_during_the_countdown_stops_cleanly(xvfb, sig: signal.Signals, kill_key: str) -> None:  # type: ignore[no-untyped-def]
    # The real XTest output (and its watchdog) is open during the countdown: it must be closed too.
    proc = play("--model", str(MODELS / "brighter_half.tflite"), "--countdown", "600", "--kill-key", kill_key)
    try:
        assert proc.stderr is not None
        seen = []
        while not (line := proc.stderr.readline()).startswith("playing in"):
            assert line, f"engine-play ended before its countdown: {''.join(seen)}"
            seen.append(line)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if kill_key == "none":
        assert "no kill switch" in line and "NONE" not in line, line
    else:
        assert "F12 or Ctrl-C stops" in line, line
    assert proc.returncode == 0, err  # a user stop, as during play
    assert out.splitlines() == [f"stopped by {sig.name} during the countdown; no key was sent"]
    assert "Traceback" not in err and not own_lines(err), err


def test_replay_refuses_a_session_at_another_rate(tmp_path: Path) -> None:
    halves_session(tmp_path, "fast", 60.0)
    model = str(MODELS / "brighter_half.tflite")  # its sidecar says 30 fps
    proc = play("--model", model, "--replay", "fast", "--data-dir", str(tmp_path))
    out, err = proc.communicate(timeout=60)
    lines = own_lines(err)
    assert proc.returncode == 2 and len(lines) == 1, err
    assert "60 fps" in lines[0] and "30 fps" in lines[0] and "--fps 60" in lines[0], lines[0]
    assert "agreement" not in out
    # An explicit --fps is the user's decision: the replay runs.
    proc = play("--model", model, "--replay", "fast", "--data-dir", str(tmp_path), "--fps", "60")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "agreement with the recorded actions" in out


def test_replay_npz_log_and_the_summary_agree(tmp_path: Path) -> None:
    halves_session(tmp_path, "halves", 30.0)
    log = tmp_path / "tel.npz"
    proc = play("--model", str(MODELS / "brighter_half.tflite"), "--replay", "halves", "--data-dir",
                str(tmp_path), "--log", str(log))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"telemetry: {log}" in err.splitlines()
    assert sorted(p.name for p in tmp_path.glob("tel*")) == ["tel.npz"]  # the name given, nothing appended

    with np.load(log) as z:
        data = {k: z[k] for k in z.files}
    assert set(data) == {*TELEMETRY_FIELDS, *STAGE_FIELDS, "decision", "frame_age_ns", "latency_ns", "actions"}
    assert data["actions"].tolist() == ["left", "right"]
    n = len(data["tick"])
    assert n > 10 and data["decision"].shape == (n, 2) and data["decision"].dtype == np.uint8
    assert all(data[k].shape == (n,) and data[k].dtype == np.int64 for k in TELEMETRY_FIELDS)
    tick = data["tick"]
    assert np.all(np.diff(tick) > 0) and tick[0] >= 1 and tick[-1] == 59  # window 2: the first ends at 1
    assert np.array_equal(data["skipped"][1:], np.diff(tick) - 1)
    assert np.array_equal(data["frame_age_ns"], data["t_invoke_ns"] - data["t_capture_ns"])
    assert np.array_equal(data["latency_ns"], data["t_sent_ns"] - data["t_capture_ns"])
    assert np.all(data["frame_age_ns"] >= 0) and np.all(data["invoke_ns"] > 0)
    assert np.all(data["t_sent_ns"] >= data["t_invoke_ns"] + data["invoke_ns"])
    # Decisions on windows wholly inside a block are that block's label (replay sends no keys: events 0).
    expect = {range(1, 20): [1, 0], range(21, 40): [0, 1], range(41, 60): [0, 0]}
    for block, held in expect.items():
        rows = np.isin(tick, list(block))
        assert rows.any() and (data["decision"][rows] == held).all(), block
    assert not data["events"].any()

    # The exit summary is computed from the same rows.
    played, timing = (ln for ln in out.splitlines() if ln.startswith(("played", "invoke")))
    assert played.startswith(f"played {n} decisions") and f"{data['skipped'].sum()} skipped" in played
    assert "stopped by end of replay" in played

    def ms(values: np.ndarray) -> tuple[str, str]:
        return tuple(f"{np.percentile(values, q) / 1e6:.2f}" for q in (50, 99))  # type: ignore[return-value]

    m = re.match(r"invoke p50 (\S+) ms p99 (\S+) ms \| capture->keys p50 (\S+) ms p99 (\S+) ms "
                 r"\(minus invoke p50 (\S+) p99 (\S+) ms\)", timing)
    assert m is not None, timing
    assert m.group(1, 2) == ms(data["invoke_ns"])
    assert m.group(3, 4) == ms(data["latency_ns"])
    minus = data["latency_ns"] - data["invoke_ns"]
    assert m.group(5, 6) == tuple(f"{np.percentile(minus, q) / 1e6:.3f}" for q in (50, 99))
