"""The baseline: `llama_cpp.Llama` called directly, in a process of its own.

    python bench/direct_llama.py --model-path PATH [--threads 2] [--context-size 8192]

Speaks JSON lines: after loading it writes {"ready": true, "load_seconds": s}; then for every
line read on stdin ({"prompt", "max_tokens", "seed", "stream"}) it generates with
`create_chat_completion` and writes one result line. It exits when stdin closes.

Timing is taken inside this process, around the library call only, so the baseline carries no
IPC or HTTP cost. Every job starts from an empty KV cache (`reset()`), as the worker does for a
seeded request, so both sides evaluate the whole prompt.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

# Sampling shared with the gateway side: greedy decoding, so both produce the same tokens.
TEMPERATURE = 0.0
TOP_P = 0.95
TOP_K = 40


def load(model_path: str, threads: int, context_size: int) -> Any:
    import llama_cpp

    return llama_cpp.Llama(
        model_path=model_path,
        n_ctx=context_size,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


def run_job(llama: Any, job: dict[str, Any]) -> dict[str, Any]:
    llama.reset()
    arguments = {
        "messages": [{"role": "user", "content": job["prompt"]}],
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "top_k": TOP_K,
        "seed": job["seed"],
        "max_tokens": job["max_tokens"],
    }
    if job["stream"]:
        return _streamed(llama.create_chat_completion(stream=True, **arguments))
    started = time.perf_counter()
    completion = llama.create_chat_completion(**arguments)
    wall = time.perf_counter() - started
    usage = completion["usage"]
    return {
        "wall": wall,
        "tokens": usage["completion_tokens"],
        "prompt_tokens": usage["prompt_tokens"],
        "text": completion["choices"][0]["message"]["content"] or "",
    }


def _streamed(chunks: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Times a stream; the generator starts work only when first iterated."""
    started = time.perf_counter()
    first: float | None = None
    last: float | None = None
    text = ""
    for chunk in chunks:
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            last = time.perf_counter()
            first = first if first is not None else last
            text += piece
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "ttft": None if first is None else first - started,
        "first_to_last": None if first is None or last is None else last - first,
        "text": text,
    }


def _write(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context-size", type=int, default=8192)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    llama = load(args.model_path, args.threads, args.context_size)
    _write({"ready": True, "load_seconds": time.perf_counter() - started})
    for line in sys.stdin.buffer:
        if line.strip():
            _write(run_job(llama, orjson.loads(line)))
    llama.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
