"""The Windows build of native/: cross-built with mingw-w64, every native test run under Wine by name.

scripts/windows_test.sh does the work (build into build/windows, Wine prefix, its own Xvfb, then each test
of both binaries in its own process: ``--list``, then ``--run NAME``); this module runs it once and reports
one item per native test, so a failure names it. The names come from the ENGINE_TEST(name) lines of the
sources; the script runs what the binaries list, and every listed name must be one of them and vice versa.
Skipped only when mingw-w64 or Wine is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "windows_test.sh"
BINARIES = {"native_tests.exe": "native_tests.cpp", "native_tests_win.exe": "native_tests_win.cpp"}


def _names(source: str) -> list[str]:
    return re.findall(r"^ENGINE_TEST\((\w+)\)", (ROOT / "native" / "tests" / source).read_text(), flags=re.M)


NAMES = {exe: _names(src) for exe, src in BINARIES.items()}


def _missing_tools() -> list[str]:
    missing = []
    if shutil.which("x86_64-w64-mingw32-g++-posix") is None:
        missing.append("g++-mingw-w64-x86-64-posix")
    if not (shutil.which("wine64") or Path("/usr/lib/wine/wine64").exists() or shutil.which("wine")):
        missing.append("wine64")
    return missing


@pytest.fixture(scope="module")
def wine_run() -> dict[str, str]:
    """The script's output per binary (its "---- exe" sections), after asserting the run as a whole passed."""
    missing = _missing_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    # Without DISPLAY the script starts an Xvfb of its own: the session's display is shared with
    # other tests' windows, which would land in the captured pixels.
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    run = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1800, env=env)
    out = run.stdout + run.stderr
    sections = dict(re.findall(r"windows_test: ---- (\S+)\n(.*?)(?=windows_test: ---- |windows_test: done)", out,
                               flags=re.S))
    assert set(sections) == set(BINARIES), out
    return {**sections, "": out}


@pytest.mark.slow
def test_script_passes_and_runs_every_listed_test(wine_run: dict[str, str]) -> None:
    out = wine_run[""]
    assert "windows_test: done" in out and ", 0 of 2 test binaries failed" in out, out
    for exe, names in NAMES.items():
        ran = re.findall(r"^(?:PASS|FAIL) (\w+)$", wine_run[exe], flags=re.M)
        assert ran == names, f"{exe}: ran {ran}, the source registers {names}"


@pytest.mark.slow
@pytest.mark.parametrize(("exe", "name"), [(exe, n) for exe, names in NAMES.items() for n in names])
def test_native_under_wine(wine_run: dict[str, str], exe: str, name: str) -> None:
    section = wine_run[exe]
    assert re.search(rf"^PASS {name}$", section, flags=re.M), section


@pytest.mark.slow
def test_dxgi_falls_back_to_gdi_under_wine(wine_run: dict[str, str]) -> None:
    # Wine has no Desktop Duplication: the DXGI grabber must have fallen back to GDI, saying why.
    assert "backend gdi; fallback reason: DXGI Desktop Duplication is unavailable" in wine_run["native_tests_win.exe"]
