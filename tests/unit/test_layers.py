"""The dependency rule of the architecture: canonical ← dialects ← providers ← pipeline ← api.

Checked on the source (every `import` and `from … import` of a cometgate module), so a
violation fails here before it can become a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cometgate"

# What each layer may import from the package, besides itself.
ALLOWED: dict[str, set[str]] = {
    "canonical": set(),
    "errors": set(),
    "dialects": {"canonical", "errors"},
    "providers": {"canonical", "errors", "dialects", "settings", "bundled_model"},
    "storage": {"errors", "limits"},
    "limits": {"errors", "serial_ids"},
    "routing": {"canonical", "errors", "providers", "settings"},
    "grounding": {"canonical", "errors", "settings"},
    # The llama.cpp worker is its own program: nothing of the gateway's pipeline, api or
    # providers; the providers start it by module name and never import it (not in their set).
    "worker": {"dialects", "bundled_model"},
    "bundled_model": set(),
    "serial_ids": set(),
}
# console is an edge like api: it may import api (the admin argument parser), and only app
# imports it.
NOBODY_IMPORTS = {"api", "app", "cli", "server", "serve_workers", "console"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "cometgate" or name.startswith("cometgate.")]


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _own_layer(path: Path) -> str:
    relative = path.relative_to(SRC).with_suffix("")
    return relative.parts[0]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_respect_layers(path: Path) -> None:
    layer = _own_layer(path)
    for imported in _imports(path):
        target = _layer(imported)
        if target == layer:
            continue
        assert target not in NOBODY_IMPORTS or layer in NOBODY_IMPORTS | {"__main__"}, (
            f"{path.relative_to(SRC)} imports {imported}: nothing below the edge imports {target}"
        )
        if layer in ALLOWED:
            assert target in ALLOWED[layer], (
                f"{path.relative_to(SRC)} ({layer}) may not import {imported}"
            )


def test_the_rule_is_not_vacuous() -> None:
    # A layer table that matched nothing would pass silently.
    layers = {_own_layer(p) for p in _sources()}
    assert {"canonical", "dialects", "providers", "api"} <= layers


# The request frame: one serve() for every caller dialect, which reaches a dialect only
# through the codec it is handed (registered in dialects/caller_codecs).
FRAME = SRC / "api" / "frame.py"
DIALECTS = SRC / "dialects"


# The Responses API writes its errors in OpenAI's envelope, as OpenAI does.
CODEC_SHARES = {"responses": {"openai"}}


def _dialect_folders() -> list[Path]:
    return sorted(p for p in DIALECTS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_the_frame_imports_no_dialect_folder() -> None:
    folders = {f"cometgate.dialects.{p.name}" for p in _dialect_folders()}
    for imported in _imports(FRAME):
        assert not any(imported == f or imported.startswith(f + ".") for f in folders), (
            f"api/frame.py imports {imported}: the frame knows a dialect only by its codec"
        )


@pytest.mark.parametrize("folder", _dialect_folders(), ids=lambda p: p.name)
def test_a_caller_codec_stays_in_its_dialect(folder: Path) -> None:
    codec = folder / "caller_codec.py"
    if not codec.exists():
        pytest.skip(f"{folder.name} has no caller side")
    shared = CODEC_SHARES.get(folder.name, set())
    others = {f"cometgate.dialects.{p.name}" for p in _dialect_folders()
              if p != folder and p.name not in shared}
    for imported in _imports(codec):
        assert not any(imported == o or imported.startswith(o + ".") for o in others), (
            f"dialects/{folder.name}/caller_codec.py imports {imported}"
        )


def test_every_caller_codec_is_registered() -> None:
    # cometgate.dialects.<folder>.caller_codec; the top-level cometgate.dialects.caller_codec is
    # the protocol every codec implements, not a dialect.
    registered = {
        imported.split(".")[2] for imported in _imports(DIALECTS / "caller_codecs.py")
        if imported.endswith(".caller_codec") and imported.count(".") == 3
    }
    with_codec = {p.name for p in _dialect_folders() if (p / "caller_codec.py").exists()}
    assert with_codec == registered
    assert {"gemini", "openai", "anthropic", "responses"} <= registered


def test_the_worker_is_started_as_a_program_not_imported() -> None:
    # The supervisor names the worker's module on a command line; that module must exist as a
    # runnable package (a __main__), or every local model request would find no worker.
    from cometgate.providers.local.supervisor import WorkerCommand

    argv = WorkerCommand(Path("m.gguf"), "m", "127.0.0.1", 1, 64).argv(port=1)
    module = argv[argv.index("-m") + 1]
    assert module == "cometgate.worker"
    assert (SRC / "worker" / "__main__.py").is_file()
    providers = sorted((SRC / "providers").rglob("*.py"))
    importers = [p for p in providers
                 if any(i == module or i.startswith(module + ".") for i in _imports(p))]
    assert not importers
