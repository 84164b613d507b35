#!/usr/bin/env bash
# Project setup, idempotent: Debian packages when missing, a virtual environment in .venv, and an
# editable install of engine with its test, dev and train extras. Quick when everything is already there.
# The train extra (TensorFlow CPU, about 1.3 GB installed) is what runs engine-train and the end-to-end
# test; ENGINE_EXTRAS=test,dev make setup leaves it out (those tests then skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: a C++20 compiler and the X11 headers (Xlib, MIT-SHM in Xext, XInput2 in Xi, XTest in Xtst).
# Tests: Xvfb (virtual display), xdotool and x11-utils (xwininfo, xprop) to poke at windows.
PACKAGES=(g++ make libx11-dev libxext-dev libxi-dev libxtst-dev xvfb xauth xdotool x11-utils g++-mingw-w64-x86-64-posix wine64)

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

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  $PYTHON -m venv .venv
fi
VPY=.venv/bin/python

# The build backend and its tools live in the venv so the editable install can skip build isolation
# (and so rebuilds reuse build/ incrementally). Skipping isolation applies to every sdist the install
# builds, so the venv's setuptools must read today's metadata: evdev 2.0 declares its licence as a
# PEP 639 string, which the setuptools a new venv starts with (65) rejects.
$VPY -m pip install -q --upgrade pip >/dev/null
$VPY -m pip install -q "setuptools>=77" wheel "scikit-build-core>=0.10" "pybind11>=2.13" "cython>=3.0" "cython-cmake>=0.2" ninja cmake
$VPY -m pip install -q --no-build-isolation -e ".[${ENGINE_EXTRAS:-test,dev,train}]"
echo "setup: engine $($VPY -c 'import engine; print(engine.__version__)') installed in .venv"
