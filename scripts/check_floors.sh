#!/usr/bin/env bash
# The dependency floors pyproject.toml declares are the ones tested: a virtual environment in build/floors
# gets exactly the lowest version of every runtime dependency (each `>=X` pinned to `==X`), the engine
# built into it, and the tests that exercise those dependencies (capture against mss, sessions and
# datasets with NumPy/Numba/h5py, models through LiteRT, the demo game through pygame) run against it.
# Part of `make check`. Python itself: the venv uses the interpreter `make setup` uses, whose version is
# the declared floor (requires-python); the script refuses another.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DIR=build/floors
mkdir -p "$DIR"

want=$(sed -n 's/^requires-python = ">=\([0-9.]*\)"/\1/p' pyproject.toml)
have=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$want" != "$have" ]; then
  echo "check_floors: $PYTHON is Python $have; the declared floor is $want: run with PYTHON=python$want" >&2
  exit 1
fi

# Runtime dependencies, `name>=X[; marker]` -> `name==X[; marker]`, from [project] dependencies only.
"$PYTHON" - > "$DIR/floors.txt" <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for d in deps:
    pinned, n = re.subn(r">=", "==", d, count=1)
    if not n:
        raise SystemExit(f"check_floors: dependency {d!r} declares no floor (>=)")
    print(pinned)
PY

[ -x "$DIR/venv/bin/python" ] || "$PYTHON" -m venv "$DIR/venv"
VPY=$DIR/venv/bin/python
# pip's output goes to a log, shown only when a step fails.
pip_q() { $VPY -m pip install -q "$@" >"$DIR/pip.log" 2>&1 || { cat "$DIR/pip.log" >&2; exit 1; }; }
pip_q --upgrade pip
pip_q "setuptools>=77" wheel "scikit-build-core>=0.10" "pybind11>=2.13" "cython>=3.0" "cython-cmake>=0.2" ninja cmake
pip_q -r "$DIR/floors.txt"
# Test tools, never moving a runtime dependency off its floor.
pip_q -c "$DIR/floors.txt" "pytest>=8" hypothesis psutil "opencv-python-headless>=4.10"
pip_q --no-deps --no-build-isolation . -Cbuild-dir="$DIR/build"
echo "check_floors: testing against:"
$VPY -m pip list 2>/dev/null | grep -iE '^(numpy|numba|mss|evdev|ai-edge-litert|h5py|pygame) '
# From outside the source tree, so `import engine` is the installed build, not ./engine.
cd "$DIR"
venv/bin/pytest -q -p no:cacheprovider -m 'not slow' -c ../../pyproject.toml --rootdir ../.. \
  ../../tests/test_capture_x11.py ../../tests/test_session.py ../../tests/test_dataset.py \
  ../../tests/test_model.py ../../tests/test_kernels.py ../../tests/test_demo.py
