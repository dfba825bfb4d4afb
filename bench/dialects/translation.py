"""Translation cost per inbound-upstream pair, in process and on the CPU only.

The path timed for one request is the gateway's translated path less its I/O:

    non-stream: caller bytes → canonical (decode) → upstream body (encode_request + orjson)
                → upstream answer bytes → canonical (decode_response) → caller bytes
    stream:     the same request, then the upstream's SSE chunks → sse_decode → decode_stream
                → the caller dialect's stream encoder (feed every event, then end)

The floor, timed in the same rounds, is what any gateway pays to read and rewrite the same
bytes: orjson.loads + orjson.dumps of the caller's request and of the upstream's answer (every
event's JSON, for a stream). Pairs and floors are interleaved in rounds, so a change of load on
the machine moves all of them alike. The garbage collector stays on, as in the gateway.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

import orjson
from bench.dialects.caller_outputs import answer_reading, stream_reading
from bench.dialects.pairs import MODEL, PASSED_THROUGH, Inbound, Upstream
from bench.dialects.upstream_answers import (
    OUTPUT_TOKENS,
    STREAM_PIECES,
    STREAM_TEXT,
    TEXT,
    event_payloads,
)

from cometgate.dialects.sse_decode import decode_sse


@dataclass(frozen=True, slots=True)
class Rounds:
    warmup: int = 200  # iterations of each path before the first timed round
    rounds: int = 10
    per_round: int = 200  # timed iterations of each path in each round


@dataclass(slots=True)
class Cell:
    """One pair, one kind (non-stream or stream): its samples and its floor's, in ns."""

    caller: str
    upstream: str
    kind: str
    path_ns: list[int] = field(default_factory=list)
    floor_ns: list[int] = field(default_factory=list)

    @property
    def passed_through(self) -> bool:
        return (self.caller, self.upstream) in PASSED_THROUGH


def translate(inbound: Inbound, upstream: Upstream) -> bytes:
    request = inbound.decode(inbound.request)
    codec = upstream.codec
    orjson.dumps(codec.encode_request(request, upstream.model, stream=False).body)
    return inbound.encode(codec.decode_response(upstream.answer, request, MODEL))


async def translate_stream(inbound: Inbound, upstream: Upstream) -> list[bytes]:
    request, encoder = inbound.open_stream(inbound.stream_request)
    codec = upstream.codec
    orjson.dumps(codec.encode_request(request, upstream.model, stream=True).body)
    out: list[bytes] = []
    async with (
        aclosing(decode_sse(_arriving(upstream.stream))) as frames,
        aclosing(codec.decode_stream(frames, request, MODEL)) as events,
    ):
        async for event in events:
            out.extend(encoder.feed(event))
    out.extend(encoder.end())
    return out


async def _arriving(chunks: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def floor(payloads: tuple[bytes, ...]) -> None:
    for payload in payloads:
        orjson.dumps(orjson.loads(payload))


def check(inbound: Inbound, upstream: Upstream, out: bytes | list[bytes]) -> str | None:
    """Why the translated answer is wrong, or None: it must carry the upstream's text and
    output token count."""
    if isinstance(out, bytes):
        reading, wanted = answer_reading(inbound.name, out), (TEXT, OUTPUT_TOKENS)
    else:
        reading, wanted = stream_reading(inbound.name, out), (STREAM_TEXT, STREAM_PIECES)
    if reading != wanted:
        return f"{inbound.name} ← {upstream.name}: read back {reading!r}, expected {wanted!r}"
    return None


async def measure(inbounds: dict[str, Inbound], upstreams: dict[str, Upstream],
                  plan: Rounds) -> list[Cell]:
    """Every pair, both kinds; raises if a translation does not carry the answer."""
    jobs = []
    for inbound in inbounds.values():
        for upstream in upstreams.values():
            problem = (check(inbound, upstream, translate(inbound, upstream))
                       or check(inbound, upstream, await translate_stream(inbound, upstream)))
            if problem:
                raise RuntimeError(problem)
            jobs.append(_Job(inbound, upstream, Cell(inbound.name, upstream.name, "non-stream"),
                             Cell(inbound.name, upstream.name, "stream")))
    for job in jobs:
        await job.run(plan.warmup)
    gc.collect()
    for _ in range(plan.rounds):
        for job in jobs:
            await job.run(plan.per_round, timed=True)
    return [cell for job in jobs for cell in (job.plain, job.streamed)]


@dataclass(slots=True)
class _Job:
    inbound: Inbound
    upstream: Upstream
    plain: Cell
    streamed: Cell

    async def run(self, count: int, *, timed: bool = False) -> None:
        inbound, upstream, clock = self.inbound, self.upstream, time.perf_counter_ns
        plain_floor = (inbound.request, upstream.answer)
        stream_floor = (inbound.stream_request, *event_payloads(list(upstream.stream)))
        for _ in range(count):
            start = clock()
            translate(inbound, upstream)
            middle = clock()
            floor(plain_floor)
            after_floor = clock()
            await translate_stream(inbound, upstream)
            streamed = clock()
            floor(stream_floor)
            end = clock()
            if timed:
                self.plain.path_ns.append(middle - start)
                self.plain.floor_ns.append(after_floor - middle)
                self.streamed.path_ns.append(streamed - after_floor)
                self.streamed.floor_ns.append(end - streamed)


def run(inbounds: dict[str, Inbound], upstreams: dict[str, Upstream],
        plan: Rounds) -> list[Cell]:
    return asyncio.run(measure(inbounds, upstreams, plan))
