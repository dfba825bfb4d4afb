"""Gemini embedContent / batchEmbedContents: bodies as the SDKs send them, Google's refusals,
the answers' exact shape, and the outbound half for a Gemini upstream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.canonical import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.dialects.gemini.embed import (
    MAX_BATCH,
    TITLE_MESSAGE,
    decode_batch_embed_contents,
    decode_embed_content,
    decode_upstream_batch,
    encode_batch_embed_contents,
    encode_embed_content,
    encode_upstream_batch,
    model_resource,
)
from cometgate.errors import FailureClass, InvalidRequest, UpstreamError


def body(document: Any) -> bytes:
    return orjson.dumps(document)


def item(text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {"content": {"parts": [{"text": text}], "role": "user"}, **fields}


def refusal(decode: Any, document: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode(body(document), "text-embedding-004")
    return caught.value


# --- embedContent ---------------------------------------------------------------------------


def test_embed_content_in_camel_case() -> None:
    request = decode_embed_content(body(item(
        "What is the meaning of life?", model="models/text-embedding-004",
        taskType="RETRIEVAL_DOCUMENT", title="Life", outputDimensionality=8)),
        "text-embedding-004")
    assert request == EmbedRequest(
        model="text-embedding-004",
        inputs=(EmbedInput("What is the meaning of life?", title="Life"),),
        task_type="RETRIEVAL_DOCUMENT",
        output_dimensionality=8,
    )


def test_embed_content_in_snake_case_with_an_integral_float() -> None:
    # google-genai spells nested keys in snake_case and may send ints as floats.
    request = decode_embed_content(
        body(item("x", task_type="CLUSTERING", output_dimensionality=16.0)), "m")
    assert request.task_type == "CLUSTERING"
    assert request.output_dimensionality == 16


def test_several_text_parts_make_one_input_joined_by_newlines() -> None:
    document = {"content": {"parts": [{"text": "first"}, {"text": "second"}]}}
    request = decode_embed_content(body(document), "m")
    assert request.inputs == (EmbedInput("first\nsecond"),)


def test_unspecified_task_type_means_none() -> None:
    request = decode_embed_content(body(item(taskType="TASK_TYPE_UNSPECIFIED")), "m")
    assert request.task_type is None


def test_unknown_task_type_is_refused_as_google_words_it() -> None:
    err = refusal(decode_embed_content, item(taskType="SUMMARIZATION"))
    assert err.message == (
        "Invalid value at 'task_type' (type.googleapis.com/"
        'google.ai.generativelanguage.v1beta.TaskType), "SUMMARIZATION"')
    assert set(err.violations) == {"task_type"}


def test_title_without_retrieval_document_is_refused() -> None:
    for fields in ({"title": "T"}, {"title": "T", "taskType": "RETRIEVAL_QUERY"}):
        err = refusal(decode_embed_content, item(**fields))
        assert err.message == TITLE_MESSAGE
        assert set(err.violations) == {"title"}


def test_non_text_parts_are_refused() -> None:
    document = {"content": {"parts": [
        {"text": "a caption"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}]}}
    err = refusal(decode_embed_content, document)
    assert set(err.violations) == {"content.parts[1]"}
    assert err.message.startswith("* EmbedContentRequest.content.parts[1]: only text parts")


def test_missing_content_unknown_fields_and_bad_sizes_are_refused() -> None:
    assert set(refusal(decode_embed_content, {"taskType": "CLUSTERING"}).violations) == {
        "content"}
    assert set(refusal(decode_embed_content, {"content": {"parts": []}}).violations) == {
        "content.parts"}
    unknown = refusal(decode_embed_content, item(autoTruncate=True))
    assert unknown.message == ('Invalid JSON payload received. Unknown name "autoTruncate": '
                               "Cannot find field.")
    for size in (0, -3):
        err = refusal(decode_embed_content, item(outputDimensionality=size))
        assert set(err.violations) == {"output_dimensionality"}
    assert "TYPE_INT32" in refusal(decode_embed_content, item(outputDimensionality=2.5)).message
    assert refusal(decode_embed_content, [item()]).message.endswith("must be a message.")


def test_the_model_in_the_body_must_be_the_urls() -> None:
    err = refusal(decode_embed_content, item(model="models/other-model"))
    assert set(err.violations) == {"model"}
    assert "models/text-embedding-004" in err.message


# --- batchEmbedContents ---------------------------------------------------------------------


def sdk_batch(*texts: str, **config: Any) -> dict[str, Any]:
    """What google-genai sends for embed_content(contents=[…], config=…)."""
    return {"requests": [
        {"content": {"parts": [{"text": text}], "role": "user"},
         "model": "models/text-embedding-004", **config} for text in texts]}


def test_batch_as_the_sdk_sends_it() -> None:
    request = decode_batch_embed_contents(
        body(sdk_batch("one", "two", "three", taskType="SEMANTIC_SIMILARITY",
                       outputDimensionality=8)), "text-embedding-004")
    assert request.inputs == (EmbedInput("one"), EmbedInput("two"), EmbedInput("three"))
    assert request.task_type == "SEMANTIC_SIMILARITY"
    assert request.output_dimensionality == 8
    assert request.model == "text-embedding-004"


def test_batch_titles_stay_with_their_inputs() -> None:
    document = {"requests": [item("a", taskType="RETRIEVAL_DOCUMENT", title="A"),
                             item("b", taskType="RETRIEVAL_DOCUMENT")]}
    request = decode_batch_embed_contents(body(document), "m")
    assert request.inputs == (EmbedInput("a", "A"), EmbedInput("b"))


def test_batch_requests_must_name_the_urls_model() -> None:
    document = sdk_batch("one", "two")
    document["requests"][1]["model"] = "models/gemini-embedding-001"
    err = refusal(decode_batch_embed_contents, document)
    assert set(err.violations) == {"requests[1].model"}
    assert err.message.startswith("* BatchEmbedContentsRequest.requests[1].model: ")
    assert "models/gemini-embedding-001" in err.message


def test_batch_problems_are_reported_at_their_path_all_at_once() -> None:
    document = {"requests": [
        item(taskType="NOPE"),
        {"content": {"parts": [{"text": 7}]}},
        {"bogus": 1, **item()},
        "not a request",
    ]}
    err = refusal(decode_batch_embed_contents, document)
    assert err.message.split("\n") == [
        "Invalid value at 'requests[0].task_type' (type.googleapis.com/"
        'google.ai.generativelanguage.v1beta.TaskType), "NOPE"',
        "Invalid value at 'requests[1].content.parts[0].text' (TYPE_STRING), 7",
        "Invalid JSON payload received. Unknown name \"bogus\" at 'requests[2]': "
        "Cannot find field.",
        "Invalid value at 'requests[3]' (type.googleapis.com/"
        'google.ai.generativelanguage.v1beta.EmbedContentRequest), "not a request"',
    ]
    assert set(err.violations) == {"requests[0].task_type", "requests[1].content.parts[0].text",
                                   "requests[2]", "requests[3]"}


def test_batch_size_limits() -> None:
    too_many = refusal(decode_batch_embed_contents, sdk_batch(*["t"] * (MAX_BATCH + 1)))
    assert too_many.message == (
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch")
    assert set(refusal(decode_batch_embed_contents, {"requests": []}).violations) == {
        "requests"}
    assert len(decode_batch_embed_contents(
        body(sdk_batch(*["t"] * MAX_BATCH)), "text-embedding-004").inputs) == MAX_BATCH


def test_batch_with_differing_configs_is_refused() -> None:
    document = {"requests": [item(taskType="CLUSTERING"), item(taskType="CLASSIFICATION"),
                             item(taskType="CLUSTERING", outputDimensionality=4)]}
    err = refusal(decode_batch_embed_contents, document)
    assert set(err.violations) == {"requests[1].task_type", "requests[2].output_dimensionality"}


def test_title_rule_applies_per_batch_request() -> None:
    err = refusal(decode_batch_embed_contents, {"requests": [item(title="T")]})
    assert err.violations == {"requests[0].title": TITLE_MESSAGE}


# --- answers --------------------------------------------------------------------------------


def test_answers_have_googles_shape() -> None:
    one = EmbedResponse(vectors=((0.25, -0.5, 1.0),), prompt_tokens=3)
    assert orjson.loads(encode_embed_content(one)) == {"embedding": {"values": [0.25, -0.5, 1.0]}}
    two = EmbedResponse(vectors=((0.5,), (-0.125,)), prompt_tokens=4)
    assert orjson.loads(encode_batch_embed_contents(two)) == {
        "embeddings": [{"values": [0.5]}, {"values": [-0.125]}]}
    with pytest.raises(ValueError):
        encode_embed_content(two)


# --- outbound -------------------------------------------------------------------------------


def test_upstream_batch_body() -> None:
    request = EmbedRequest("alias", (EmbedInput("doc", "Title"), EmbedInput("other")),
                           task_type="RETRIEVAL_DOCUMENT", output_dimensionality=8)
    assert encode_upstream_batch(request, "gemini-embedding-001") == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "doc"}]},
         "taskType": "RETRIEVAL_DOCUMENT", "title": "Title", "outputDimensionality": 8},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "other"}]},
         "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 8},
    ]}
    plain = encode_upstream_batch(EmbedRequest("alias", (EmbedInput("q"),)), "models/x")
    assert plain == {"requests": [{"model": "models/x", "content": {"parts": [{"text": "q"}]}}]}
    assert model_resource("tunedModels/t") == "tunedModels/t"


def test_a_title_without_retrieval_document_travels_in_the_text() -> None:
    # Google refuses such a title, so it is embedded with the text rather than dropped.
    request = EmbedRequest("alias", (EmbedInput("body", "Head"),), task_type="CLUSTERING")
    sent = encode_upstream_batch(request, "m")["requests"][0]
    assert sent["content"] == {"parts": [{"text": "Head\n\nbody"}]}
    assert "title" not in sent


def test_upstream_answer_with_and_without_usage() -> None:
    inputs = (EmbedInput("abcdef"), EmbedInput("abc"))
    answer = b'{\n  "embeddings": [\n    {"values": [0.1, -0.2]},\n    {"values": [1, 0]}\n  ]\n}'
    decoded = decode_upstream_batch(answer, inputs=inputs)
    assert decoded.vectors == ((0.1, -0.2), (1.0, 0.0))
    assert decoded.prompt_tokens == (6 // 3 + 1) + (3 // 3 + 1)  # estimated: no usage
    counted = orjson.dumps({"embeddings": [{"values": [0.5]}, {"values": [0.5]}],
                            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}})
    assert decode_upstream_batch(counted, inputs=inputs).prompt_tokens == 9


@pytest.mark.parametrize("answer", [
    b"<html>oops</html>",
    b'{"embedding": {"values": [0.1]}}',
    b'{"embeddings": [{"values": ["0.1"]}]}',
    b'{"embeddings": [{"values": [0.1]}]}',  # one vector for two inputs
])
def test_unreadable_upstream_answers_are_upstream_errors(answer: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        decode_upstream_batch(answer, inputs=(EmbedInput("a"), EmbedInput("b")))
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.http_status == 502
