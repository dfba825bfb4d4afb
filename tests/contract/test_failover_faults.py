"""Failover under injected faults: models with candidates across provider kinds and several
credentials, upstreams that fail in their own wire formats, and the invariants that must hold
whatever happens — one answer per caller, bounded retries, cooled credentials left alone,
circuits that open and close, usage counted exactly once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.contract.conftest import (
    Fakes,
    Gateway,
    model_block,
    provider_block,
    running_gateway,
    settings_for,
)
from tests.contract.scenarios import (
    error_of,
    parts_of,
    script_error,
    script_text,
    sse_events,
    streamed_text,
    user,
)
from tests.contract.upstreams import Fault
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai

KEYS = {"OA1": "oa-key-1", "OA2": "oa-key-2", "AN1": "an-key-1", "AN2": "an-key-2",
        "GM1": "gm-key-1"}
RETRIES = 1
BREAKER_FAILURES = 2
BREAKER_OPEN_SECONDS = 0.3
BODY = {"contents": [user("Hi")]}


def failover_config(fakes: Fakes) -> dict[str, Any]:
    urls = fakes.urls
    return {
        "routing": {"retries": RETRIES, "backoff_base": 0.001, "backoff_max": 0.004,
                    "breaker_failures": BREAKER_FAILURES,
                    "breaker_open_seconds": BREAKER_OPEN_SECONDS, "rate_limit_cooldown": 30.0,
                    "credential_cooldown": 60.0, "max_retry_after": 0.0},
        "server": {"metrics": "open"},  # the tests read token counts from /metrics
        "providers": {
            "oa": provider_block("openai", urls["openai"], ["OA1", "OA2"],
                                 timeouts={"first_byte": 0.2}),
            "an": provider_block("anthropic", urls["anthropic"], ["AN1", "AN2"],
                                 timeouts={"first_byte": 0.2}),
            "an-one": provider_block("anthropic", urls["anthropic"], ["AN1"]),
            "gm": provider_block("gemini", urls["gemini"], ["GM1"],
                                 timeouts={"first_byte": 0.2}),
        },
        "models": {
            # openai, then anthropic, then the Gemini pass-through
            "mixed": model_block([("oa", "gpt-up"), ("an", "claude-up"), ("gm", "gemini-up")]),
            "breaker": model_block([("an-one", "claude-up"), ("oa", "gpt-up")]),
            "gm-first": model_block([("gm", "gemini-up"), ("oa", "gpt-up")]),
        },
    }


@pytest.fixture
async def gw(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(settings_for(tmp_path, failover_config(fakes), KEYS)) as running:
        yield running


def generate(model: str) -> str:
    return f"/v1beta/models/{model}:generateContent"


def stream(model: str) -> str:
    return f"/v1beta/models/{model}:streamGenerateContent?alt=sse"


async def test_transient_failures_fail_over_across_kinds(gw: Gateway, fakes: Fakes) -> None:
    script_error("openai", fakes, 500, times=10)
    script_text("anthropic", fakes, "From Anthropic.")
    response = await gw.http.post(generate("mixed"), json=BODY)
    assert parts_of(response) == [{"text": "From Anthropic."}]
    # oa: first try + RETRIES, then its circuit is open (BREAKER_FAILURES = 2), so its
    # second credential is not tried; anthropic answers at once; gemini is never asked.
    assert len(fakes.openai.requests) == RETRIES + 1 == BREAKER_FAILURES
    assert len(fakes.anthropic.requests) == 1 and fakes.gemini.requests == []


async def test_every_candidate_failing_gives_one_bounded_503(gw: Gateway, fakes: Fakes) -> None:
    for kind in ("openai", "anthropic", "gemini"):
        script_error(kind, fakes, 503, times=10)
    response = await gw.http.post(generate("mixed"), json=BODY)
    error_of(response, 503, "UNAVAILABLE")
    assert int(response.headers["retry-after"]) >= 1
    # Each target is tried until its circuit opens, and never beyond.
    assert len(fakes.openai.requests) == BREAKER_FAILURES
    assert len(fakes.anthropic.requests) == BREAKER_FAILURES
    assert len(fakes.gemini.requests) == BREAKER_FAILURES


async def test_a_rate_limited_credential_is_skipped_next_time(gw: Gateway, fakes: Fakes) -> None:
    fakes.openai.replies.append(openai.Reply(status=429, error_type="rate_limit_exceeded",
                                             headers={"retry-after": "30"}))
    script_text("openai", fakes, "From the second key.")
    response = await gw.http.post(generate("mixed"), json=BODY)
    assert parts_of(response) == [{"text": "From the second key."}]
    assert fakes.layers["openai"].credentials == ["oa-key-1", "oa-key-2"]
    for _ in range(4):  # round-robin would come back to key 1; it is cooling
        assert (await gw.http.post(generate("mixed"), json=BODY)).status_code == 200
    assert fakes.layers["openai"].credentials[2:] == ["oa-key-2"] * 4


async def test_a_rejected_credential_is_cooled(gw: Gateway, fakes: Fakes) -> None:
    fakes.anthropic.replies.append(anthropic.Reply(status=401,
                                                   error_type="authentication_error"))
    for _ in range(3):
        script_text("anthropic", fakes, "never: the key is cooling")
        script_text("openai", fakes, "From OpenAI.")
    for _ in range(3):
        response = await gw.http.post(generate("breaker"), json=BODY)
        assert parts_of(response) == [{"text": "From OpenAI."}]
    assert fakes.layers["anthropic"].credentials == ["an-key-1"]  # refused once, then left
    assert len(fakes.openai.requests) == 3


async def test_the_circuit_opens_and_a_half_open_probe_closes_it(
    gw: Gateway, fakes: Fakes
) -> None:
    anthropic_seen = fakes.layers["anthropic"].credentials
    script_error("anthropic", fakes, 500, times=BREAKER_FAILURES)
    for _ in range(3):
        script_text("openai", fakes, "fallback")
    # RETRIES = 1: the first request alone fails an-one twice, which opens its circuit.
    assert parts_of(await gw.http.post(generate("breaker"), json=BODY)) == [
        {"text": "fallback"}]
    assert len(anthropic_seen) == BREAKER_FAILURES
    # Open: an-one is not asked at all.
    assert parts_of(await gw.http.post(generate("breaker"), json=BODY)) == [
        {"text": "fallback"}]
    assert len(anthropic_seen) == BREAKER_FAILURES
    await asyncio.sleep(BREAKER_OPEN_SECONDS + 0.05)  # bounded: the open period, once
    script_text("anthropic", fakes, "probe ok")
    script_text("anthropic", fakes, "closed again")
    assert parts_of(await gw.http.post(generate("breaker"), json=BODY)) == [
        {"text": "probe ok"}]
    assert parts_of(await gw.http.post(generate("breaker"), json=BODY)) == [
        {"text": "closed again"}]
    assert len(anthropic_seen) == BREAKER_FAILURES + 2
    assert len(fakes.openai.requests) == 2


async def test_timeouts_and_resets_fail_over(gw: Gateway, fakes: Fakes) -> None:
    fakes.layers["openai"].faults.extend(Fault(hold_seconds=0.5) for _ in range(2))
    fakes.layers["anthropic"].faults.append(Fault(reset_after_chunks=0))
    fakes.layers["anthropic"].faults.append(Fault(reset_after_chunks=0))
    script_text("gemini", fakes, "Gemini held on.")
    response = await gw.http.post(stream("mixed"), json=BODY)
    assert streamed_text(sse_events(response)) == "Gemini held on."
    assert fakes.layers["openai"].held == 2  # timed out twice (first try + one retry)
    assert len(fakes.layers["anthropic"].credentials) == 2  # reset before any byte, twice


# --- usage, counted once ---------------------------------------------------------------------

async def test_usage_counted_once_after_failover(gw: Gateway, fakes: Fakes) -> None:
    script_error("openai", fakes, 503, times=2)
    fakes.anthropic.replies.append(anthropic.Reply(input_tokens=11, output_tokens=4))
    assert (await gw.http.post(generate("mixed"), json=BODY)).status_code == 200
    assert await gw.tokens("mixed") == {"in": 11.0, "out": 4.0}


@pytest.mark.parametrize("kind_model", ["mixed", "gm-first"])
async def test_usage_of_a_stream_counted_once(
    gw: Gateway, fakes: Fakes, kind_model: str
) -> None:
    """OpenAI reports usage in a last chunk; Gemini repeats a running total in every event,
    which must not be summed."""
    fakes.openai.replies.append(openai.Reply(text="abcdef", chunks=3, prompt_tokens=9,
                                             completion_tokens=6))
    fakes.gemini.replies.append(gemini.Reply(text="abcdef", chunks=3, prompt_tokens=9,
                                             candidates_tokens=6))
    response = await gw.http.post(stream(kind_model), json=BODY)
    assert streamed_text(sse_events(response)) == "abcdef"
    assert await gw.tokens(kind_model) == {"in": 9.0, "out": 6.0}


async def test_usage_of_a_stream_broken_midway_counted_once(gw: Gateway, fakes: Fakes) -> None:
    fakes.layers["gemini"].faults.append(Fault(reset_after_chunks=1))
    fakes.gemini.replies.append(gemini.Reply(text="abcdef", chunks=3, prompt_tokens=9,
                                             candidates_tokens=6))
    response = await gw.http.post(stream("gm-first"), json=BODY)
    *good, last = sse_events(response)
    assert streamed_text(good) == "ab" and last["error"]["code"] == 503
    # What the upstream had reported when it broke: the first event's running usage.
    assert await gw.tokens("gm-first") == {"in": 9.0, "out": 2.0}
    assert fakes.openai.requests == []  # no failover after the first byte


async def test_usage_of_an_anthropic_stream_broken_midway(gw: Gateway, fakes: Fakes) -> None:
    """message_start carries the prompt's tokens; they were spent, so they are counted."""
    script_error("openai", fakes, 500, times=2)
    fakes.anthropic.replies.append(anthropic.Reply(text="abcdef", input_tokens=12,
                                                   fail_mid_stream=True))
    response = await gw.http.post(stream("mixed"), json=BODY)
    *good, last = sse_events(response)
    assert streamed_text(good) == "ab" and isinstance(last["error"]["code"], int)
    tokens = await gw.tokens("mixed")
    assert tokens["in"] == 12.0


