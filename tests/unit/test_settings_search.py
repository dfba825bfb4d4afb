"""`grounding.search` (the gateway's own search backend) and a model's `grounding` mode, as the
config file states them, and every way to state them wrong."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from cometgate.app import searches_reserved
from cometgate.settings import ConfigError, OpenAIProviderSettings, Settings, load_settings

MODEL = ("models:\n  m: {provider: up, input_token_limit: 10, output_token_limit: 10%s}\n"
         "providers:\n  up: {kind: openai, base_url: 'http://u/v1'%s}\n")


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "cometgate.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env={"HOME": str(tmp_path), **(env or {})})


def test_no_backend_unless_configured(tmp_path: Path) -> None:
    assert load(tmp_path, MODEL % ("", "")).search is None


def test_a_searxng_backend_with_its_bounds(tmp_path: Path) -> None:
    settings = load(tmp_path, MODEL % ("", "") + (
        "grounding:\n  search: {kind: searxng, base_url: 'http://searxng:8080/',"
        " timeout_seconds: 2, max_queries: 1, max_results: 3, max_response_bytes: 5000,"
        " max_snippet_chars: 100}\n"))
    search = settings.search
    assert search is not None and search.kind == "searxng" and search.api_key is None
    assert search.base_url == "http://searxng:8080"
    assert (search.timeout_seconds, search.max_queries, search.max_results,
            search.max_response_bytes, search.max_snippet_chars) == (2.0, 1, 3, 5000, 100)


@pytest.mark.parametrize(("kind", "url"), [("brave", "https://api.search.brave.com"),
                                           ("tavily", "https://api.tavily.com")])
def test_public_backends_need_a_key_and_know_their_url(tmp_path: Path, kind: str,
                                                       url: str) -> None:
    text = MODEL % ("", "") + f"grounding:\n  search: {{kind: {kind}, api_key: env:SK}}\n"
    search = load(tmp_path, text, {"SK": "secret"}).search
    assert search is not None and search.base_url == url
    assert search.api_key is not None and search.api_key.value == "secret"
    assert "secret" not in repr(search)


@pytest.mark.parametrize(("search", "message"), [
    ("{kind: bing}", "grounding.search.kind must be one of searxng, brave, tavily"),
    ("{base_url: 'http://x'}", "grounding.search.kind is required"),
    ("{kind: searxng}", "grounding.search.base_url is required for kind searxng"),
    ("{kind: brave}", r"grounding.search.api_key is required for kind brave \(api_key: env:"),
    ("{kind: tavily, api_key: plain}", "must reference the environment as 'env:NAME'"),
    ("{kind: searxng, base_url: 'http://x', max_results: 0}",
     "grounding.search.max_results must be positive"),
    ("{kind: searxng, base_url: 'http://x', timeout: 3}", "grounding.search: unknown keys timeout"),
])
def test_a_wrong_backend_is_a_config_error(tmp_path: Path, search: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, MODEL % ("", "") + f"grounding:\n  search: {search}\n")


@pytest.mark.parametrize(("written", "mode"), [("", "auto"), (", grounding: native", "native"),
                                               (", grounding: emulate", "emulate"),
                                               (", grounding: off", "off")])
def test_a_model_grounding_mode(tmp_path: Path, written: str, mode: str) -> None:
    model = load(tmp_path, MODEL % (written, "")).model("m")
    assert model is not None and model.grounding == mode


def test_an_unknown_grounding_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.grounding must be one of auto, "
                                          "native, emulate, off"):
        load(tmp_path, MODEL % (", grounding: always", ""))


def test_an_openai_provider_whose_models_search(tmp_path: Path) -> None:
    settings = load(tmp_path, MODEL % ("", ", web_search: true"))
    provider = settings.provider("up")
    assert isinstance(provider, OpenAIProviderSettings) and provider.web_search


def test_the_readme_grounding_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S)
                   if block.lstrip().startswith("grounding:"))
    search = load(tmp_path, textwrap.dedent(example)).search
    assert search is not None and search.kind == "searxng"
    assert search.base_url == "http://searxng:8080" and search.max_results == 5


@pytest.mark.parametrize(("grounding", "reserved"), [
    ("", 5),  # Anthropic's web search tool runs at most 5 searches as the gateway sends it
    ("grounding:\n  search: {kind: searxng, base_url: 'http://s', max_queries: 2}\n", 5),
    ("grounding:\n  search: {kind: searxng, base_url: 'http://s', max_queries: 9}\n", 9),
])
def test_a_budget_reserves_the_most_searches_an_answer_can_run(
        tmp_path: Path, grounding: str, reserved: int) -> None:
    assert searches_reserved(load(tmp_path, MODEL % ("", "") + grounding)) == reserved
