"""OpenAI /v1/embeddings: requests as the openai SDK sends them, OpenAI's refusals, answers in
both encodings (base64 read back exactly as the SDK reads it), and the outbound half."""

from __future__ import annotations

import base64
import struct
from typing import Any

import numpy as np
import orjson
import pytest

from cometgate.canonical import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.dialects.openai.embeddings import (
    MAX_INPUTS,
    decode_embeddings_request,
    decode_upstream_embeddings,
    encode_embeddings_response,
    encode_upstream_embeddings,
)
from cometgate.errors import FailureClass, InvalidRequest, UpstreamError


def decode(document: Any) -> tuple[EmbedRequest, str]:
    return decode_embeddings_request(orjson.dumps(document))


def refusal(document: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode(document)
    return caught.value


# --- requests -------------------------------------------------------------------------------


def test_a_list_of_strings_as_the_sdk_sends_it() -> None:
    # The openai SDK asks for base64 unless the caller chose a format.
    request, encoding = decode({"model": "text-embedding-3-small", "input": ["a", "b c"],
                                "encoding_format": "base64", "user": "someone"})
    assert request == EmbedRequest("text-embedding-3-small", (EmbedInput("a"), EmbedInput("b c")))
    assert encoding == "base64"


def test_a_single_string_with_dimensions_defaults_to_float() -> None:
    request, encoding = decode({"model": "m", "input": "hello", "dimensions": 256})
    assert request.inputs == (EmbedInput("hello"),)
    assert request.output_dimensionality == 256
    assert encoding == "float"
    assert decode({"model": "m", "input": "x", "encoding_format": None})[1] == "float"


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]], ["text", 5]])
def test_token_arrays_are_refused_naming_input(tokens: Any) -> None:
    err = refusal({"model": "m", "input": tokens})
    assert list(err.violations) == ["input"]
    assert "token arrays" in err.message


@pytest.mark.parametrize("empty", ["", [], ["a", ""]])
def test_empty_input_is_refused_as_openai_words_it(empty: Any) -> None:
    err = refusal({"model": "m", "input": empty})
    assert err.message == ("'$.input' is invalid. Please check the API reference: "
                           "https://platform.openai.com/docs/api-reference.")
    assert list(err.violations) == ["input"]


def test_bad_encoding_format_is_refused() -> None:
    err = refusal({"model": "m", "input": "x", "encoding_format": "int8"})
    assert err.message == "Invalid value: 'int8'. Supported values are: 'float', 'base64'."
    assert list(err.violations) == ["encoding_format"]


def test_other_refusals_name_their_parameter() -> None:
    assert list(refusal({"input": "x"}).violations) == ["model"]
    assert list(refusal({"model": 3, "input": "x"}).violations) == ["model"]
    assert list(refusal({"model": "m"}).violations) == ["input"]
    assert list(refusal({"model": "m", "input": {"text": "x"}}).violations) == ["input"]
    zero = refusal({"model": "m", "input": "x", "dimensions": 0})
    assert zero.message == ("Invalid 'dimensions': integer below minimum value. "
                            "Expected a value >= 1, but got 0 instead.")
    assert list(refusal({"model": "m", "input": "x", "dimensions": "8"}).violations) == [
        "dimensions"]
    too_many = refusal({"model": "m", "input": ["x"] * (MAX_INPUTS + 1)})
    assert "maximum length 2048" in too_many.message
    with pytest.raises(InvalidRequest):
        decode_embeddings_request(b"{not json")
    with pytest.raises(InvalidRequest):
        decode_embeddings_request(b'["model"]')


# --- answers --------------------------------------------------------------------------------

ANSWER = EmbedResponse(vectors=((0.1, -0.25, 3.5e-05), (1.0, 0.0, -1.0)), prompt_tokens=7)


def test_float_answer_has_openais_shape() -> None:
    document = orjson.loads(encode_embeddings_response(ANSWER, "text-embedding-3-small", "float"))
    assert document == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, -0.25, 3.5e-05]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0, -1.0]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }
    assert list(document) == ["object", "data", "model", "usage"]


def test_base64_decodes_with_numpy_to_the_float_answer() -> None:
    floats = orjson.loads(encode_embeddings_response(ANSWER, "m", "float"))["data"]
    packed = orjson.loads(encode_embeddings_response(ANSWER, "m", "base64"))["data"]
    for as_floats, as_base64 in zip(floats, packed, strict=True):
        # Exactly what the openai SDK does with a base64 embedding.
        decoded = np.frombuffer(base64.b64decode(as_base64["embedding"]), dtype="float32")
        assert decoded.tolist() == np.array(as_floats["embedding"], dtype=np.float32).tolist()
    assert base64.b64decode(packed[1]["embedding"]) == struct.pack("<3f", 1.0, 0.0, -1.0)


# --- outbound -------------------------------------------------------------------------------


def test_upstream_body() -> None:
    request = EmbedRequest("alias", (EmbedInput("doc", "Title"), EmbedInput("q")),
                           task_type="RETRIEVAL_DOCUMENT", output_dimensionality=64)
    assert encode_upstream_embeddings(request, "text-embedding-3-large") == {
        "model": "text-embedding-3-large",
        "input": ["Title\n\ndoc", "q"],
        "encoding_format": "float",
        "dimensions": 64,
    }
    plain = encode_upstream_embeddings(EmbedRequest("a", (EmbedInput("q"),)), "m")
    assert "dimensions" not in plain


def test_upstream_answers_in_either_encoding_and_any_order() -> None:
    packed = base64.b64encode(struct.pack("<2f", 0.5, -0.25)).decode()
    answer = orjson.dumps({"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": packed},
        {"object": "embedding", "index": 0, "embedding": [0.125, 1]},
    ], "usage": {"prompt_tokens": 5, "total_tokens": 5}})
    decoded = decode_upstream_embeddings(answer, inputs=(EmbedInput("a"), EmbedInput("b")))
    assert decoded.vectors == ((0.125, 1.0), (0.5, -0.25))
    assert decoded.prompt_tokens == 5


def test_upstream_answer_without_usage_is_estimated() -> None:
    answer = b'{"data":[{"index":0,"embedding":[0.5]}]}'
    decoded = decode_upstream_embeddings(answer, inputs=(EmbedInput("twelve chars"),))
    assert decoded.prompt_tokens == 12 // 3 + 1


@pytest.mark.parametrize("answer", [
    b"not json",
    b'{"object":"list"}',
    b'{"data":[{"index":0,"embedding":"%%%"}]}',
    b'{"data":[{"index":0,"embedding":"AAA="}]}',  # 2 bytes: not a float32
    b'{"data":[{"index":"0","embedding":[0.1]}]}',
    b'{"data":[{"index":0,"embedding":[true]}]}',
    b'{"data":[]}',  # no vector for the one input
])
def test_unreadable_upstream_answers(answer: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        decode_upstream_embeddings(answer, inputs=(EmbedInput("a"),))
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.http_status == 502
