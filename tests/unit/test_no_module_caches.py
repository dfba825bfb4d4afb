"""No mutable state at module level (DESIGN.md, habit 5): a cache or registry there outlives
the app that filled it, is shared by every app in the process (tests, workers) and grows
without an owner to bound it. State belongs to an object the app owns; a module may hold
constants only.

Checked on the source: no `functools.cache`/`lru_cache` (on a function or a method: its memory
is the module's), and no module-level name bound to a dict, list or set (or a call making one)
that the module mutates — item assignment, deletion, a mutating method, an augmented
assignment, or a `global` rebinding.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cometgate"
_CACHES = {"cache", "lru_cache"}
_MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque",
                  "WeakValueDictionary", "WeakKeyDictionary"}
_MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem",
             "clear", "remove", "discard", "appendleft", "popleft", "move_to_end"}


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return None


def _mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp
                  | ast.SetComp):
        return True
    return isinstance(value, ast.Call) and _name_of(value.func) in _MUTABLE_CALLS


def _module_containers(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and _mutable(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and _mutable(node.value):
            if isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def _mutated(tree: ast.Module, names: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                found.add(target.value.id)
            if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name):
                found.add(target.id)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS and isinstance(node.func.value, ast.Name)):
            found.add(node.func.value.id)
        if isinstance(node, ast.Global):
            found |= set(node.names)
    return found & names


def module_state(source: str) -> list[str]:
    """What in `source` is mutable module state, as "name (why)" lines."""
    tree = ast.parse(source)
    problems = [f"{name} (a module-level container the module mutates)"
                for name in sorted(_mutated(tree, _module_containers(tree)))]
    for node in ast.walk(tree):  # a memoised method keeps its instances too: module state
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            problems += [f"{node.name} (memoised by @{_name_of(d)})"
                         for d in node.decorator_list if _name_of(d) in _CACHES]
    return problems


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_mutable_module_state(path: Path) -> None:
    assert module_state(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source", [
    "import functools\n@functools.cache\ndef f(x): return x\n",
    "from functools import lru_cache\n@lru_cache(maxsize=8)\ndef f(x): return x\n",
    "_SEEN = {}\ndef f(k): _SEEN[k] = 1\n",
    "_SEEN: dict[str, int] = dict()\ndef f(k): _SEEN.setdefault(k, 1)\n",
    "_ALL = []\ndef f(x): _ALL.append(x)\n",
    "_N = set()\ndef f(x): _N.add(x)\n",
    "_C = {}\ndef f(k): del _C[k]\n",
    "import functools\nclass C:\n    @functools.lru_cache\n    def f(self): return 1\n",
])
def test_the_check_sees_module_state(source: str) -> None:
    assert module_state(source) != []


@pytest.mark.parametrize("source", [
    "_TABLE = {'a': 1}\ndef f(k): return _TABLE[k]\n",
    "_NAMES = ('a', 'b')\n",
    "class C:\n    def __init__(self): self._cache = {}\n    def f(self, k): self._cache[k] = 1\n",
    "def f():\n    seen = {}\n    seen['a'] = 1\n    return seen\n",
])
def test_constants_and_owned_state_pass(source: str) -> None:
    assert module_state(source) == []
