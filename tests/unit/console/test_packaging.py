"""An installed wheel carries the console's templates and static files: every one of them is
matched by the package-data patterns in pyproject.toml, and htmx keeps its licence header."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "cometgate"


def test_every_template_and_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cometgate"]
    files = [p for folder in ("templates", "static")
             for p in (PACKAGE / "console" / folder).iterdir() if p.is_file()]
    assert len(files) >= 10
    for path in files:
        relative = PurePosixPath(path.relative_to(PACKAGE).as_posix())
        assert any(relative.match(pattern) for pattern in patterns), relative


def test_the_vendored_htmx_names_its_version_and_licence() -> None:
    static = PACKAGE / "console" / "static"
    header = (static / "htmx.min.js").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("/*! htmx.org 2.0.11") and "0BSD" in header
    assert "Zero-Clause BSD" in (static / "htmx-LICENSE.txt").read_text(encoding="utf-8")
