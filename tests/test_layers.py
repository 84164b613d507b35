"""The package's layers point down: a walk of every import in engine/ fails on one that points up, and a
fresh interpreter with no DISPLAY imports the data side (session, dataset, train, report, model) without
loading a compiled module or an X11 library, as a training server without X must.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine

PACKAGE = Path(engine.__file__).parent

# Rank of each top-level part of engine/: a module may import parts of its own rank or lower, never higher.
# The top-level `engine` module is the lazy facade over everything (it imports nothing at import time).
RANKS: dict[str, int] = {
    # the bottom: contracts and the compiled core
    "errors": 0, "sidecar": 0, "axes_spec": 0, "_native": 0, "_native_testing": 0, "_pacer": 0, "_version": 0,
    "signals": 0,
    "xvfb": 0, "telemetry": 0,
    # reading the screen and the person's actions, sending actions
    "actions": 1, "capture": 1,
    # storage; the model runtime (a .tflite, its sidecar, decoding) shared by training checks and play
    "session": 2, "model": 2,
    # the data side: no capture, no play
    "dataset": 3, "report": 3, "train": 3, "export": 3,
    # the live side
    "record": 4, "play": 4, "env": 4,
    # programs on top
    "demo": 5, "latency": 5, "cli": 5,
}


def _part(module: str) -> str | None:
    """'engine.play.loop' -> 'play'; None for modules outside engine."""
    bits = module.split(".")
    if bits[0] != "engine":
        return None
    return bits[1] if len(bits) > 1 else ""


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every engine module that the file imports, at any depth (function-level imports are dependencies too)."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if name == "engine":  # from engine import _native
                out += [(node.lineno, f"engine.{a.name}") for a in node.names]
    return [(line, name) for line, name in out if name.startswith("engine")]


def _modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((path, ".".join(parts)))
    return out


def test_every_part_of_the_package_has_a_rank() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    assert parts - set(RANKS) == set(), "new top-level part: give it a rank in RANKS"


def test_no_import_points_up() -> None:
    upward = []
    for path, module in _modules():
        here = _part(module)
        if not here or here not in RANKS:
            continue  # the facade; an unranked part fails the test above
        for line, name in _imports(path, module):
            there = _part(name)
            if there and there in RANKS and RANKS[there] > RANKS[here]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({here}, rank {RANKS[here]}) "
                              f"imports {name} ({there}, rank {RANKS[there]})")
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_the_walk_sees_an_upward_import(tmp_path: Path) -> None:
    """The check above can fail: a report module importing the play loop is caught."""
    f = tmp_path / "data.py"
    f.write_text("from engine.play.loop import TELEMETRY_FIELDS\n\ndef f():\n    from engine import _native\n")
    found = _imports(f, "engine.report.data")
    assert (1, "engine.play.loop") in found and (4, "engine._native") in found


DATA_SIDE = ["engine", "engine.session", "engine.dataset", "engine.train", "engine.report", "engine.model",
             "engine.sidecar", "engine.errors"]


@pytest.mark.parametrize("module", DATA_SIDE)
def test_data_side_imports_no_compiled_module_and_no_x11(module: str) -> None:
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "compiled = sorted(m for m in sys.modules if m.startswith('engine._'))\n"
        "maps = open('/proc/self/maps').read()\n"
        "x11 = sorted({l.split('/')[-1] for l in maps.splitlines() if 'libX11' in l})\n"
        "print(compiled, x11)\n"
        "sys.exit(1 if compiled or x11 else 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"import {module} loaded {r.stdout.strip()} {r.stderr[-2000:]}"
