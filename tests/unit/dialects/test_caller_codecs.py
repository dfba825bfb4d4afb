"""The caller codecs the request frame reads every generate request with: the model found
once (in the path or the body), the body parsed once, and the dialect's own refusals."""

from __future__ import annotations

import orjson
import pytest

from cometgate.dialects.caller_codec import CallerRequest
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.errors import InvalidRequest, NotFound

GEMINI, OPENAI = CALLER_CODECS["gemini"], CALLER_CODECS["openai"]
ANTHROPIC, RESPONSES = CALLER_CODECS["anthropic"], CALLER_CODECS["responses"]
TEXT = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
        "generationConfig": {"maxOutputTokens": 7}}


def gemini(body: bytes, *, method: str = "generateContent", path: str = "/v1/models/m",
           query: dict[str, str] | None = None) -> CallerRequest:
    return CallerRequest(body, f"{path}:{method}", query or {}, {}, "m", method)


def test_gemini_finds_model_and_method_in_the_path() -> None:
    assert GEMINI.path_model({"name": "gemini-2.5-flash:streamGenerateContent"}) == (
        "gemini-2.5-flash", "streamGenerateContent")
    assert GEMINI.path_model({"name": "gemini-2.5-flash"}) == ("gemini-2.5-flash", "")


def test_gemini_reads_estimate_billable_and_decode_from_one_parse() -> None:
    inbound = GEMINI.read(gemini(orjson.dumps({**TEXT, "tools": [{"googleSearch": {}}]})))
    assert inbound.model == "m" and not inbound.stream
    assert inbound.estimate[1] == 7
    assert inbound.billable.search
    assert inbound.forward is not None and inbound.forward.version == "v1"
    request = inbound.decode()
    assert request.params.max_output_tokens == 7


def test_gemini_unreadable_body_estimates_from_size_and_refuses_in_googles_words() -> None:
    inbound = GEMINI.read(gemini(b"{not json" * 30))
    assert inbound.estimate == (270 // 3 + 1, None)
    with pytest.raises(InvalidRequest, match="Invalid JSON payload received"):
        inbound.decode()


def test_gemini_stream_framing_follows_alt_and_refuses_an_unknown_one_once_admitted() -> None:
    body = orjson.dumps(TEXT)
    sse = GEMINI.read(gemini(body, method="streamGenerateContent", query={"alt": "sse"}))
    assert sse.stream and sse.forward is not None and sse.forward.alt == "sse"
    assert GEMINI.stream_type(sse) == "text/event-stream"
    array = GEMINI.read(gemini(body, method="streamGenerateContent"))
    assert array.forward is not None and array.forward.alt is None
    assert GEMINI.stream_type(array).startswith("application/json")
    bad = GEMINI.read(gemini(body, method="streamGenerateContent", query={"alt": "xml"}))
    assert isinstance(bad.refusal, InvalidRequest)
    assert bad.refusal.message == "Invalid value at 'alt' (TYPE_ENUM), \"xml\""


def test_gemini_serves_only_models_with_the_method() -> None:
    stream = gemini(b"{}", method="streamGenerateContent", path="/v1beta/models/m")
    assert GEMINI.serves(("generateContent",), stream)
    assert not GEMINI.serves(("embedContent",), stream)
    error = GEMINI.unknown_model("m", stream)
    assert isinstance(error, NotFound)
    assert error.message.startswith("models/m is not found for API version v1beta, or is "
                                    "not supported for streamGenerateContent.")


def body_request(document: dict[str, object]) -> CallerRequest:
    return CallerRequest(orjson.dumps(document), "/v1/x", {"beta": "true"},
                         {"anthropic-version": "2023-06-01"})


def test_openai_reads_the_model_and_stream_options_from_the_body() -> None:
    caller = body_request({"model": "gpt", "stream": True,
                           "stream_options": {"include_usage": True},
                           "messages": [{"role": "user", "content": "hi"}]})
    assert OPENAI.path_model({}) == (None, "")
    inbound = OPENAI.read(caller)
    assert inbound.model == "gpt" and inbound.stream
    assert inbound.options["include_usage"] is True
    assert inbound.forward is not None and inbound.forward.document is not None
    assert OPENAI.unknown_model("gpt", caller).message == "The model `gpt` does not exist."


def test_anthropic_forwards_its_headers_and_beta_flag() -> None:
    caller = body_request({"model": "claude", "max_tokens": 5,
                           "messages": [{"role": "user", "content": "hi"}]})
    inbound = ANTHROPIC.read(caller)
    assert inbound.forward is not None
    assert inbound.forward.headers == (("anthropic-version", "2023-06-01"),)
    assert inbound.forward.query == "beta=true"
    assert ANTHROPIC.unknown_model("claude", caller).message == "model: claude"


def test_responses_speaks_openais_error_envelope_and_names_no_upstream_model() -> None:
    inbound = RESPONSES.read(body_request({"model": "gpt", "input": "hi"}))
    assert inbound.model == "gpt" and inbound.words is None
    assert RESPONSES.error_dialect == "openai" and RESPONSES.dialect == "responses"
    assert not RESPONSES.names_upstream_model
    status, body = RESPONSES.encode_error(NotFound("gone"), model="gpt", request_id=None)
    assert status == 404  # OpenAI's own sentence for a model it does not serve
    assert orjson.loads(body)["error"]["message"] == (
        "The model `gpt` does not exist or you do not have access to it.")


@pytest.mark.parametrize("name", ["openai", "anthropic", "responses"])
def test_a_body_without_a_model_is_refused_before_routing(name: str) -> None:
    with pytest.raises(InvalidRequest, match="model"):
        CALLER_CODECS[name].read(body_request({"no": "model"}))
