"""OpenAI embeddings (`POST /v1/embeddings`) both ways: requests from callers, and the same
endpoint on an OpenAI-compatible upstream.

What OpenAI does, and so what happens here:

- `input` is a string or an array of strings (at most 2048). OpenAI also takes token arrays
  for its own tokenizer; no upstream of ours shares that tokenizer, so they are refused,
  naming `input`. An empty string, alone or in an array, and an empty array are refused in
  OpenAI's own words ("'$.input' is invalid…").
- `encoding_format` is "float" (the default) or "base64": the base64 of the vector's
  little-endian float32 bytes, which the openai SDK asks for by default and decodes with
  `numpy.frombuffer(…, "float32")`. `dimensions` is a positive integer; `user` is ignored.
- The answer: {"object":"list","data":[{"object":"embedding","index","embedding"}],
  "model","usage":{"prompt_tokens","total_tokens"}}.

Outbound, inputs carry no title field, so a title is embedded as part of its text, and a task
type has no OpenAI meaning and is left out. Answers without `usage` (some servers send none)
get a token count estimated from the inputs' length, as admission estimates.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.dialects.estimate import CHARS_PER_TOKEN
from cometgate.dialects.openai.caller_fields import (
    invalid_type,
    json_object,
    missing,
    optional_int,
    required_model,
    unsupported_value,
)
from cometgate.dialects.upstream_answers import unreadable
from cometgate.errors import InvalidRequest

ENCODING_FORMATS = ("float", "base64")
MAX_INPUTS = 2048
_INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)


# --- inbound --------------------------------------------------------------------------------


def decode_embeddings_request(body: bytes) -> tuple[EmbedRequest, str]:
    """(the request, its encoding_format). Raises InvalidRequest naming the offending
    parameter (the OpenAI error encoder turns the first violation into `param`)."""
    document = json_object(body)
    model = required_model(document)
    texts = _input_texts(document)
    dimensions = optional_int(document, "dimensions", 1)
    encoding = document.get("encoding_format", "float")
    if encoding is None:
        encoding = "float"
    if encoding not in ENCODING_FORMATS:
        raise unsupported_value("encoding_format", encoding, ENCODING_FORMATS)
    inputs = tuple(EmbedInput(text) for text in texts)
    return EmbedRequest(model, inputs, output_dimensionality=dimensions), encoding


def _input_texts(document: Mapping[str, Any]) -> list[str]:
    value = document.get("input")
    if value is None:
        raise missing("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise invalid_type("input", "a string or an array of strings", value)
    if any(_is_token_array(item) for item in texts):
        raise InvalidRequest(
            "input: token arrays are not supported here; send the text itself",
            violations={"input": "token arrays are not supported"},
        )
    if not texts or any(not isinstance(text, str) or not text for text in texts):
        raise InvalidRequest(_INVALID_INPUT, violations={"input": "invalid"})
    if len(texts) > MAX_INPUTS:
        raise InvalidRequest(
            f"Invalid 'input': array too long. Expected an array with maximum length "
            f"{MAX_INPUTS}, but got an array with length {len(texts)} instead.",
            violations={"input": f"at most {MAX_INPUTS} items"},
        )
    return texts


def _is_token_array(item: object) -> bool:
    """An item of OpenAI's other input forms: a token id (the input is one array of ids) or
    an array of ids (the input is several)."""
    return isinstance(item, list) or (isinstance(item, int) and not isinstance(item, bool))


def encode_embeddings_response(response: EmbedResponse, model: str, encoding_format: str) -> bytes:
    """`model` is what the caller named. `encoding_format` is one of ENCODING_FORMATS."""
    as_base64 = encoding_format == "base64"
    data = [
        {"object": "embedding", "index": index,
         "embedding": _base64_vector(vector) if as_base64 else vector}
        for index, vector in enumerate(response.vectors)
    ]
    usage = {"prompt_tokens": response.prompt_tokens, "total_tokens": response.prompt_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


def _base64_vector(vector: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


# --- outbound -------------------------------------------------------------------------------


def encode_upstream_embeddings(request: EmbedRequest, upstream_model: str) -> dict[str, Any]:
    """The body of `POST {base}/embeddings`. Floats are asked for, since not every
    OpenAI-compatible server implements base64; both are read back."""
    body: dict[str, Any] = {
        "model": upstream_model,
        "input": [item.titled_text for item in request.inputs],
        "encoding_format": "float",
    }
    if request.output_dimensionality is not None:
        body["dimensions"] = request.output_dimensionality
    return body


def decode_upstream_embeddings(
    body: bytes, *, inputs: tuple[EmbedInput, ...] = ()
) -> EmbedResponse:
    """An embeddings answer, vectors put in `index` order. `inputs`, when given, are the
    inputs sent: the answer must hold one vector for each, and they estimate the token count
    when the answer has no usage. Anything unreadable is an UpstreamError (502)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise unreadable("the embeddings answer is not JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise unreadable("the embeddings answer has no data")
    ordered = sorted(data, key=_index)
    vectors = tuple(_vector(item.get("embedding")) for item in ordered)
    if inputs and len(vectors) != len(inputs):
        raise unreadable(f"{len(vectors)} embeddings for {len(inputs)} inputs")
    tokens = _prompt_tokens(document)
    if tokens is None:
        tokens = sum(len(item.titled_text) // CHARS_PER_TOKEN + 1 for item in inputs)
    return EmbedResponse(vectors, tokens)


def _index(item: Mapping[str, Any]) -> int:
    index = item.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        raise unreadable("an embedding has no integer index")
    return index


def _vector(value: object) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise unreadable("an embedding is neither numbers nor base64") from None
        if len(raw) % 4:
            raise unreadable("a base64 embedding is not a whole number of float32 values")
        return struct.unpack(f"<{len(raw) // 4}f", raw)
    if isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(float(v) for v in value)
    raise unreadable("an embedding is neither numbers nor base64")


def _prompt_tokens(document: Mapping[str, Any]) -> int | None:
    usage = document.get("usage")
    count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    return None
