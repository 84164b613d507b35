#!/usr/bin/env bash
# Cross-build native/ for 64-bit Windows with mingw-w64 (compiled and linked: the static core with the
# Windows capture and input sources, and both test binaries) and run every test of both under Wine,
# each test by name in its own process:
#   native_tests.exe      the portable checks (kernels against the same references as on Linux,
#                         rings, pacer), as on Linux
#   native_tests_win.exe  GDI capture, the DXGI path (Wine refuses it: the GDI fallback is checked),
#                         SendInput -> raw input, the action table's scan codes, timers, WaitOnAddress
# Needs: g++-mingw-w64-x86-64-posix, wine64, Xvfb, cmake (the venv's is used when present).
# Without DISPLAY it starts its own Xvfb (as engine/xvfb.py does: -displayfd, -noreset).
# The Wine prefix lives in build/windows/wineprefix; the first run creates it (wineboot, ~20 s).
# Exit status: the number of test binaries that failed (or 2+ for a setup problem).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build/windows
mkdir -p "$BUILD"

# One run at a time: concurrent runs would share the Wine prefix and its wineserver.
exec 9>"$BUILD/.lock"
flock 9

t_start=$(date +%s.%N)
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

CMAKE=$ROOT/.venv/bin/cmake
[ -x "$CMAKE" ] || CMAKE=$(command -v cmake) || { echo "windows_test: cmake is missing: run make setup" >&2; exit 2; }
WINE=${WINE:-}
if [ -z "$WINE" ]; then
  # Debian's wine64 package puts the loader in /usr/lib/wine; the wine package adds /usr/bin/wine.
  for w in "$(command -v wine64 || true)" /usr/lib/wine/wine64 "$(command -v wine || true)"; do
    if [ -n "$w" ] && [ -x "$w" ]; then WINE=$w; break; fi
  done
fi
[ -n "$WINE" ] || { echo "windows_test: wine64 is missing: apt-get install wine64" >&2; exit 2; }
command -v x86_64-w64-mingw32-g++-posix >/dev/null ||
  { echo "windows_test: mingw-w64 is missing: apt-get install g++-mingw-w64-x86-64-posix" >&2; exit 2; }

# Build. Ninja when available (the venv has it), else make.
GEN=()
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  NINJA=$ROOT/.venv/bin/ninja
  [ -x "$NINJA" ] || NINJA=$(command -v ninja || true)
  if [ -n "$NINJA" ]; then GEN=(-G Ninja -DCMAKE_MAKE_PROGRAM="$NINJA"); fi
fi
echo "windows_test: building native/ with mingw-w64 into build/windows"
"$CMAKE" -S native -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DENGINE_WERROR=ON \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64-x86_64.cmake" >"$BUILD/configure.log" ||
  { cat "$BUILD/configure.log"; exit 2; }
"$CMAKE" --build "$BUILD" -j "$(nproc)" >"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log"; exit 2; }
echo "windows_test: built in $(elapsed) s"

# A virtual display, ours alone, unless the caller gave one.
XVFB_PID=""
cleanup() {
  # Only what this script started: the prefix's wineserver (and its processes), then our Xvfb.
  WINEPREFIX=$WINEPREFIX "$(dirname "$WINE")/wineserver" -k 2>/dev/null || true
  if [ -n "$XVFB_PID" ]; then kill "$XVFB_PID" 2>/dev/null || true; wait "$XVFB_PID" 2>/dev/null || true; fi
}
export WINEPREFIX=$BUILD/wineprefix WINEARCH=win64 WINEDEBUG=-all
# No Mono or Gecko (nothing here is .NET or HTML; their installers would prompt on first boot), and
# no winemenubuilder (it would write .desktop files and MIME types into the home directory).
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
trap cleanup EXIT
if [ -z "${DISPLAY:-}" ]; then
  command -v Xvfb >/dev/null || { echo "windows_test: Xvfb is missing: apt-get install xvfb" >&2; exit 2; }
  fdfile=$(mktemp)
  Xvfb -displayfd 3 -noreset -nolisten tcp -screen 0 1920x1080x24 3>"$fdfile" >/dev/null 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 200); do
    grep -q . "$fdfile" 2>/dev/null && break
    kill -0 "$XVFB_PID" 2>/dev/null || break
    sleep 0.1
  done
  num=$(tr -dc 0-9 <"$fdfile")
  rm -f "$fdfile"
  [ -n "$num" ] || { echo "windows_test: Xvfb did not start" >&2; exit 2; }
  export DISPLAY=:$num
fi
echo "windows_test: Wine $("$WINE" --version 2>/dev/null) on DISPLAY=$DISPLAY, prefix build/windows/wineprefix"

if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "windows_test: creating the Wine prefix (first run only)"
  timeout 300 "$WINE" wineboot --init >/dev/null 2>&1 || { echo "windows_test: wineboot failed" >&2; exit 2; }
  "$(dirname "$WINE")/wineserver" -w 2>/dev/null || true
  echo "windows_test: prefix ready at $(elapsed) s"
fi

# Each test in a process of its own, by name (tests/harness.hpp): a crash or hang names its test, and
# tests/test_windows_wine.py reports one item per name from the "PASS name" / "FAIL name" lines.
failed=0
for exe in native_tests.exe native_tests_win.exe; do
  echo "windows_test: ---- $exe"
  names=$(timeout 120 "$WINE" "$BUILD/$exe" --list | tr -d '\r') || names=""
  if [ -z "$names" ]; then
    echo "windows_test: $exe FAILED (--list printed nothing)"
    failed=$((failed + 1))
    continue
  fi
  bad=0
  for name in $names; do
    set +e
    timeout 600 "$WINE" "$BUILD/$exe" --run "$name" | tr -d '\r'
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
      echo "windows_test: $exe $name FAILED (exit status $rc)"
      bad=$((bad + 1))
    fi
  done
  if [ "$bad" -eq 0 ]; then
    echo "windows_test: $exe passed"
  else
    echo "windows_test: $exe FAILED ($bad tests)"
    failed=$((failed + 1))
  fi
done
echo "windows_test: done in $(elapsed) s, $failed of 2 test binaries failed"
exit "$failed"
