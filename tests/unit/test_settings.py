from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cometgate.canonical import ThinkingStyle
from cometgate.settings import (
    AnthropicProviderSettings,
    ConfigError,
    GeminiProviderSettings,
    LocalEmbeddingProviderSettings,
    LocalProviderSettings,
    OpenAIProviderSettings,
    load_settings,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cometgate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_defaults_describe_the_local_models(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)})
    assert settings.server.port == 8080 and settings.server.host == "127.0.0.1"
    assert settings.data_dir == (tmp_path / ".local/share/cometgate").resolve()
    assert settings.database_url.endswith(f"{settings.data_dir}/cometgate.db")
    local, embedding = settings.providers
    assert isinstance(local, LocalProviderSettings) and local.model_path is None
    assert isinstance(embedding, LocalEmbeddingProviderSettings) and embedding.threads == 2
    model = settings.model("smollm2-135m-instruct")
    assert model is not None and model.provider == "local"
    assert model.info.thinking is ThinkingStyle.NONE
    assert model.info.input_token_limit == 16384  # the local model's default context
    assert model.info.generation_methods == ("generateContent", "countTokens")
    embedder = settings.model("all-minilm-l6-v2")
    assert embedder is not None and embedder.provider == "local-embedding"
    assert embedder.info.generation_methods == ("embedContent", "batchEmbedContents")
    assert embedder.info.output_token_limit == 1
    # The README's first calls set no output limit: the bundled model stops at 256 tokens,
    # with a repetition penalty that keeps it from looping until then.
    assert model.info.default_max_output_tokens == 256
    assert local.repeat_penalty == 1.1


def test_explicit_arguments_beat_environment_beat_file(tmp_path: Path) -> None:
    config = _write(tmp_path, "server: {port: 7000, host: 0.0.0.0}\ndata_dir: rel\n")
    env = {"HOME": str(tmp_path), "COMETGATE_PORT": "7100"}
    settings = load_settings(config, env=env)
    assert settings.server.port == 7100 and settings.server.host == "0.0.0.0"
    assert settings.data_dir == (tmp_path / "rel").resolve()  # relative to the config file
    settings = load_settings(config, port=7200, data_dir=tmp_path / "d", env=env)
    assert settings.server.port == 7200 and settings.data_dir == (tmp_path / "d").resolve()


