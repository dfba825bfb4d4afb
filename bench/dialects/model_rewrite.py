"""What renaming the model costs a pass-through, in process, against baselines measured in the
same run:

    request   the Anthropic caller's body with the upstream's model (`with_top_level_string`),
              against decoding and encoding the whole body again (what the OpenAI
              pass-through does to its request), for a short request and for an agent-sized
              one (tool schemas and a long history) with the model first, between nested
              values, and last
    answer    the caller's model name written into one answer or stream event
              (`replaced_string`), against one `orjson.loads` of the same bytes (the parse
              accounting already pays for every event that carries usage)

    .venv/bin/python -m bench.dialects.model_rewrite            # about 20 seconds
    .venv/bin/python -m bench.dialects.model_rewrite --quick    # a few seconds

Each figure is the median over rounds of the mean time per call; the ratio is that median
÷ the baseline's median.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from cometgate.dialects.json_field import replaced_string, with_top_level_string


def timed(call: Callable[[], object], *, rounds: int, per_round: int) -> float:
    """Median over rounds of the mean seconds per call."""
    call()
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            call()
        means.append((time.perf_counter() - start) / per_round)
    return statistics.median(means)


def agent_request(*, model_at: str) -> dict[str, Any]:
    tools = [{"name": f"tool_{i}", "description": "Does one thing. " * 12,
              "input_schema": {"type": "object", "properties": {
                  f"arg_{j}": {"type": "string", "description": "An argument. " * 4}
                  for j in range(8)}}} for i in range(30)]
    history = [{"role": "user" if i % 2 == 0 else "assistant",
                "content": [{"type": "text", "text": "Some words of the conversation. " * 20}]}
               for i in range(40)]
    system = [{"type": "text", "text": "You are an agent."}]
    if model_at == "first":
        return {"model": "alias", "max_tokens": 32000, "messages": history, "tools": tools,
                "system": system}
    if model_at == "between":  # the Python SDK's order: after messages, before the rest
        return {"max_tokens": 32000, "messages": history, "model": "alias", "tools": tools,
                "system": system}
    return {"max_tokens": 32000, "messages": history, "tools": tools, "system": system,
            "model": "alias"}


def short_request() -> dict[str, Any]:
    return {"model": "alias", "max_tokens": 256,
            "messages": [{"role": "user", "content": "Weather in Lima?"}]}


def answers() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    text = "A sentence of the answer. " * 40
    return {
        "OpenAI chunk": (b"data: " + orjson.dumps({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-up", "choices": [{"index": 0, "delta": {"content": "Hello"},
                                            "finish_reason": None}]}) + b"\n\n", ("model",)),
        "Anthropic message_start": (b"event: message_start\ndata: " + orjson.dumps({
            "type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-up",
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}) + b"\n\n",
            ("message", "model")),
        "Gemini SSE event": (b"data: " + orjson.dumps({
            "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"},
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2,
                              "totalTokenCount": 10},
            "modelVersion": "gemini-up", "responseId": "r"}) + b"\r\n\r\n", ("modelVersion",)),
        "Gemini whole answer": (orjson.dumps({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 200,
                              "totalTokenCount": 208},
            "modelVersion": "gemini-up", "responseId": "r"}, option=orjson.OPT_INDENT_2),
            ("modelVersion",)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    rounds, per_round = (5, 200) if quick else (15, 1000)

    print(f"{'request (Anthropic pass-through)':<34}{'bytes':>8}{'in place µs':>13}"
          f"{'re-encode µs':>14}{'ratio':>8}")
    for label, document in (("short", short_request()),
                            ("agent-sized, model first", agent_request(model_at="first")),
                            ("agent-sized, model between", agent_request(model_at="between")),
                            ("agent-sized, model last", agent_request(model_at="last"))):
        body = orjson.dumps(document)
        in_place = timed(lambda b=body, d=document: with_top_level_string(b, d, "model", "up"),
                         rounds=rounds, per_round=per_round // 10 or 1)
        again = timed(lambda b=body: orjson.dumps({**orjson.loads(b), "model": "up"}),
                      rounds=rounds, per_round=per_round // 10 or 1)
        print(f"{label:<34}{len(body):>8}{in_place * 1e6:>13.1f}{again * 1e6:>14.1f}"
              f"{in_place / again:>8.2f}")

    print(f"\n{'answer (model name for the caller)':<34}{'bytes':>8}{'rename µs':>13}"
          f"{'parse µs':>14}{'ratio':>8}")
    for label, (data, path) in answers().items():
        rename = timed(lambda d=data, p=path: replaced_string(d, p, "alias"),
                       rounds=rounds, per_round=per_round)
        payload = data.split(b"data: ", 1)[-1]
        parse = timed(lambda p=payload: orjson.loads(p), rounds=rounds, per_round=per_round)
        print(f"{label:<34}{len(data):>8}{rename * 1e6:>13.2f}{parse * 1e6:>14.2f}"
              f"{rename / parse:>8.2f}")


if __name__ == "__main__":
    main()
