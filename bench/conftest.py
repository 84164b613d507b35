"""Benchmark harness: a real Xvfb with game-like content, quick/full modes, and one side-by-side table.

Every benchmark measures the engine and its reference in the same run and records rows with
``report.add(...)``; at the end of ``pytest bench/`` the rows are printed as one table and written to
bench/results/latest.json with a description of the machine. Benchmarks assert that what they ran is
right (real frames, counts), never how fast it was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import ROOT, DemoGame, Report, game_scene, machine

from engine.xvfb import Xvfb, virtual_display

RESULTS = Path(__file__).parent / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-mode", choices=("quick", "full"), default="quick",
                     help="quick: a few minutes in all; full: more rounds and longer runs")
    parser.addoption("--bench-results", default=str(RESULTS), metavar="DIR",
                     help="where latest.json and the line_profiler tables go (default bench/results)")


_REPORT: Report | None = None


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> Report:
    global _REPORT
    if _REPORT is None:
        _REPORT = Report(request.config.getoption("--bench-mode"))
    return _REPORT


@pytest.fixture(scope="session")
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--bench-mode"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT is None or not _REPORT.rows:
        return
    results = Path(terminalreporter.config.getoption("--bench-results"))
    results.mkdir(parents=True, exist_ok=True)
    for title, text in _REPORT.texts:
        terminalreporter.section(title, sep="-")
        terminalreporter.write_line(text)
        slug = re.sub(r"[^a-z0-9]+", "_", title.split("(")[0].lower()).strip("_")[:96]
        (results / f"{slug}.txt").write_text(f"{title}\n\n{text}\n")
    terminalreporter.section(f"engine benchmarks ({_REPORT.mode} mode): side by side, ratios from this run")
    terminalreporter.write_line(_REPORT.table())
    out = {"mode": _REPORT.mode, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(), "rows": [asdict(r) for r in _REPORT.rows],
           "texts": dict(_REPORT.texts)}
    (results / "latest.json").write_text(json.dumps(out, indent=1))
    terminalreporter.write_line(f"written: {results / 'latest.json'}")


@pytest.fixture(scope="session")
def xvfb() -> Iterator[Xvfb]:
    """A 1920x1080x24 Xvfb; DISPLAY points at it."""
    with virtual_display() as server:
        yield server


@pytest.fixture(scope="session")
def screen_content(xvfb: Xvfb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[np.ndarray]:
    """Fill the whole 1920x1080 screen with a real X11 window showing a game-like image."""
    image = game_scene(1080, 1920, seed=11)
    path = tmp_path_factory.mktemp("screen") / "screen.npy"
    np.save(path, image)
    env = dict(os.environ, DISPLAY=xvfb.display)
    helper = ROOT / "tests" / "helpers" / "image_window.py"
    proc = subprocess.Popen([sys.executable, str(helper), "bench-screen", "0", "0", str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("READY")
    time.sleep(0.3)
    try:
        yield image
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.stdout.close()
        proc.wait(5)




@pytest.fixture
def demo_game(xvfb: Xvfb) -> Iterator[Callable[..., DemoGame]]:
    """Factory: demo_game(*engine-demo args) -> a running DemoGame on the bench display, stopped after the test."""
    games: list[DemoGame] = []

    def start(*args: str) -> DemoGame:
        game = DemoGame(xvfb.display, *args)
        games.append(game)
        return game

    yield start
    for game in games:
        game.stop()
