"""native/ builds and passes its own tests without Python (the same binary runs under Wine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "native-tests"


@pytest.fixture(scope="module")
def native_tests() -> Path:
    cmake = shutil.which("cmake")
    assert cmake is not None, "cmake is missing: run make setup"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run([cmake, "-S", str(ROOT / "native"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release", *gen],
                   check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(BUILD)], check=True, capture_output=True)
    return BUILD / "native_tests"


def test_native_self_tests_pass(native_tests: Path) -> None:
    run = subprocess.run([str(native_tests)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAIL" not in run.stdout and run.stdout.count("PASS") >= 9
