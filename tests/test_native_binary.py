"""native/ builds and passes its own tests without Python, one pytest item per native test name.

The names come from the ENGINE_TEST(name) lines of the source (collection needs no build); the binary's
``--list`` must say the same, so a test the parse missed cannot go unrun.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "native-tests"
SOURCE = ROOT / "native" / "tests" / "native_tests.cpp"


def native_test_names(source: Path) -> list[str]:
    """The tests a native test file registers, in order (tests/harness.hpp's ENGINE_TEST)."""
    return re.findall(r"^ENGINE_TEST\((\w+)\)", source.read_text(), flags=re.M)


NAMES = native_test_names(SOURCE)


@pytest.fixture(scope="module")
def native_tests() -> Path:
    cmake = shutil.which("cmake")
    assert cmake is not None, "cmake is missing: run make setup"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run([cmake, "-S", str(ROOT / "native"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release", *gen],
                   check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(BUILD)], check=True, capture_output=True)
    return BUILD / "native_tests"


def test_binary_lists_the_tests_of_its_source(native_tests: Path) -> None:
    run = subprocess.run([str(native_tests), "--list"], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.split() == NAMES
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_native(native_tests: Path, name: str) -> None:
    run = subprocess.run([str(native_tests), "--run", name], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and f"PASS {name}\n" in run.stdout, run.stdout + run.stderr


def test_unknown_name_is_an_error(native_tests: Path) -> None:
    run = subprocess.run([str(native_tests), "--run", "no_such_test"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "no test named 'no_such_test'" in run.stderr
