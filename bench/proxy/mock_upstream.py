"""A fast mock upstream speaking the Gemini REST API and OpenAI chat.completions, in one process.

Raw asyncio protocol (uvloop when installed) rather than a web framework, so that it costs far
less per request than any gateway put in front of it; `run.py` measures it alone first.

Routes (HTTP/1.1, keep-alive, no pipelining needed by any client used here):
    POST /{v}/models/{m}:generateContent                 one Gemini JSON body
    POST /{v}/models/{m}:streamGenerateContent?alt=sse   N `data:` events, chunked encoding
    POST /v1/chat/completions                            OpenAI, `"stream": true` or not
    POST /_mock/config  {"latency_ms":..., "chunks":..., "interval_ms":...}   changes the timing
Anything else gets 404. Every answer waits `latency_ms` before its first byte; a stream then
sends one event per HTTP chunk every `interval_ms`.

Usage: python -m bench.proxy.mock_upstream --port 9101 [--latency-ms 20 --chunks 20 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from dataclasses import dataclass
from typing import cast

import orjson

WORDS = ("The", " gateway", " forwards", " each", " event", " as", " soon", " as", " it",
         " arrives", ",", " and", " the", " caller", " sees", " no", " difference", " at", " all",
         ".")
TEXT = "".join(WORDS) * 3
PROMPT_TOKENS, COMPLETION_TOKENS = 27, 61


@dataclass
class Timing:
    latency_ms: float = 20.0
    chunks: int = 20
    interval_ms: float = 10.0


def gemini_body(model: str) -> bytes:
    return orjson.dumps({
        "candidates": [{
            "content": {"parts": [{"text": TEXT}], "role": "model"},
            "finishReason": "STOP", "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": PROMPT_TOKENS,
                          "candidatesTokenCount": COMPLETION_TOKENS,
                          "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS,
                          "promptTokensDetails": [{"modality": "TEXT",
                                                   "tokenCount": PROMPT_TOKENS}]},
        "modelVersion": model, "responseId": "mock-gem-0001",
    })


def gemini_events(model: str, count: int) -> list[bytes]:
    events = []
    for i in range(count):
        last = i == count - 1
        candidate: dict[str, object] = {
            "content": {"parts": [{"text": WORDS[i % len(WORDS)]}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        event = {"candidates": [candidate],
                 "usageMetadata": {"promptTokenCount": PROMPT_TOKENS,
                                   "candidatesTokenCount": i + 1,
                                   "totalTokenCount": PROMPT_TOKENS + i + 1},
                 "modelVersion": model, "responseId": "mock-gem-0001"}
        events.append(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
    return events


def openai_body(model: str) -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-mock0001", "object": "chat.completion", "created": 1767225600,
        "model": model, "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT,
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
    })


def openai_events(model: str, count: int, with_usage: bool) -> list[bytes]:
    head = {"id": "chatcmpl-mock0001", "object": "chat.completion.chunk",
            "created": 1767225600, "model": model, "system_fingerprint": "fp_mock"}
    events = []
    for i in range(count):
        delta: dict[str, object] = {"content": WORDS[i % len(WORDS)]}
        if i == 0:
            delta["role"] = "assistant"
        finish = "stop" if i == count - 1 else None
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish}]}
        if with_usage:
            chunk["usage"] = None
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if with_usage:  # OpenAI sends usage in one extra chunk, only when asked for it
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": count,
                 "total_tokens": PROMPT_TOKENS + count}
        events[-1] += b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}) + b"\n\n"
    events[-1] += b"data: [DONE]\n\n"
    return events


def head(status: str, content_type: str, length: int | None) -> bytes:
    size = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{size}\r\n"
            "connection: keep-alive\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class MockProtocol(asyncio.Protocol):
    """One connection. Requests are handled one at a time, in order; each answer is timed by
    loop callbacks rather than tasks, which keeps the per-request cost to a few microseconds."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.next_request()

    def next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        header = self.buffer[:end].decode("latin-1")
        lines = header.split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4:end + 4 + length]
        self.buffer = self.buffer[end + 4 + length:]
        method, _, rest = lines[0].partition(" ")
        target = rest.rpartition(" ")[0]
        self.busy = True
        self.dispatch(method, target, body)

    def dispatch(self, method: str, target: str, body: bytes) -> None:
        path, _, query = target.partition("?")
        timing = self.timing
        if path == "/_mock/config":
            for key, value in orjson.loads(body or b"{}").items():
                setattr(timing, key, type(getattr(timing, key))(value))
            self.answer([head("200 OK", "application/json", 2) + b"{}"], 0.0, 0.0)
        elif method == "POST" and path.endswith(":generateContent"):
            model = path.rpartition("/")[2].partition(":")[0]
            data = gemini_body(model)
            self.answer([head("200 OK", "application/json; charset=UTF-8", len(data)) + data],
                        timing.latency_ms, 0.0)
        elif method == "POST" and path.endswith(":streamGenerateContent") and "alt=sse" in query:
            model = path.rpartition("/")[2].partition(":")[0]
            events = [chunk(e) for e in gemini_events(model, timing.chunks)]
            events[0] = head("200 OK", "text/event-stream", None) + events[0]
            events[-1] += b"0\r\n\r\n"
            self.answer(events, timing.latency_ms, timing.interval_ms)
        elif method == "POST" and path.endswith("/chat/completions"):
            self.openai(body)
        else:
            self.answer([head("404 Not Found", "application/json", 2) + b"{}"], 0.0, 0.0)

    def openai(self, body: bytes) -> None:
        request = orjson.loads(body)
        model, timing = str(request.get("model", "gpt-4o-mini")), self.timing
        if request.get("stream"):
            with_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            events = [chunk(e) for e in openai_events(model, timing.chunks, with_usage)]
            events[0] = head("200 OK", "text/event-stream; charset=utf-8", None) + events[0]
            events[-1] += b"0\r\n\r\n"
            self.answer(events, timing.latency_ms, timing.interval_ms)
        else:
            data = openai_body(model)
            self.answer([head("200 OK", "application/json", len(data)) + data],
                        timing.latency_ms, 0.0)

    def answer(self, pieces: list[bytes], latency_ms: float, interval_ms: float) -> None:
        def send(index: int) -> None:
            if self.transport is None:
                return
            self.transport.write(pieces[index])
            if index + 1 < len(pieces):
                self.later(interval_ms, lambda: send(index + 1))
            else:
                self.busy = False
                self.next_request()

        self.later(latency_ms, lambda: send(0))

    def later(self, delay_ms: float, callback: object) -> None:
        assert callable(callback)
        if delay_ms <= 0:
            callback()
        else:
            self.loop.call_at(self.loop.time() + delay_ms / 1000, callback)


async def serve(port: int, timing: Timing) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(timing), "127.0.0.1", port,
                                      backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mock upstream on 127.0.0.1:{port} ({time.strftime('%H:%M:%S')})", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    args = parser.parse_args()
    timing = Timing(args.latency_ms, args.chunks, args.interval_ms)
    try:
        import uvloop
        uvloop.run(serve(args.port, timing))
    except ImportError:
        asyncio.run(serve(args.port, timing))


if __name__ == "__main__":
    main()
