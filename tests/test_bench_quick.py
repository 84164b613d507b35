"""The benchmark suite runs, so it cannot rot: ``pytest bench/`` in quick mode, in a subprocess, once.

The benchmarks check what they measure (real frames, counts, labels, keys on the X server), never how fast
it was, so this passes on any machine that runs the engine; the numbers go to a temporary directory, not
over the developer's bench/results/latest.json.
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
        [sys.executable, "-m", "pytest", "bench/", "--bench-mode", "quick", "-x", "-q", "-p", "no:cacheprovider",
         "--benchmark-disable", "--bench-results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "latest.json").read_text())
    assert out["mode"] == "quick" and out["machine"]["cores"]
    modules = {p.stem for p in (ROOT / "bench").glob("test_*.py")}
    reported = {row["module"] for row in out["rows"]}
    assert modules <= reported, f"bench modules without rows: {sorted(modules - reported)}"
    for row in out["rows"]:
        assert row["group"] and row["name"] and row["unit"] and row["value"] == row["value"], row  # no NaN
    profiles = [title for title in out["texts"] if title.startswith("line_profiler:")]
    assert len(profiles) == 2 and len(list(tmp_path.glob("line_profiler_*.txt"))) == 2