def test_secrets_come_only_from_the_environment(tmp_path: Path) -> None:
    text = (
        "providers:\n  up: {kind: openai, base_url: 'http://h/v1/', api_key: %s}\n"
        "models:\n  m: {provider: up, input_token_limit: 10, output_token_limit: 5}\n"
    )
    settings = load_settings(_write(tmp_path, text % "env:UP_KEY"), env={"UP_KEY": "s3cret"})
    (up,) = settings.providers
    assert isinstance(up, OpenAIProviderSettings)
    assert up.base_url == "http://h/v1" and len(up.api_keys) == 1
    assert up.api_keys[0].value == "s3cret" and "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match="never written into config files"):
        load_settings(_write(tmp_path, text % "literal-secret"), env={})
    with pytest.raises(ConfigError, match="UP_KEY, which is not set"):
        load_settings(_write(tmp_path, text % "env:UP_KEY"), env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1\n", "unknown top-level config keys: bogus"),
        ("server: {port: eighty}\n", "server.port must be of type int"),
        ("server: {colour: red}\n", "server: unknown keys colour"),
        ("providers: {p: {kind: magic}}\nmodels: {}\n", "kind must be one of"),
        ("models: {m: {provider: nowhere, input_token_limit: 1, output_token_limit: 1}}\n",
         "names 'nowhere', which is not among"),
        ("models: {m: {provider: local, output_token_limit: 1}}\n",
         "models.m.input_token_limit is required"),
        ("[1, 2]\n", "mapping at the top level"),
        ("limits: {lease_ttl_seconds: 2}\n", "limits.lease_ttl_seconds must be between 3 and 600"),
        ("limits: {lease_ttl_seconds: 601}\n", "limits.lease_ttl_seconds must be between 3"),
        ("limits: {lease_ttl_seconds: soon}\n", "limits.lease_ttl_seconds must be of type float"),
        ("limits: {max_candidates: 0}\n", "limits.max_candidates must be at least 1"),
        ("limits: {max_candidates: 2.5}\n", "limits.max_candidates must be of type int"),
        ("server: {port: [\n", "not valid YAML"),
        ("server: {max_headers: 0}\n", "server.max_headers must be positive"),
        ("server: {header_timeout: -1}\n", "server.header_timeout must be positive"),
        ("server: {trusted_proxies: [10.0.0.0/33]}\n",
         "server.trusted_proxies: '10.0.0.0/33' is not an IP address or network"),
        ("server: {metrics: public}\n", "server.metrics must be one of admin, open, off"),
        ("providers: {l: {kind: local, repeat_penalty: 0}}\nmodels: {}\n",
         "providers.l.repeat_penalty must be above 0 and at most 2"),
        ("providers: {o: {kind: openai, base_url: 'http://x/v1', "
         "timeouts: {max_event_bytes: 0}}}\nmodels: {}\n",
         "timeouts.max_event_bytes must be a positive number of bytes"),
    ],
)
def test_bad_config_is_refused_with_the_place_named(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(_write(tmp_path, text), env={"HOME": str(tmp_path)})


def test_request_bounds_and_trust_have_safe_defaults(tmp_path: Path) -> None:
    server = load_settings(env={"HOME": str(tmp_path)}).server
    assert (server.max_header_bytes, server.max_headers, server.header_timeout) == (
        32768, 100, 10.0)
    assert (server.body_timeout, server.body_min_rate) == (10.0, 65536)
    assert server.trusted_proxies == () and server.metrics == "admin"


def test_answer_bounds_and_repeat_penalty_are_read_per_provider(tmp_path: Path) -> None:
    text = """
providers:
  l: {kind: local, repeat_penalty: 1.25}
  o: {kind: openai, base_url: "http://x/v1",
      timeouts: {max_answer_bytes: 1000000, max_event_bytes: 5000}}
models: {}
"""
    local, remote = load_settings(_write(tmp_path, text), env={"HOME": str(tmp_path)}).providers
    assert isinstance(local, LocalProviderSettings) and local.repeat_penalty == 1.25
    assert local.timeouts.max_answer_bytes == 64 * 1024 * 1024
    assert local.timeouts.max_event_bytes == 16 * 1024 * 1024
    assert isinstance(remote, OpenAIProviderSettings)
    assert (remote.timeouts.max_answer_bytes, remote.timeouts.max_event_bytes) == (1000000, 5000)


def test_trusted_proxies_are_read_as_networks(tmp_path: Path) -> None:
    text = "server: {trusted_proxies: [127.0.0.1, 10.0.0.0/8, '::1'], metrics: off}\n"
    server = load_settings(_write(tmp_path, text), env={"HOME": str(tmp_path)}).server
    assert server.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert server.metrics == "off"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_candidates_credentials_and_provider_kinds(tmp_path: Path) -> None:
    text = """
providers:
  google: {kind: gemini, api_keys: [env:G1, env:G2]}
  claude: {kind: anthropic, api_key: env:A}
  vllm: {kind: openai, base_url: "http://v/v1", accepts_top_k: true}
routing: {retries: 1, breaker_failures: 3}
models:
  flash:
    candidates:
      - {provider: google, upstream_model: gemini-2.5-flash, weight: 3}
      - {provider: claude, upstream_model: claude-sonnet, priority: 1}
      - {provider: vllm, priority: 1, weight: 0.5}
    translation: strict
    prices: {input: 0.3, output: 2.5}
    input_token_limit: 1000
    output_token_limit: 100
"""
    env = {"G1": "a", "G2": "b", "A": "c", "HOME": str(tmp_path)}
    settings = load_settings(_write(tmp_path, text), env=env)
    google = settings.provider("google")
    assert isinstance(google, GeminiProviderSettings)
    assert google.base_url == "https://generativelanguage.googleapis.com"
    assert [s.source for s in google.api_keys] == ["env:G1", "env:G2"]
    assert isinstance(settings.provider("claude"), AnthropicProviderSettings)
    flash = settings.model("flash")
    assert flash is not None and flash.translation == "strict"
    assert [(c.provider, c.upstream_model, c.priority, c.weight) for c in flash.candidates] == [
        ("google", "gemini-2.5-flash", 0, 3.0), ("claude", "claude-sonnet", 1, 1.0),
        ("vllm", "flash", 1, 0.5)]
    assert [(p.input, p.output, p.effective) for p in flash.prices] == [
        (Decimal("0.3"), Decimal("2.5"), None)]
    assert settings.routing.retries == 1 and settings.routing.breaker_failures == 3


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("{m: {provider: local, candidates: [{provider: local}], input_token_limit: 1, "
         "output_token_limit: 1}}", "give provider or candidates, not both"),
        ("{m: {candidates: [], input_token_limit: 1, output_token_limit: 1}}",
         "candidates must not be empty"),
        ("{m: {candidates: [{provider: local, weight: 0}], input_token_limit: 1, "
         "output_token_limit: 1}}", "weight must be positive"),
        ("{m: {provider: local, translation: loose, input_token_limit: 1, "
         "output_token_limit: 1}}", "translation must be one of"),
        ("{m: {provider: local, thinking: {style: budget}, input_token_limit: 1, "
         "output_token_limit: 1}}", "local worker has no reasoning support"),
    ],
)
def test_bad_models_are_refused(tmp_path: Path, models: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, f"models: {models}\n"), env={"HOME": str(tmp_path)})


