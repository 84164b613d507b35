"""Benchmark harness: a real Xvfb with game-like content, quick/full modes, and one side-by-side table.

Every benchmark measures the engine and its reference in the same run and records rows with
``report.add(...)``; at the end of ``pytest bench/`` the rows are printed as one table, after
pytest-benchmark's own tables (so it is the last thing on screen before pytest's summary line), and
written to bench/results/ with a description of the machine, the mode and the bench modules that ran.
Only a complete run (every bench module, nothing deselected or picked by node id, every test passed)
writes ``latest.json``; any other run writes ``partial-<modules>.json`` beside it, so running one file
never replaces the full picture. Benchmarks assert that what they ran is right (real frames, counts),
never how fast it was.
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

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-mode", choices=("quick", "full"), default="quick",
                     help="quick: a few minutes in all; full: more rounds and longer runs")
    parser.addoption("--bench-results", default=str(RESULTS), metavar="DIR",
                     help="where latest.json (partial-*.json for a partial run) and the line_profiler tables go "
                          "(default bench/results)")
    parser.addoption("--bench-smoke", action="store_true",
                     help="with quick mode: the slowest benchmarks at a fraction of their sizes, so the suite can run "
                          "the bench to prove it works (tests/test_bench_quick.py); its figures are not for quoting")
    parser.addoption("--bench-load", type=int, default=0, metavar="N",
                     help="keep N busy-loop processes running during the bench (N = cores: both cores busy), to "
                          "measure the tails a loaded machine sees (issue #19)")


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


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    """--bench-smoke: the slowest benchmarks shrink (a bench that runs, not one that measures well)."""
    return bool(request.config.getoption("--bench-smoke"))


_SELECTED: list[str] = []  # node ids of the bench tests selected to run
_DESELECTED: list[str] = []
_OUTCOMES: dict[str, str] = {}  # node id -> "passed" / "failed" / "skipped", from the call phase (or a setup error)


def pytest_collection_finish(session: pytest.Session) -> None:
    _SELECTED[:] = [item.nodeid for item in session.items]  # final: after -k/-m/--lf deselection


def pytest_deselected(items: list[pytest.Item]) -> None:
    _DESELECTED.extend(item.nodeid for item in items)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # The call's outcome, unless a phase failed or skipped (a failed or skipped setup never reaches the call;
    # a failed teardown comes after a passed one): the first outcome that is not "passed" sticks.
    if (report.when == "call" or report.outcome != "passed") and _OUTCOMES.get(report.nodeid, "passed") == "passed":
        _OUTCOMES[report.nodeid] = report.outcome


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).stem


def _coverage(config: pytest.Config) -> dict[str, Any]:
    """Which bench modules ran, and whether the run was the whole bench: every bench/test_*.py module
    selected, no test deselected (-k, -m) or picked by node id (file.py::test), every selected test
    passed. Only such a run stands for the bench as a whole."""
    every = sorted(p.stem for p in BENCH.glob("test_*.py"))
    ran = sorted({_module(n) for n in _SELECTED})
    by_node_id = any("::" in str(arg) for arg in config.args)
    not_passed = sorted(n for n in _SELECTED if _OUTCOMES.get(n) != "passed")
    complete = ran == every and not _DESELECTED and not by_node_id and not not_passed
    return {"complete": complete, "modules": ran, "missing_modules": sorted(set(every) - set(ran)),
            "deselected": len(_DESELECTED), "selected_by_node_id": by_node_id, "not_passed": not_passed}


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables, so the side-by-side table is not buried
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
    coverage = _coverage(terminalreporter.config)
    if coverage["complete"]:
        path = results / "latest.json"
    else:
        names = "+".join(m.removeprefix("test_") for m in coverage["modules"]) or "none"
        path = results / f"partial-{names}.json"
    out = {"mode": _REPORT.mode, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **coverage,
           "smoke": bool(terminalreporter.config.getoption("--bench-smoke")),
           "bench_load": int(terminalreporter.config.getoption("--bench-load")),  # busy processes run beside
           "machine": machine(), "rows": [asdict(r) for r in _REPORT.rows], "texts": dict(_REPORT.texts)}
    path.write_text(json.dumps(out, indent=1))
    ran = ", ".join(coverage["modules"])
    load = f", {out['bench_load']} busy processes beside it" if out["bench_load"] else ""
    load += ", smoke sizes: not figures to quote" if out["smoke"] else ""
    terminalreporter.section(f"engine benchmarks ({_REPORT.mode} mode{load}, {ran}): side by side, "
                             "ratios from this run")
    terminalreporter.write_line(_REPORT.table())
    if coverage["complete"]:
        terminalreporter.write_line(f"written: {path}")
    else:
        why = [f"missing {', '.join(coverage['missing_modules'])}" if coverage["missing_modules"] else "",
               f"{coverage['deselected']} deselected" if coverage["deselected"] else "",
               "tests picked by node id" if coverage["selected_by_node_id"] else "",
               f"{len(coverage['not_passed'])} not passed" if coverage["not_passed"] else ""]
        terminalreporter.write_line(f"written: {path} (a partial run: {'; '.join(w for w in why if w)}; "
                                    f"{path.parent / 'latest.json'} is left as it was)")


@pytest.fixture(scope="session", autouse=True)
def background_load(request: pytest.FixtureRequest) -> Iterator[int]:
    """--bench-load N: N processes spinning at normal priority for the whole run (a loaded machine)."""
    n = int(request.config.getoption("--bench-load"))
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield n
    finally:
        for p in procs:
            p.kill()
            p.wait()


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
