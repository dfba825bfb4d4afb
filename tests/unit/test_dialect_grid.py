"""The name grid of the dialect folders: one file name, one role, in every folder.

Under `dialects/<dialect>/` a module is either
- caller side (the gateway serves this dialect to a caller): `caller_*.py`, with the core roles
  `caller_codec` (the frame's codec), `caller_request` (the caller's body → canonical),
  `caller_response` (canonical answer → the dialect's answer), `caller_stream` (canonical
  stream → the dialect's events) and `caller_errors` (gateway errors → the dialect's envelope);
- upstream side (the gateway speaks this dialect to an upstream): `upstream_*.py`, with the core
  roles `upstream_codec` (the OutboundCodec object), `upstream_request` (canonical → the upstream's
  body), `upstream_response` (its answer → canonical), `upstream_stream` (its events →
  canonical) and `upstream_errors` (its error answers → the failure the pipeline acts on);
- or neither, under a plain name that means one thing everywhere (`passthrough`, `paths`,
  `refusals`, `billable`, `models`, feature modules such as `web_search`).

Names that once meant opposite things in two folders (`stream.py` was Gemini's caller side but
Anthropic's upstream side) are refused, and neither side reaches into the other: what both need
lives in a neutral module of the folder (or below, in `dialects/`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DIALECTS = Path(__file__).resolve().parents[2] / "src" / "cometgate" / "dialects"

# Ambiguous names: each said "caller side" in one folder and "upstream side" in another.
FORBIDDEN = frozenset({"stream", "errors", "codec", "encode", "decode", "outbound", "wire",
                       "response", "request", "inbound"})
FORBIDDEN_PREFIXES = ("inbound_", "outbound_")

CALLER_CORE = ("caller_codec", "caller_request", "caller_response", "caller_stream",
               "caller_errors")
UPSTREAM_CORE = ("upstream_codec", "upstream_request", "upstream_response", "upstream_stream",
                 "upstream_errors")

# Where a core role lives inside another core module, and why.
CORE_HELD_ELSEWHERE = {
    # Gemini's stream chunks are GenerateContentResponse objects: one decoder reads both.
    ("gemini", "upstream_stream"): "upstream_response",
}

# The protocols at the top of dialects/ that each side implements.
SIDE_PROTOCOLS = {"caller": "cometgate.dialects.caller_codec",
                  "upstream": "cometgate.dialects.upstream_codec"}


def dialect_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def side_of(module: str) -> str | None:
    for side in ("caller", "upstream"):
        if module.startswith(side + "_"):
            return side
    return None


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from cometgate.dialects.x import caller_y` imports a module too
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def misnamed(root: Path) -> list[str]:
    faults = []
    for folder in dialect_folders(root):
        for path in sorted(folder.glob("*.py")):
            if path.stem in FORBIDDEN or path.stem.startswith(FORBIDDEN_PREFIXES):
                faults.append(f"dialects/{folder.name}/{path.name}")
    for stale in ("inbound_codec", "outbound"):  # the protocols' old names at the top
        if (root / f"{stale}.py").exists():
            faults.append(f"dialects/{stale}.py")
    return faults


def crossings(root: Path) -> list[str]:
    """Every import by which one side's module reaches the other side, in any dialect."""
    faults = []
    # the real folders too, so that a test tree with one folder still knows the others
    folders = {p.name for p in dialect_folders(root) + dialect_folders(DIALECTS)}
    for folder in dialect_folders(root):
        for path in sorted(folder.glob("*.py")):
            side = side_of(path.stem)
            if side is None:
                continue
            other = "upstream" if side == "caller" else "caller"
            for module in imported_modules(path):
                parts = module.split(".")
                crosses = (module == SIDE_PROTOCOLS[other]
                           or (len(parts) == 4 and parts[:2] == ["cometgate", "dialects"]
                               and parts[2] in folders and side_of(parts[3]) == other))
                if crosses:
                    faults.append(f"dialects/{folder.name}/{path.name} imports {module}")
    return faults


def missing_core(root: Path) -> list[str]:
    faults = []
    for folder in dialect_folders(root):
        for first, core in ((CALLER_CORE[0], CALLER_CORE), (UPSTREAM_CORE[0], UPSTREAM_CORE)):
            if not (folder / f"{first}.py").exists():
                continue  # the folder has no such side (Responses is caller side only)
            for role in core:
                held = CORE_HELD_ELSEWHERE.get((folder.name, role), role)
                if not (folder / f"{held}.py").exists():
                    faults.append(f"dialects/{folder.name} has {first}.py but no {role}.py")
    return faults


def test_the_four_dialects_are_on_the_grid() -> None:
    assert {"anthropic", "gemini", "openai", "responses"} <= {
        p.name for p in dialect_folders(DIALECTS)}


def test_no_dialect_folder_uses_an_ambiguous_name() -> None:
    assert misnamed(DIALECTS) == []


def test_neither_side_imports_the_other() -> None:
    assert crossings(DIALECTS) == []


def test_a_side_has_all_its_core_roles() -> None:
    assert missing_core(DIALECTS) == []


# The checks above pass on today's tree; these show that each one fails when the grid breaks.

def _folder(root: Path, name: str, modules: dict[str, str]) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(text)


@pytest.mark.parametrize("name", ["stream", "errors", "codec", "wire", "inbound_messages",
                                  "outbound", "response"])
def test_an_ambiguous_name_is_refused(tmp_path: Path, name: str) -> None:
    _folder(tmp_path, "gemini", {"caller_stream": "", name: ""})
    assert misnamed(tmp_path) == [f"dialects/gemini/{name}.py"]


def test_a_protocol_back_under_its_old_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outbound.py").write_text("")
    assert misnamed(tmp_path) == ["dialects/outbound.py"]


@pytest.mark.parametrize(("module", "text", "fault"), [
    ("caller_messages", "from cometgate.dialects.anthropic.upstream_history import X\n",
     "dialects/anthropic/caller_messages.py imports cometgate.dialects.anthropic.upstream_history"),
    ("upstream_response", "from cometgate.dialects.openai import caller_response\n",
     "dialects/anthropic/upstream_response.py imports cometgate.dialects.openai.caller_response"),
    ("upstream_request", "import cometgate.dialects.gemini.caller_response\n",
     "dialects/anthropic/upstream_request.py imports cometgate.dialects.gemini.caller_response"),
    ("caller_codec", "from cometgate.dialects.upstream_codec import Encoded\n",
     "dialects/anthropic/caller_codec.py imports cometgate.dialects.upstream_codec"),
])
def test_a_crossing_import_is_refused(tmp_path: Path, module: str, text: str, fault: str) -> None:
    _folder(tmp_path, "anthropic", {module: text})
    assert crossings(tmp_path) == [fault]


def test_neutral_modules_may_serve_both_sides(tmp_path: Path) -> None:
    _folder(tmp_path, "openai", {
        "caller_messages": "from cometgate.dialects.openai.message_fields import f\n",
        "upstream_response": "from cometgate.dialects.openai.message_fields import f\n",
        "message_fields": "from cometgate.dialects.openai.upstream_errors import g\n",
    })
    assert crossings(tmp_path) == []


def test_a_side_missing_a_core_role_is_refused(tmp_path: Path) -> None:
    _folder(tmp_path, "openai", {role: "" for role in CALLER_CORE if role != "caller_errors"})
    assert missing_core(tmp_path) == ["dialects/openai has caller_codec.py but no caller_errors.py"]
