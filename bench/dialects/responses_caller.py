"""Translation CPU of a Responses caller against a chat-completions caller, per upstream kind,
in process: the same conversation (system, three turns, one function, sampling settings) sent
both ways, the same upstream answers, timed in interleaved rounds so that load moves both
alike. Prints, per upstream and for non-stream and stream, the median µs of each caller and
the ratio responses ÷ chat.

    .venv/bin/python -m bench.dialects.responses_caller            # 10 rounds of 200
    .venv/bin/python -m bench.dialects.responses_caller --quick    # 3 rounds of 50

The chat request also carries `stop` (the Responses API has no stop sequences); everything else
decodes to the same canonical request. Each translated answer is read back (text and output
tokens) before anything is timed.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

import orjson
from bench.dialects import caller_requests as caller
from bench.dialects.pairs import Inbound, StreamEncoder, inbounds, upstreams
from bench.dialects.translation import translate, translate_stream
from bench.dialects.upstream_answers import OUTPUT_TOKENS, STREAM_TEXT, TEXT

from cometgate.canonical import GenerateRequest, GenerateResponse
from cometgate.dialects.responses.caller_params import decode_include
from cometgate.dialects.responses.caller_request import (
    decode_responses_request,
    read_responses_document,
)
from cometgate.dialects.responses.caller_response import encode_response, new_frame
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder


def responses_request(*, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": caller.MODEL,
        "instructions": caller.SYSTEM,
        "input": [{"role": role, "content": text}
                  for role, text in zip(("user", "assistant", "user"), caller.TURNS,
                                        strict=True)],
        "tools": [{"type": "function", "name": caller.TOOL_NAME,
                   "description": caller.TOOL_DESCRIPTION, "parameters": caller.TOOL_SCHEMA}],
        "temperature": caller.TEMPERATURE, "top_p": caller.TOP_P,
        "max_output_tokens": caller.MAX_TOKENS,
    }
    return orjson.dumps({**body, "stream": True} if stream else body)


def _decode(body: bytes) -> GenerateRequest:
    return decode_responses_request(read_responses_document(body))


def _stream(body: bytes) -> tuple[GenerateRequest, StreamEncoder]:
    document = read_responses_document(body)
    frame = new_frame(document, decode_include(document))
    return decode_responses_request(document), ResponseStreamEncoder(frame)


def _encode(response: GenerateResponse) -> bytes:
    # The route builds the frame from the request it read; here, from the same request.
    document = read_responses_document(responses_request(stream=False))
    return orjson.dumps(encode_response(response, new_frame(document)))


RESPONSES = Inbound("responses", responses_request(stream=False),
                    responses_request(stream=True), _decode, _stream, _encode)


def _check(out: bytes, streamed: list[bytes]) -> None:
    body = orjson.loads(out)
    text = "".join(part["text"] for item in body["output"] if item["type"] == "message"
                   for part in item["content"])
    if (text, body["usage"]["output_tokens"]) != (TEXT, OUTPUT_TOKENS):
        raise RuntimeError(f"non-stream answer read back as {text!r}")
    events = [orjson.loads(line[6:]) for line in b"".join(streamed).splitlines()
              if line.startswith(b"data: ")]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    if deltas != STREAM_TEXT or events[-1]["type"] != "response.completed":
        raise RuntimeError(f"stream read back as {deltas!r}")


async def _time(inbound: Inbound, upstream: Any, count: int) -> tuple[list[int], list[int]]:
    plain, streamed, clock = [], [], time.perf_counter_ns
    for _ in range(count):
        start = clock()
        translate(inbound, upstream)
        middle = clock()
        await translate_stream(inbound, upstream)
        plain.append(middle - start)
        streamed.append(clock() - middle)
    return plain, streamed


async def main(rounds: int, per_round: int) -> None:
    chat = inbounds()["openai"]
    targets = upstreams()
    samples: dict[tuple[str, str, str], list[int]] = {}
    for upstream in targets.values():
        _check(translate(RESPONSES, upstream), await translate_stream(RESPONSES, upstream))
        for inbound in (RESPONSES, chat):
            await _time(inbound, upstream, per_round)  # warm-up
    gc.collect()
    for _ in range(rounds):
        for upstream in targets.values():
            for inbound in (RESPONSES, chat):
                plain, streamed = await _time(inbound, upstream, per_round)
                samples.setdefault((upstream.name, inbound.name, "non-stream"), []).extend(plain)
                samples.setdefault((upstream.name, inbound.name, "stream"), []).extend(streamed)
    print(f"command: {sys.executable} -m bench.dialects.responses_caller {' '.join(sys.argv[1:])}")
    print(f"{'upstream':<10} {'kind':<11} {'responses µs':>13} {'chat µs':>9} {'ratio':>6}")
    for name in targets:
        for kind in ("non-stream", "stream"):
            ours = statistics.median(samples[name, "responses", kind]) / 1000
            theirs = statistics.median(samples[name, "openai", kind]) / 1000
            print(f"{name:<10} {kind:<11} {ours:>13.1f} {theirs:>9.1f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    asyncio.run(main(3 if quick else 10, 50 if quick else 200))
