"""The OpenAI caller's `POST /v1/chat/completions`, for the request frame (see
dialects/caller_codec). The body is parsed once; a same-dialect upstream gets the parsed
document back with only its model rewritten."""

from __future__ import annotations

from cometgate.canonical import GenerateResponse
from cometgate.dialects.caller_codec import BodyNamesModel, CallerRequest, Inbound
from cometgate.dialects.openai.billable import billable
from cometgate.dialects.openai.caller_errors import encode_openai_error
from cometgate.dialects.openai.caller_request import (
    decode_chat_request,
    estimate_chat,
    read_chat_document,
    wants_stream,
    wants_usage_in_stream,
)
from cometgate.dialects.openai.caller_response import encode_chat_completion
from cometgate.dialects.openai.caller_stream import ChatChunkEncoder
from cometgate.dialects.openai.passthrough import ForwardedOpenAIFraming
from cometgate.dialects.openai.paths import openai_path
from cometgate.dialects.openai.refusals import openai_refusals
from cometgate.dialects.raw_call import RawCall
from cometgate.errors import GatewayError, NotFound


class OpenAICodec(BodyNamesModel):
    dialect = "openai"
    error_dialect = "openai"
    names_upstream_model = True

    def read(self, caller: CallerRequest) -> Inbound:
        document = read_chat_document(caller.body)
        stream = wants_stream(document)
        forward = RawCall(body=b"", version="v1", method="chat", document=document,
                          stream=stream)
        return Inbound(document["model"], stream, estimate_chat(document),
                       lambda: decode_chat_request(document), openai_refusals(document),
                       forward, billable(document),
                       options={"include_usage": wants_usage_in_stream(document)})

    def unknown_model(self, name: str, caller: CallerRequest) -> GatewayError:
        return NotFound(f"The model `{name}` does not exist.")

    def encode_answer(self, response: GenerateResponse, inbound: Inbound) -> bytes:
        return encode_chat_completion(response, inbound.model)

    def stream_encoder(self, inbound: Inbound) -> ChatChunkEncoder:
        return ChatChunkEncoder(inbound.model,
                                include_usage=bool(inbound.options.get("include_usage")))

    def framing(self, inbound: Inbound) -> ForwardedOpenAIFraming:
        return ForwardedOpenAIFraming()

    def caller_path(self, canonical: str) -> str:
        return openai_path(canonical)

    def encode_error(self, error: GatewayError, *, model: str | None,
                     request_id: str | None) -> tuple[int, bytes]:
        return encode_openai_error(error, model=model)
