#!/usr/bin/env bash
# Project setup, idempotent: Debian packages when missing, a virtual environment in .venv, and an
# editable install of engine with its test, dev, train, env (gymnasium), torch and scale extras. Quick
# when everything is already there. The train extra (TensorFlow CPU, about 1.3 GB installed) is what runs
# engine-train and the end-to-end test; the torch extra (PyTorch CPU, litert-torch) runs engine-train
# --framework torch, engine.export and their tests; scale (pyarrow, Ray Data, datasets, webdataset, about
# 300 MB) runs the LeRobot/WebDataset exports and their read-back tests. ENGINE_EXTRAS=test,dev make setup
# leaves those and gymnasium out (those tests then skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: a C++20 compiler and the X11 headers (Xlib, MIT-SHM in Xext, Composite in Xcomposite, XInput2 in
# Xi, XTest in Xtst).
# Tests: Xvfb (virtual display), xdotool, x11-utils (xwininfo, xprop) and xinput (`xinput test-xi2`: a reference
# for XI2 raw events) to poke at windows, and headless
# weston with Xwayland (a Wayland desktop's XWayland windows, where the root window holds no pixels).
PACKAGES=(g++ make libx11-dev libxext-dev libxcomposite-dev libxi-dev libxtst-dev libxcb1-dev xvfb xauth xdotool x11-utils xinput
          weston xwayland g++-mingw-w64-x86-64-posix wine64)

# Python: the one that makes .venv ($PYTHON, python3 by default) must create a venv (Debian moves
# ensurepip into python3-venv) and have Python.h (python3-dev), which CMake's Development.Module needs.
# A Python that already can (pyenv's, say) is used as is; otherwise Debian's python3 is installed.
PYTHON_GIVEN=${PYTHON:+yes}
PYTHON=${PYTHON:-python3}
# usable PY [venv]: PY runs, has Python.h, and with "venv" can also create a virtual environment.
usable() {
  "$1" - "${2:-}" >/dev/null 2>&1 <<'PY'
import os, sys, sysconfig
if sys.argv[1] == "venv":
    import ensurepip, venv  # noqa: F401
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
}
if [ -x .venv/bin/python ]; then
  usable .venv/bin/python || PACKAGES+=(python3-dev)  # a venv's headers are its base Python's
elif ! usable "$PYTHON" venv; then
  PACKAGES+=(python3 python3-venv python3-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  if ! usable "$PYTHON" venv; then
    # Debian's packages did not fix a Python of another origin (its venv or headers live elsewhere).
    if [ -n "$PYTHON_GIVEN" ] || ! usable /usr/bin/python3 venv; then
      echo "setup: $PYTHON cannot create a virtual environment or has no Python.h; install its venv and" \
           "development files, or unset PYTHON to use Debian's python3" >&2
      exit 1
    fi
    echo "setup: $PYTHON cannot create a virtual environment or has no Python.h; using /usr/bin/python3"
    PYTHON=/usr/bin/python3
  fi
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
elif ! usable .venv/bin/python; then
  echo "setup: .venv's Python has no Python.h (needed to build engine); install its development files," \
       "or delete .venv to recreate it" >&2
  exit 1
fi
VPY=.venv/bin/python

# The build backend and its tools live in the venv so the editable install can skip build isolation
# (and so rebuilds reuse build/ incrementally). Skipping isolation applies to every sdist the install
# builds, so the venv's setuptools must read today's metadata: evdev 2.0 declares its licence as a
# PEP 639 string, which the setuptools a new venv starts with (65) rejects.
$VPY -m pip install -q --upgrade pip >/dev/null
$VPY -m pip install -q "setuptools>=77" wheel "scikit-build-core>=0.10" "pybind11>=2.13" "cython>=3.0" "cython-cmake>=0.2" ninja cmake
# ENGINE_TEST_HOOKS: also build engine._native_testing, the test-only producers the ring tests use (a plain
# wheel leaves it out). torch is pinned to the CPU build as a constraint too, so no other extra's dependency
# can move it.
$VPY -m pip install -q --no-build-isolation -e ".[${ENGINE_EXTRAS:-test,dev,train,env,torch,scale}]" \
  -Ccmake.define.ENGINE_TEST_HOOKS=ON -c <(echo "torch==2.13.0")
echo "setup: engine $($VPY -c 'import engine; print(engine.__version__)') installed in .venv"
