"""The settings package has no import cycle: each module imports alone in a fresh interpreter,
and the imports between its modules form a chain, checked on the source so that a cycle fails
here even where the import order of the day happens to hide it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "cometgate" / "settings"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module(p) for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES}


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) - {_module(p)} for p in PACKAGE.rglob("*.py")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # Depth-first search; a module met again while still on the path closes a cycle.
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_the_package_holds_every_settings_module() -> None:
    assert {"cometgate.settings.load", "cometgate.settings.tree",
            "cometgate.settings.sections.providers"} <= set(MODULES)
    assert not sorted((SRC / "cometgate").glob("settings_*.py"))


def test_the_imports_between_settings_modules_have_no_cycle() -> None:
    assert _cycle(_graph()) is None


def test_no_module_inside_the_package_imports_its_facade() -> None:
    # __init__ imports load, which imports every section: a section importing the facade
    # would close a cycle through it.
    graph = _graph()
    inside = [name for name, targets in graph.items()
              if name != "cometgate.settings" and "cometgate.settings" in targets]
    assert inside == []


def test_no_type_checking_imports_dodge_a_cycle() -> None:
    hidden = [p.name for p in PACKAGE.rglob("*.py") if "TYPE_CHECKING" in p.read_text("utf-8")]
    assert hidden == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", MODULES)
def test_each_settings_module_imports_alone(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def _cometgate_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("cometgate.")}


# Below the providers: a provider kind names its builder by text (settings/sections/providers.py)
# so that reading the settings imports no provider code; Timeouts is a leaf value type.
SETTINGS_MAY_IMPORT = ("cometgate.canonical", "cometgate.settings", "cometgate.providers.timeouts")


def test_the_settings_stay_below_the_providers() -> None:
    outside = {f"{p.relative_to(PACKAGE)}: {name}" for p in PACKAGE.rglob("*.py")
               for name in _cometgate_imports(p)
               if not any(name == allowed or name.startswith(allowed + ".")
                          for allowed in SETTINGS_MAY_IMPORT)}
    assert outside == set()
    assert _cometgate_imports(SRC / "cometgate" / "providers" / "timeouts.py") == set()
