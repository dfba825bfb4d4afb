"""The Anthropic caller's `POST /v1/messages`, for the request frame (see
dialects/caller_codec). The body is parsed once; a same-dialect upstream gets the caller's
bytes, the `anthropic-version` / `anthropic-beta` headers that say what they mean, and the
`beta` query flag."""

from __future__ import annotations

from cometgate.canonical import GenerateResponse
from cometgate.dialects.anthropic.caller_errors import encode_anthropic_error
from cometgate.dialects.anthropic.caller_request import (
    BETA_HEADER,
    decode_messages_request,
    estimate_messages,
    read_messages_document,
    wants_stream,
)
from cometgate.dialects.anthropic.caller_response import encode_message
from cometgate.dialects.anthropic.caller_stream import MessageStreamEncoder
from cometgate.dialects.anthropic.count_tokens import caller_headers, caller_query
from cometgate.dialects.anthropic.passthrough import ForwardedAnthropicFraming
from cometgate.dialects.anthropic.paths import anthropic_path
from cometgate.dialects.anthropic.refusals import anthropic_refusal
from cometgate.dialects.caller_codec import BodyNamesModel, CallerRequest, Inbound
from cometgate.dialects.raw_call import RawCall
from cometgate.errors import GatewayError, NotFound


class AnthropicCodec(BodyNamesModel):
    dialect = "anthropic"
    error_dialect = "anthropic"
    names_upstream_model = True

    def read(self, caller: CallerRequest) -> Inbound:
        document = read_messages_document(caller.body)
        stream = wants_stream(document)
        beta = caller.headers.get(BETA_HEADER)
        forward = RawCall(body=caller.body, version="v1", method="messages", document=document,
                          stream=stream, headers=caller_headers(caller.headers),
                          query=caller_query(caller.query))
        return Inbound(document["model"], stream, estimate_messages(document),
                       lambda: decode_messages_request(document, beta=beta), anthropic_refusal,
                       forward)

    def unknown_model(self, name: str, caller: CallerRequest) -> GatewayError:
        return NotFound(f"model: {name}")  # Anthropic's own wording for an unknown model

    def encode_answer(self, response: GenerateResponse, inbound: Inbound) -> bytes:
        return encode_message(response, inbound.model)

    def stream_encoder(self, inbound: Inbound) -> MessageStreamEncoder:
        return MessageStreamEncoder(inbound.model)

    def framing(self, inbound: Inbound) -> ForwardedAnthropicFraming:
        return ForwardedAnthropicFraming()

    def caller_path(self, canonical: str) -> str:
        return anthropic_path(canonical)

    def encode_error(self, error: GatewayError, *, model: str | None,
                     request_id: str | None) -> tuple[int, bytes]:
        return encode_anthropic_error(error, request_id)
