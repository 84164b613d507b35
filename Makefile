# One entry point for the team's routines. Every target sets up what it needs first.
#   make setup          Debian packages, .venv, editable install (idempotent; quick when done)
#   make test           the test suite (the README's test command; CI runs exactly this)
#   make demo           the main job on the bundled demo game (the README's first command)
#   make bench          pytest bench/ in quick mode (BENCH_MODE=full for the long one)
#   make check          ruff, mypy, stubtest, the C++ build with -Wall -Wextra -Werror, the dependency floors
#   make windows-test   cross-build native/ with mingw-w64 and run its tests under Wine

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.engine-installed
SOURCES := pyproject.toml CMakeLists.txt scripts/setup.sh \
	$(shell find native python -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.pyx' -o -name 'CMakeLists.txt' \) 2>/dev/null)

# The editable install maps Python modules when it is made (scikit-build-core's redirect mode), so a
# module added or removed needs a reinstall too: keep the list of them in a file that changes only then.
PYFILES := $(VENV)/.engine-pyfiles
$(shell mkdir -p $(VENV) && find engine -name '*.py' | sort > $(PYFILES).new && \
	(cmp -s $(PYFILES).new $(PYFILES) || mv $(PYFILES).new $(PYFILES)); rm -f $(PYFILES).new)

.PHONY: setup test demo bench check windows-test clean

setup: $(STAMP)

$(STAMP): $(SOURCES) $(PYFILES)
	bash scripts/setup.sh
	@touch $@

test: setup
	$(PY) -m pytest

demo: setup
	$(PY) -m engine.demo.tour

bench: setup
	$(PY) -m pytest bench/ --bench-mode=$${BENCH_MODE:-quick}

# Lint with ruff (rules in pyproject.toml), types with mypy, the compiled modules' stubs (engine/*.pyi)
# against the modules themselves with stubtest, and every C++ file (native/ on its own, then the
# pybind11/Cython extensions, the test hooks too) compiled with -Wall -Wextra -Werror; then the declared
# dependency floors, each installed exactly in build/floors and tested (scripts/check_floors.sh).
check: setup
	$(PY) -m ruff check engine tests bench
	$(PY) -m mypy
	$(PY) -m mypy.stubtest --allowlist stubtest-allowlist.txt engine._native engine._pacer
	cmake -S native -B build/check -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGINE_WERROR=ON >/dev/null
	cmake --build build/check
	$(PY) -m pip wheel -q --no-build-isolation --no-deps -w build/check-wheel -Cbuild-dir=build/check-py \
		-Ccmake.define.ENGINE_WERROR=ON -Ccmake.define.ENGINE_TEST_HOOKS=ON .
	PYTHON=$(shell command -v python3) bash scripts/check_floors.sh

windows-test: setup
	bash scripts/windows_test.sh

clean:
	rm -rf build $(VENV) .pytest_cache
