"""The Responses caller's `POST /v1/responses`, for the request frame (see
dialects/caller_codec). It shares OpenAI's error envelope. What the gateway keeps for it
(stored conversations, background runs, the sealed reasoning state) is a service of the
gateway, which the Responses routes hand the frame as an extension; without it a request is
answered as one that stores nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import GenerateResponse
from cometgate.dialects.caller_codec import BodyNamesModel, CallerRequest, Inbound
from cometgate.dialects.openai.caller_errors import encode_openai_error
from cometgate.dialects.raw_call import RawCall
from cometgate.dialects.responses.billable import billable
from cometgate.dialects.responses.caller_params import decode_include
from cometgate.dialects.responses.caller_request import (
    decode_responses_request,
    estimate_responses,
    read_responses_document,
    wants_stream,
)
from cometgate.dialects.responses.caller_response import Frame, encode_response, new_frame
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder
from cometgate.dialects.responses.passthrough import ForwardedResponsesFraming
from cometgate.dialects.responses.paths import responses_path
from cometgate.dialects.responses.reasoning_state import visible
from cometgate.errors import GatewayError, NotFound

FRAME = "frame"  # options key: the Response frame (id, time, echoed settings) of the answer


class ResponsesCodec(BodyNamesModel):
    dialect = "responses"  # as usage records name it
    error_dialect = "openai"
    names_upstream_model = False

    def read(self, caller: CallerRequest) -> Inbound:
        document = read_responses_document(caller.body)
        stream = wants_stream(document)
        forward = RawCall(body=b"", version="v1", method="responses", document=document,
                          stream=stream)
        # The refusal words are the pipeline's default, as they were before the frame.
        return Inbound(document["model"], stream, estimate_responses(document),
                       lambda: decode_responses_request(document), None, forward,
                       billable(document), options={"document": document})

    def unknown_model(self, name: str, caller: CallerRequest) -> GatewayError:
        return NotFound(f"The model `{name}` does not exist.")

    def encode_answer(self, response: GenerateResponse, inbound: Inbound) -> bytes:
        frame = answer_frame(inbound)
        return orjson.dumps(visible(encode_response(response, frame), frame.include))

    def stream_encoder(self, inbound: Inbound) -> ResponseStreamEncoder:
        return ResponseStreamEncoder(answer_frame(inbound))

    def framing(self, inbound: Inbound) -> ForwardedResponsesFraming:
        return ForwardedResponsesFraming()

    def caller_path(self, canonical: str) -> str:
        return responses_path(canonical)

    def encode_error(self, error: GatewayError, *, model: str | None,
                     request_id: str | None) -> tuple[int, bytes]:
        return encode_openai_error(error, model=model)


def answer_frame(inbound: Inbound) -> Frame:
    """The frame the gateway's Responses service set, else one that stores nothing."""
    frame = inbound.options.get(FRAME)
    if isinstance(frame, Frame):
        return frame
    document: Mapping[str, Any] = inbound.options["document"]  # type: ignore[assignment]
    return new_frame(document, decode_include(document))
