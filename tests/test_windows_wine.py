"""The Windows build of native/: cross-built with mingw-w64, both test binaries run under Wine.

scripts/windows_test.sh does the work (build into build/windows, Wine prefix, its own Xvfb); this
test runs it and checks both binaries passed. Skipped only when mingw-w64 or Wine is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "windows_test.sh"


def _missing_tools() -> list[str]:
    missing = []
    if shutil.which("x86_64-w64-mingw32-g++-posix") is None:
        missing.append("g++-mingw-w64-x86-64-posix")
    if not (shutil.which("wine64") or Path("/usr/lib/wine/wine64").exists() or shutil.which("wine")):
        missing.append("wine64")
    return missing


@pytest.mark.slow
def test_windows_build_passes_under_wine() -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    # Without DISPLAY the script starts an Xvfb of its own: the session's display is shared with
    # other tests' windows, which would land in the captured pixels.
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    run = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1200, env=env)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "native_tests.exe passed" in out and "native_tests_win.exe passed" in out, out
    assert "\nFAIL " not in out, out
    # Every check of both binaries ran (9 portable, 16 Windows).
    assert out.count("\nPASS ") >= 9 + 16, out
    # Wine has no Desktop Duplication: the DXGI grabber must have fallen back to GDI, saying why.
    assert "backend gdi; fallback reason: DXGI Desktop Duplication is unavailable" in out, out