def test_an_embedding_model_and_its_mistakes(tmp_path: Path) -> None:
    base = ("providers:\n  emb: {kind: local_embedding, threads: 3}\n"
            "models:\n  e: {task: %s, provider: emb, input_token_limit: 256}\n")
    settings = load_settings(_write(tmp_path, base % "embed"), env={"HOME": str(tmp_path)})
    (provider,) = settings.providers
    assert isinstance(provider, LocalEmbeddingProviderSettings) and provider.threads == 3
    spec = settings.model("e")
    assert spec is not None and spec.info.generation_methods[0] == "embedContent"
    with pytest.raises(ConfigError,
                       match=r"models\.e\.task must be one of: generate, embed, image"):
        load_settings(_write(tmp_path, base % "summarise"), env={"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"output_token_limit"):  # a generation model needs it
        load_settings(_write(tmp_path, base % "generate"), env={"HOME": str(tmp_path)})
    bad_threads = base.replace("threads: 3", "threads: 0") % "embed"
    with pytest.raises(ConfigError, match=r"providers\.emb\.threads"):
        load_settings(_write(tmp_path, bad_threads), env={"HOME": str(tmp_path)})


def test_an_image_model_draws_and_needs_no_output_limit(tmp_path: Path) -> None:
    text = ("providers:\n  oa: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
            "models:\n  pic: {task: image, provider: oa, input_token_limit: 1000,"
            " prices: {per_image: 0.04}}\n")
    spec = load_settings(_write(tmp_path, text), env={"HOME": str(tmp_path)}).model("pic")
    assert spec is not None
    assert spec.info.output_modalities == ("TEXT", "IMAGE")
    assert spec.info.generation_methods == ("generateContent", "countTokens")
    assert spec.info.output_token_limit == 8192
    assert str(spec.prices[0].per_image) == "0.04"


def test_the_code_sandbox_is_off_unless_enabled_and_checked(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert not load_settings(env=env).code_execution.enabled
    on = load_settings(_write(tmp_path, "code_execution: {sandbox: bubblewrap, "
                                        "wall_seconds: 2, max_runs: 3}\n"), env=env)
    assert on.code_execution.enabled and on.code_execution.wall_seconds == 2.0
    assert on.code_execution.max_runs == 3 and on.code_execution.memory_mb == 256
    for text, problem in [
        ("{sandbox: docker}", r"code_execution\.sandbox must be one of: none, bubblewrap"),
        ("{sandbox: bubblewrap, wall_seconds: 0}", r"code_execution\.wall_seconds must be"),
        ("{sandbox: bubblewrap, memory_mb: 1}", r"code_execution\.memory_mb must be"),
        ("{sandbox: bubblewrap, bwrap: /nowhere/bwrap}", r"/nowhere/bwrap does not exist"),
        ("{sandbox: bubblewrap, python: /opt/python3}", r"must be an interpreter under /usr"),
        ("{sandbox: bubblewrap, network: true}", r"code_execution: unknown keys network"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            load_settings(_write(tmp_path, f"code_execution: {text}\n"), env=env)


def test_lease_ttl_defaults_to_thirty_seconds_and_can_be_set(tmp_path: Path) -> None:
    assert load_settings(env={"HOME": str(tmp_path)}).limits.lease_ttl_seconds == 30.0
    config = _write(tmp_path, "limits: {lease_ttl_seconds: 12.5, redis_url: 'redis://r:6379/0'}\n")
    limits = load_settings(config, env={"HOME": str(tmp_path)}).limits
    assert limits.lease_ttl_seconds == 12.5
    assert limits.max_candidates == 8  # Gemini's own maximum
    assert limits.redis_url is not None and limits.redis_url.value == "redis://r:6379/0"
