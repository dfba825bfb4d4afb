"""A cachedContent on the local model: a request whose cached prefix llama.cpp still holds in
its KV cache ("warm": the same cache used just before) against the same request after another
prompt took the KV cache ("cold"), measured in the same run on the same gateway.

    .venv/bin/python bench/cached_prefix.py [--rounds 5] [--repeat 40]

Starts `cometgate serve` (embedded defaults, the local model) on 127.0.0.1 in a temporary data
directory, creates one cache of `--repeat` handbook sentences, then for each round asks an
unrelated short question (which takes the KV cache), a cached question (cold) and another
cached question (warm). Every generation is one token, greedy, not streamed: the time is the
prompt's evaluation. Prints the medians, their ratio, and the cachedContentTokenCount each kind
reported (what llama.cpp took from its KV cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench.processes import start_gateway, stop

MODEL = "smollm2-135m-instruct"
SENTENCE = "Visitors sign in at the lodge before they walk the river path to the north gate. "
# No seed: a seeded request makes the worker evaluate the whole prompt again (to repeat
# exactly), which is what this measures the absence of.
CONFIG = {"maxOutputTokens": 1, "temperature": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=40, help="handbook sentences cached")
    args = parser.parse_args()
    cometgate = Path(sys.executable).parent / "cometgate"
    with tempfile.TemporaryDirectory() as data, (Path(data) / "serve.log").open("wb") as log:
        gateway = start_gateway(cometgate, Path(data), log, timeout=300)
        try:
            run(gateway.base_url, gateway.key, args.rounds, args.repeat)
        finally:
            stop(gateway.process)


def run(base_url: str, key: str, rounds: int, repeat: int) -> None:
    with httpx.Client(base_url=base_url, headers={"x-goog-api-key": key}, timeout=300) as http:
        cache = _checked(http.post("/v1beta/cachedContents", json={
            "model": f"models/{MODEL}", "ttl": "3600s",
            "contents": [{"role": "user", "parts": [{"text": SENTENCE * repeat}]}]}))
        print(f"cache: {cache['usageMetadata']['totalTokenCount']} tokens")
        timings: dict[str, list[float]] = {"cold": [], "warm": []}
        served: dict[str, list[int]] = {"cold": [], "warm": []}
        for index in range(rounds):
            _generate(http, {"contents": [{"role": "user", "parts": [{"text": "Hi!"}]}]})
            for kind in ("cold", "warm"):
                question = f"Question {index} ({kind}): where do visitors sign in?"
                started = time.perf_counter()
                answer = _generate(http, {
                    "cachedContent": cache["name"],
                    "contents": [{"role": "user", "parts": [{"text": question}]}]})
                timings[kind].append(time.perf_counter() - started)
                served[kind].append(answer["usageMetadata"].get("cachedContentTokenCount", 0))
        cold, warm = (statistics.median(timings[k]) * 1000 for k in ("cold", "warm"))
        print(f"cold (KV cache taken by another prompt): median {cold:.0f} ms, "
              f"served from cache {served['cold']}")
        print(f"warm (the cache used just before):       median {warm:.0f} ms, "
              f"served from cache {served['warm']}")
        print(f"warm / cold: {warm / cold:.2f}")
        http.delete(f"/v1beta/{cache['name']}")


def _generate(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return _checked(http.post(f"/v1beta/models/{MODEL}:generateContent",
                              json={**body, "generationConfig": CONFIG}))


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.text}")
    found: dict[str, Any] = response.json()
    return found


if __name__ == "__main__":
    main()
