"""The `grounding.fetch` section: safe defaults, every bound settable, mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest

from cometgate.settings import ConfigError, FetchSettings, load_settings


def loaded(tmp_path: Path, text: str) -> FetchSettings:
    path = tmp_path / "cometgate.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, data_dir=tmp_path, env={}).fetch


def test_defaults_guard_every_fetch(tmp_path: Path) -> None:
    fetch = load_settings(None, data_dir=tmp_path, env={}).fetch
    assert fetch == FetchSettings()
    assert fetch.enabled and not fetch.allow_private and fetch.ports == (80, 443)
    assert (fetch.max_urls, fetch.max_bytes, fetch.max_redirects) == (20, 1024 * 1024, 5)
    assert 0 < fetch.connect_timeout <= fetch.timeout


def test_every_bound_is_read(tmp_path: Path) -> None:
    fetch = loaded(tmp_path, """
grounding:
  fetch: {enabled: true, allow_private: true, ports: [80, 8080], max_urls: 3, max_bytes: 10,
          max_page_chars: 5, connect_timeout: 1, timeout: 2.5, max_redirects: 0,
          max_concurrent: 2}
""")
    assert fetch == FetchSettings(True, True, (80, 8080), 3, 10, 5, 1.0, 2.5, 0, 2)


@pytest.mark.parametrize(("text", "message"), [
    ("grounding: {fetch: {allow_private: yes please}}",
     "grounding.fetch.allow_private must be of type bool"),
    ("grounding: {fetch: {ports: [80, 70000]}}",
     "grounding.fetch.ports must list TCP ports (1 to 65535)"),
    ("grounding: {fetch: {timeout: 0}}", "grounding.fetch.timeout must be positive"),
    ("grounding: {fetch: {max_redirects: -1}}",
     "grounding.fetch.max_redirects must not be negative"),
    ("grounding: {fetch: {max_size: 1}}", "grounding.fetch: unknown keys max_size"),
    ("grounding: {fetcher: {}}", "grounding: unknown keys fetcher"),
    # grounding.search is read beside fetch (settings/sections/search.py)

])
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        loaded(tmp_path, text)
    assert str(raised.value) == message
