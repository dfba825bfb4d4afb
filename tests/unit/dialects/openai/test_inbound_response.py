"""Canonical responses → OpenAI chat.completion bodies and model lists, read back by the
openai SDK itself."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion

from cometgate.canonical import (
    BlobPart,
    Candidate,
    FinishReason,
    GenerateResponse,
    ModelInfo,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.openai.caller_response import (
    encode_chat_completion,
    encode_model,
    encode_model_list,
)

from .sdk_client import answering, sdk_client

USAGE = Usage(prompt_tokens=120, output_tokens=30, thoughts_tokens=12, cached_tokens=100)


def response(*candidates: Candidate, usage: Usage = USAGE) -> GenerateResponse:
    return GenerateResponse(model_version="fast", candidates=candidates, usage=usage,
                            response_id="r3sp0nse", created=1_760_000_000.75)


def encoded(resp: GenerateResponse, model: str = "my-alias") -> dict[str, Any]:
    body = encode_chat_completion(resp, model)
    ChatCompletion.model_validate_json(body)  # the SDK's own model accepts it
    document: dict[str, Any] = orjson.loads(body)
    return document


def test_text_answer_exact_shape() -> None:
    resp = response(Candidate((ReasoningPart("Let me see."), TextPart("Hello"),
                               TextPart(", world")), FinishReason.STOP))
    assert encoded(resp) == {
        "id": "chatcmpl-r3sp0nse",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "my-alias",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world", "refusal": None,
                        "annotations": [], "reasoning_content": "Let me see."},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": 120, "completion_tokens": 42, "total_tokens": 162,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
        "system_fingerprint": None,
    }


def test_tool_calls_keep_their_ids_and_get_stable_ones_when_missing() -> None:
    resp = response(Candidate((
        TextPart("Checking."),
        ToolCallPart("get_weather", {"city": "Paris"}, "call_up1"),
        ToolCallPart("get_weather", {"city": "Oslo", "days": [1, 2]}),
    ), FinishReason.STOP))
    message = encoded(resp)["choices"][0]["message"]
    first, second = message["tool_calls"]
    assert first == {"id": "call_up1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    assert second["id"].startswith("call_") and len(second["id"]) == 29
    assert orjson.loads(second["function"]["arguments"]) == {"city": "Oslo", "days": [1, 2]}
    assert encoded(resp)["choices"][0]["message"]["tool_calls"][1]["id"] == second["id"]
    assert encoded(resp)["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] == "Checking."


def test_generated_ids_differ_between_calls_and_responses() -> None:
    calls = (ToolCallPart("f", {}), ToolCallPart("f", {}))
    one = encoded(response(Candidate(calls, FinishReason.STOP)))
    other = encoded(GenerateResponse("fast", (Candidate(calls, FinishReason.STOP),), USAGE,
                                     "another", 0.0))
    ids = [c["id"] for c in one["choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 2
    assert ids[0] != other["choices"][0]["message"]["tool_calls"][0]["id"]


@pytest.mark.parametrize(("reason", "calls", "expected"), [
    (FinishReason.STOP, False, "stop"),
    (FinishReason.STOP, True, "tool_calls"),
    (None, True, "tool_calls"),
    (None, False, "stop"),
    (FinishReason.MAX_TOKENS, False, "length"),
    (FinishReason.MAX_TOKENS, True, "length"),
    (FinishReason.SAFETY, False, "content_filter"),
    (FinishReason.RECITATION, False, "content_filter"),
    (FinishReason.MALFORMED_TOOL_CALL, False, "stop"),
    (FinishReason.OTHER, False, "stop"),
])
def test_finish_reasons(reason: FinishReason | None, calls: bool, expected: str) -> None:
    parts = (ToolCallPart("f", {}, "c1"),) if calls else (TextPart("x"),)
    assert encoded(response(Candidate(parts, reason)))["choices"][0]["finish_reason"] == expected


def test_no_text_means_null_content_and_media_is_left_out() -> None:
    resp = response(Candidate((BlobPart("image/png", b"\x89PNG"),), FinishReason.STOP))
    message = encoded(resp)["choices"][0]["message"]
    assert message["content"] is None
    assert "tool_calls" not in message and "reasoning_content" not in message


def test_several_choices_keep_their_indexes() -> None:
    resp = response(Candidate((TextPart("a"),), FinishReason.STOP, 0),
                    Candidate((TextPart("b"),), FinishReason.MAX_TOKENS, 1))
    choices = encoded(resp)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "stop"), (1, "b", "length")]


def test_the_sdk_reads_a_completion_with_tool_calls() -> None:
    resp = response(Candidate((ReasoningPart("hmm"), ToolCallPart("f", {"x": 1}, "c1")),
                              FinishReason.STOP))
    client = sdk_client(answering(200, encode_chat_completion(resp, "my-alias")))
    completion = client.chat.completions.create(
        model="my-alias", messages=[{"role": "user", "content": "hi"}])
    assert completion.model == "my-alias"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "f"
    assert call.function.arguments == '{"x":1}'
    assert choice.message.model_extra == {"reasoning_content": "hmm"}
    assert completion.usage is not None and completion.usage.completion_tokens == 42


# --- models ------------------------------------------------------------------------------------

INFOS = [
    ModelInfo("fast", "Fast", "A fast model", "1", "fast", 32_768, 8_192),
    ModelInfo("local/smol", "Smol", "The bundled model", "1", "smol", 2_048, 512),
]


def test_model_list_exact_shape_and_sdk_reading() -> None:
    body = encode_model_list(INFOS)
    assert orjson.loads(body) == {"object": "list", "data": [
        {"id": "fast", "object": "model", "created": 0, "owned_by": "cometgate"},
        {"id": "local/smol", "object": "model", "created": 0, "owned_by": "cometgate"},
    ]}
    client = sdk_client(answering(200, body))
    assert [m.id for m in client.models.list()] == ["fast", "local/smol"]


def test_one_model() -> None:
    body = encode_model(INFOS[1])
    model = Model.model_validate_json(body)
    assert (model.id, model.object, model.owned_by, model.created) == (
        "local/smol", "model", "cometgate", 0)
