"""The Gemini caller's generate request and answer, for the request frame (see
dialects/caller_codec): `models/{model}:generateContent` and `:streamGenerateContent`.

The body is parsed once, here: the admission estimate, the billable fields and (only if an
upstream translates) the decoder all read the same document. A pass-through still needs that
parse: the output limit and the billable tools are fields of the body, and the budget must
reserve for them; the prompt estimate walks the parsed strings (media parts at their fixed
price), because a byte-length estimate would reserve thousands of times too much for an
inline image.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from cometgate.canonical import GenerateRequest, GenerateResponse
from cometgate.dialects.caller_codec import CallerRequest, Inbound
from cometgate.dialects.gemini.caller_errors import api_key_invalid_error, encode_error
from cometgate.dialects.gemini.caller_request import (
    decode_generate_document,
    decode_generate_request,
)
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.caller_stream import ForwardedGeminiFraming, GeminiStreamEncoder
from cometgate.dialects.gemini.estimate import admission_of
from cometgate.dialects.gemini.paths import gemini_path
from cometgate.dialects.gemini.refusals import gemini_refusal
from cometgate.dialects.raw_call import RawCall
from cometgate.errors import ApiKeyInvalid, GatewayError, InvalidRequest, NotFound

JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"
STREAM_METHOD = "streamGenerateContent"


class GeminiCodec:
    dialect = "gemini"
    error_dialect = "gemini"
    json_type = JSON_TYPE
    names_upstream_model = True

    def path_model(self, path_params: Mapping[str, str]) -> tuple[str | None, str]:
        # Google puts the method after a colon: `models/gemini-2.5-flash:generateContent`.
        name, _, method = path_params["name"].rpartition(":")
        return (name, method) if name else (method, "")

    def read(self, caller: CallerRequest) -> Inbound:
        name = caller.path_model or ""
        stream = caller.method == STREAM_METHOD
        alt = caller.query.get("alt", "json") if stream else "json"
        refusal = None
        if alt not in ("sse", "json"):
            refusal = InvalidRequest(f"Invalid value at 'alt' (TYPE_ENUM), \"{alt}\"")
        body = caller.body
        document = _parsed(body)
        estimate, billable = admission_of(document, len(body))
        forward = RawCall(body=body, version=_version(caller.path), method=caller.method,
                          alt="sse" if stream and alt == "sse" else None)
        return Inbound(name, stream, estimate, lambda: _decoded(document, body, name),
                       gemini_refusal, forward, billable, refusal, {"sse": alt == "sse"})

    def serves(self, generation_methods: tuple[str, ...], caller: CallerRequest) -> bool:
        # A stream is a generateContent; an embedding model lists only its embedding methods.
        family = "generateContent" if caller.method == STREAM_METHOD else caller.method
        return family in generation_methods

    def unknown_model(self, name: str, caller: CallerRequest) -> GatewayError:
        path = caller.path
        version = path.split("/")[1] if path.startswith("/v1") else ""
        return NotFound(
            f"models/{name.removeprefix('models/')} is not found for API version "
            f"{version or 'v1beta'}, or is not supported for {caller.method}. Call ListModels "
            "to see the list of available models and their supported methods."
        )

    def encode_answer(self, response: GenerateResponse, inbound: Inbound) -> bytes:
        return encode_response(response)

    def forwarded_type(self, content_type: str) -> str:
        return content_type  # the upstream's own, as Google sends it

    def stream_type(self, inbound: Inbound) -> str:
        return SSE_TYPE if inbound.options.get("sse") else JSON_TYPE

    def stream_encoder(self, inbound: Inbound) -> GeminiStreamEncoder:
        return GeminiStreamEncoder("sse" if inbound.options.get("sse") else "json")

    def framing(self, inbound: Inbound) -> ForwardedGeminiFraming:
        return ForwardedGeminiFraming(sse=bool(inbound.options.get("sse")))

    def caller_path(self, canonical: str) -> str:
        return gemini_path(canonical)

    def encode_error(self, error: GatewayError, *, model: str | None,
                     request_id: str | None) -> tuple[int, bytes]:
        native = getattr(error, "native_body", None)
        if native is not None and native[0] == "gemini":
            return error.http_status, native[1]
        if isinstance(error, ApiKeyInvalid):
            return api_key_invalid_error(error.message)
        return encode_error(error)


def _parsed(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _decoded(document: object, body: bytes, name: str) -> GenerateRequest:
    if isinstance(document, dict):
        return decode_generate_document(document, name)
    return decode_generate_request(body, name)  # refused in Google's words


def _version(path: str) -> str:
    version = path.split("/")[1]
    # Our unversioned routes mean v1beta; Google's own API has no unversioned paths.
    return version if version in ("v1", "v1beta") else "v1beta"