# --- many callers at once --------------------------------------------------------------------

FAULTS = ("ok", "ok", "ok", "500", "503", "429", "401", "hold", "reset")


def script_random(fakes: Fakes, rng: random.Random, count: int) -> None:
    """`count` requests' worth of script per upstream, each a seeded random fault or a uniquely
    named answer. Every request takes one fault and one reply, so the two queues stay paired:
    a reset request still consumes its reply (which then reaches no one), a held one none."""
    for kind in ("openai", "anthropic", "gemini"):
        for n in range(count):
            fault = rng.choice(FAULTS)
            layer_fault = {"hold": Fault(hold_seconds=0.4, then_answer=False),
                           "reset": Fault(reset_after_chunks=0)}.get(fault, Fault())
            fakes.layers[kind].faults.append(layer_fault)
            if fault == "ok":
                script_text(kind, fakes, f"{kind}-{n}")
            elif fault == "reset":
                script_text(kind, fakes, f"unseen-{kind}-{n}")
            elif fault != "hold":
                script_error(kind, fakes, int(fault), headers={"retry-after": "1"})


def well_formed(response: httpx.Response) -> tuple[str, dict[str, Any]] | None:
    """The answer's text and usage for a 200, None for a Gemini error; anything else fails."""
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            events = sse_events(response)
            assert "error" not in events[-1], events[-1]
            return streamed_text(events), events[-1]["usageMetadata"]
        (part,) = parts_of(response)
        return str(part["text"]), response.json()["usageMetadata"]
    error = orjson.loads(response.content)["error"]
    assert list(error)[:3] == ["code", "message", "status"]
    assert error["code"] == response.status_code in (429, 503, 504), error
    return None


