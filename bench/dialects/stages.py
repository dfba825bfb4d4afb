"""Where a non-stream translation spends its time: each of the four codec steps alone.

    decode request     caller bytes → canonical            (per caller dialect)
    encode request     canonical → upstream body, orjson   (per upstream dialect)
    decode response    upstream answer bytes → canonical   (per upstream dialect)
    encode response    canonical → caller bytes            (per caller dialect)

A pair's path is about the sum of its four steps; the steps show which end costs what.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from bench.dialects.pairs import MODEL, Inbound, Upstream
from bench.proxy.figures import percentile

from cometgate.canonical import GenerateRequest, GenerateResponse


@dataclass(frozen=True, slots=True)
class Stage:
    step: str
    dialect: str
    p50_us: float
    p99_us: float


def _timed(step: str, dialect: str, work: Callable[[], object], count: int) -> Stage:
    clock = time.perf_counter_ns
    for _ in range(max(10, count // 10)):  # warm-up
        work()
    samples = []
    for _ in range(count):
        start = clock()
        work()
        samples.append((clock() - start) / 1000)
    return Stage(step, dialect, percentile(samples, 50), percentile(samples, 99))


def measure(inbounds: dict[str, Inbound], upstreams: dict[str, Upstream],
            count: int) -> list[Stage]:
    any_inbound = next(iter(inbounds.values()))
    canonical = any_inbound.decode(any_inbound.request)
    answering = next(iter(upstreams.values()))
    response = answering.codec.decode_response(answering.answer, canonical, MODEL)
    stages = [_timed("decode request", i.name, _decoding(i), count) for i in inbounds.values()]
    for upstream in upstreams.values():
        stages.append(_timed("encode request", upstream.name,
                             _encoding_request(upstream, canonical), count))
        stages.append(_timed("decode response", upstream.name,
                             _decoding_response(upstream, canonical), count))
    stages += [_timed("encode response", i.name, _encoding(i, response), count)
               for i in inbounds.values()]
    return stages


def _decoding(inbound: Inbound) -> Callable[[], object]:
    return lambda: inbound.decode(inbound.request)


def _encoding_request(upstream: Upstream, request: GenerateRequest) -> Callable[[], object]:
    codec = upstream.codec
    return lambda: orjson.dumps(codec.encode_request(request, upstream.model, stream=False).body)


def _decoding_response(upstream: Upstream, request: GenerateRequest) -> Callable[[], object]:
    return lambda: upstream.codec.decode_response(upstream.answer, request, MODEL)


def _encoding(inbound: Inbound, response: GenerateResponse) -> Callable[[], object]:
    return lambda: inbound.encode(response)
