"""The Responses API half of the fake OpenAI upstream (`POST /v1/responses`): a Response
object, or its event stream (`event:` + `data:` lines, `sequence_number` on every event), from
the same scripted `Reply` as chat completions. A reply with `fail_mid_stream` sends one delta,
then an `error` event and nothing after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import Reply

CREATED = 1_700_000_000


def response_body(ident: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reply.text is not None:
        output.append(_message(reply.text, "completed"))
    output.extend(_call(i, call) for i, call in enumerate(reply.tool_calls or []))
    incomplete = reply.finish_reason == "length"
    return {
        "id": ident, "object": "response", "created_at": CREATED,
        "status": "incomplete" if incomplete else "completed", "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": body.get("model"), "output": output, "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
        "usage": {"input_tokens": reply.prompt_tokens,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": reply.completion_tokens,
                  "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": reply.prompt_tokens + reply.completion_tokens},
    }


async def response_events(ident: str, body: dict[str, Any], reply: Reply
                          ) -> AsyncIterator[bytes]:
    for event in _events(ident, body, reply):
        yield event


def _events(ident: str, body: dict[str, Any], reply: Reply) -> Iterator[bytes]:
    numbers = iter(range(1_000))

    def event(kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": next(numbers), **fields}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    final = response_body(ident, body, reply)
    opening = {**final, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=opening)
    yield event("response.in_progress", response=opening)
    text = reply.text or ""
    if reply.text is not None:
        yield event("response.output_item.added", output_index=0,
                    item={**_message("", "in_progress"), "content": []})
        size = max(1, -(-len(text) // reply.chunks))
        for start in range(0, len(text), size):
            yield event("response.output_text.delta", item_id="msg_fake", output_index=0,
                        content_index=0, delta=text[start:start + size], logprobs=[])
            if reply.fail_mid_stream:
                yield event("error", code="server_error", message="fake upstream broke",
                            param=None)
                return
        yield event("response.output_item.done", output_index=0, item=final["output"][0])
    for index, item in enumerate(final["output"][1 if reply.text is not None else 0:]):
        yield event("response.output_item.done", output_index=index, item=item)
    kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield event(kind, response=final)


def _message(text: str, status: str) -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _call(index: int, call: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"fc_{index}", "type": "function_call", "status": "completed",
            "call_id": f"call_{index}", "name": call["name"],
            "arguments": orjson.dumps(call["arguments"]).decode()}