async def test_thirty_concurrent_callers_with_random_faults(gw: Gateway, fakes: Fakes) -> None:
    rng = random.Random(20240611)
    # Enough script for the most tries the callers can make (see `sent` below): a fake out of
    # script answers its default text, which would reach several callers alike.
    script_random(fakes, rng, 30 * 5 * (RETRIES + 1))

    async def one(n: int) -> httpx.Response:
        path = stream("mixed") if n % 3 == 0 else generate("mixed")
        return await gw.http.post(path, json={"contents": [user(f"caller {n}")]})

    responses = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(30))), 30)
    answers = [answer for r in responses if (answer := well_formed(r)) is not None]
    answered = [text for text, _ in answers]
    assert answered, "with a third of replies good, some callers must be answered"
    assert len(set(answered)) == len(answered)  # no upstream answer reached two callers
    assert not any(t.startswith("unseen") for t in answered)
    sent = sum(len(getattr(fakes, kind).requests) for kind in ("openai", "anthropic"))
    sent += len(fakes.gemini.requests)
    # Bounded: per caller at most (retries + 1) tries of each of the 5 (target, key) pairs.
    assert sent <= 30 * 5 * (RETRIES + 1)
    # Tokens counted once per answered caller, and for nothing else.
    assert await gw.tokens("mixed") == {
        "in": float(sum(usage["promptTokenCount"] for _, usage in answers)),
        "out": float(sum(usage["candidatesTokenCount"] for _, usage in answers)),
    }
