"""The benchmark suite runs, so it cannot rot: ``pytest bench/`` in quick mode with smoke sizes (the slowest
benchmarks shrunk: a bench that runs, not figures to quote), in a subprocess, once.

The benchmarks check what they measure (real frames, counts, labels, keys on the X server), never how fast
it was, so this passes on any machine that runs the engine; the numbers go to a temporary directory, not
over the developer's bench/results/latest.json. A run of one bench module writes a partial-*.json instead of
latest.json, and its side-by-side table comes after pytest-benchmark's own tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_bench_runs_and_reports_every_module(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/", "--bench-mode", "quick", "--bench-smoke", "-x", "-q", "-p",
         "no:cacheprovider", "--benchmark-disable", "--bench-results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "latest.json").read_text())  # the whole bench ran: latest.json, no partial-*
    assert not list(tmp_path.glob("partial-*.json"))
    modules = {p.stem for p in (ROOT / "bench").glob("test_*.py")}
    assert out["mode"] == "quick" and out["smoke"] is True and out["machine"]["cores"]
    assert out["complete"] is True and set(out["modules"]) == modules and not out["not_passed"]
    assert f"written: {tmp_path / 'latest.json'}" in proc.stdout
    reported = {row["module"] for row in out["rows"]}
    assert modules <= reported, f"bench modules without rows: {sorted(modules - reported)}"
    for row in out["rows"]:
        assert row["group"] and row["name"] and row["unit"] and row["value"] == row["value"], row  # no NaN
    profiles = [title for title in out["texts"] if title.startswith("line_profiler:")]
    assert len(profiles) == 2 and len(list(tmp_path.glob("line_profiler_*.txt"))) == 2


def test_one_bench_module_writes_a_partial_file_and_prints_the_table_last(tmp_path: Path) -> None:
    # bench/test_pacing.py: the quickest module (a few seconds, no display), with pytest-benchmark's timing on.
    (tmp_path / "latest.json").write_text("{}")  # a previous full run's, which a partial run must leave alone
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/test_pacing.py", "--bench-mode", "quick", "-q", "-p",
         "no:cacheprovider", "--bench-results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert (tmp_path / "latest.json").read_text() == "{}"
    out = json.loads((tmp_path / "partial-pacing.json").read_text())
    assert out["mode"] == "quick" and out["complete"] is False and out["modules"] == ["test_pacing"]
    assert "test_record" in out["missing_modules"] and {row["module"] for row in out["rows"]} == {"test_pacing"}
    text = proc.stdout
    ours, theirs = text.index("engine benchmarks (quick mode, test_pacing)"), text.index("benchmark 'pacing")
    assert theirs < ours, "the side-by-side table must come after pytest-benchmark's tables"
    assert f"written: {tmp_path / 'partial-pacing.json'} (a partial run" in text[ours:]
