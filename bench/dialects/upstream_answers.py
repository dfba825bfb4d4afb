"""An upstream's answer in each upstream dialect, in the shapes the real services send (and the
fake upstreams of the test suite replay): a text answer with usage, whole or as a stream of
`STREAM_PIECES` text increments. A stream is a list of network chunks, one SSE event each, as
the mock upstream writes them.

- Gemini: the whole answer pretty-printed (two-space indent); stream events
  `data: <one-line JSON>\\r\\n\\r\\n`, each with the running usageMetadata, modelVersion and
  responseId, finishReason only in the last.
- OpenAI: `chat.completion` with usage details; stream chunks `data: …\\n\\n`: the role chunk,
  the text chunks, the finish chunk, the usage chunk (`stream_options.include_usage`), `[DONE]`.
- Anthropic: a `message`; stream events `event: <type>\\ndata: …\\n\\n`: message_start,
  content_block_start, ping, text deltas, content_block_stop, message_delta, message_stop.
"""

from __future__ import annotations

from typing import Any

import orjson

STREAM_PIECES = 20
WORDS = ("The", " forecast", " for", " Zurich", " tonight", " is", " dry", " and", " mild,",
         " about", " eighteen", " degrees", " Celsius", " with", " a", " light", " breeze,",
         " so", " go", " ahead.")
assert len(WORDS) == STREAM_PIECES
STREAM_TEXT = "".join(WORDS)
TEXT = STREAM_TEXT + " Rain is unlikely before midnight; bring a jacket for later."
PROMPT_TOKENS, OUTPUT_TOKENS = 143, 31

GEMINI_MODEL = "gemini-2.5-flash"
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"


def gemini_answer() -> bytes:
    return orjson.dumps(_gemini(TEXT, OUTPUT_TOKENS, final=True), option=orjson.OPT_INDENT_2)


def gemini_stream() -> list[bytes]:
    return [b"data: " + orjson.dumps(_gemini(word, i + 1, final=i == STREAM_PIECES - 1))
            + b"\r\n\r\n" for i, word in enumerate(WORDS)]


def _gemini(text: str, produced: int, *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if final:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": produced,
                          "totalTokenCount": PROMPT_TOKENS + produced,
                          "promptTokensDetails": [{"modality": "TEXT",
                                                   "tokenCount": PROMPT_TOKENS}]},
        "modelVersion": GEMINI_MODEL,
        "responseId": "oKnRaPqOB7nXz7IPx6yW-Ac",
    }


_OPENAI_HEAD = {"id": "chatcmpl-C3x9ZkQeVb1p2s8TnW4yH0aLmR7uD", "created": 1767225600,
                "model": OPENAI_MODEL, "service_tier": "default",
                "system_fingerprint": "fp_560af6e559"}


def _openai_usage(produced: int) -> dict[str, Any]:
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": produced,
            "total_tokens": PROMPT_TOKENS + produced,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def openai_answer() -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": TEXT, "refusal": None,
                               "annotations": []}
    return orjson.dumps({
        "id": _OPENAI_HEAD["id"], "object": "chat.completion",
        **{k: v for k, v in _OPENAI_HEAD.items() if k != "id"},
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": _openai_usage(OUTPUT_TOKENS),
    })


def openai_stream() -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _openai_frame({"choices": [choice], "usage": None})

    pieces = [chunk({"role": "assistant", "content": "", "refusal": None})]
    pieces += [chunk({"content": word}) for word in WORDS]
    pieces.append(chunk({}, "stop"))
    pieces.append(_openai_frame({"choices": [], "usage": _openai_usage(STREAM_PIECES)}))
    pieces.append(b"data: [DONE]\n\n")
    return pieces


def _openai_frame(fields: dict[str, Any]) -> bytes:
    document = {"id": _OPENAI_HEAD["id"], "object": "chat.completion.chunk",
                **{k: v for k, v in _OPENAI_HEAD.items() if k != "id"}, **fields}
    return b"data: " + orjson.dumps(document) + b"\n\n"


def _anthropic_usage(produced: int) -> dict[str, Any]:
    return {"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": produced, "service_tier": "standard"}


def _anthropic_message(content: list[dict[str, Any]], stop: str | None,
                       produced: int) -> dict[str, Any]:
    return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": ANTHROPIC_MODEL, "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": _anthropic_usage(produced)}


def anthropic_answer() -> bytes:
    return orjson.dumps(_anthropic_message([{"type": "text", "text": TEXT}], "end_turn",
                                           OUTPUT_TOKENS))


def anthropic_stream() -> list[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) \
            + b"\n\n"

    def delta(word: str) -> bytes:
        return event("content_block_delta",
                     {"index": 0, "delta": {"type": "text_delta", "text": word}})

    return [
        event("message_start", {"message": _anthropic_message([], None, 1)}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
        *(delta(word) for word in WORDS),
        event("content_block_stop", {"index": 0}),
        event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": STREAM_PIECES}}),
        event("message_stop", {}),
    ]


def event_payloads(chunks: list[bytes]) -> list[bytes]:
    """The JSON of every event (what a gateway must at least parse), `[DONE]` excluded."""
    payloads = []
    for chunk in chunks:
        for line in chunk.splitlines():
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                payloads.append(line[len(b"data: "):])
    return payloads
