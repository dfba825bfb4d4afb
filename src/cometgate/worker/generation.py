"""One generation on a loaded llama.cpp model: sampling, stop handling, logprobs.

Runs on the engine's single generation thread (llama.cpp contexts are not thread-safe). The
pure parts (StopScanner, token_logprobs) are separate so they can be tested without a model.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cometgate.worker.request import Sampling

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """OpenAI's choices[].logprobs.content[] entry for one sampled token."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top_logprobs: tuple[TopLogprob, ...]


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """What to generate. `max_tokens` is already clamped to the room left in the context;
    `top_logprobs` is None when logprobs were not asked for."""

    prompt_tokens: tuple[int, ...]
    sampling: Sampling
    max_tokens: int
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    top_logprobs: int | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: FinishReason
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens reused from the KV cache, not evaluated again


@dataclass(frozen=True, slots=True)
class Failed:
    message: str


GenerationEvent = TextDelta | Finished | Failed


class StopScanner:
    """Cuts generated text at the first stop sequence. Text that might be the start of a stop
    sequence is held back until it is known not to be one, so a stop sequence never leaks into
    the output, even split across tokens."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Adds `text`; returns what may be emitted now. After a stop, returns ""."""
        if self.stopped:
            return ""
        self._pending += text
        cut = min((i for s in self._stops if (i := self._pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            emitted, self._pending = self._pending[:cut], ""
            return emitted
        keep = self._longest_partial_stop()
        emitted = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(emitted) :]
        return emitted

    def flush(self) -> str:
        """What was held back, once the output has ended without a stop sequence."""
        emitted, self._pending = ("" if self.stopped else self._pending), ""
        return emitted

    def _longest_partial_stop(self) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:size]):
                    longest = size
                    break
        return longest


def token_logprobs(
    logits: npt.NDArray[np.float32],
    token: int,
    top_n: int,
    piece_of: Callable[[int], bytes],
) -> TokenLogprob:
    """Log-probabilities from raw logits (before temperature and filters, as OpenAI reports)."""
    shifted = logits.astype(np.float64) - float(np.max(logits))
    log_probs = shifted - float(np.log(np.sum(np.exp(shifted))))
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        best = np.argpartition(-log_probs, top_n - 1)[:top_n]
        ordered = sorted(best.tolist(), key=lambda i: -float(log_probs[i]))
        top = tuple(_top_entry(i, float(log_probs[i]), piece_of) for i in ordered)
    piece = piece_of(token)
    return TokenLogprob(
        piece.decode("utf-8", errors="replace"), float(log_probs[token]), tuple(piece), top
    )


def _top_entry(token: int, logprob: float, piece_of: Callable[[int], bytes]) -> TopLogprob:
    piece = piece_of(token)
    return TopLogprob(piece.decode("utf-8", errors="replace"), logprob, tuple(piece))


def run_generation(
    llama: Any,
    job: GenerationJob,
    emit: Callable[[GenerationEvent], None],
    cancelled: Callable[[], bool],
    *,
    repeat_penalty: float = 1.0,
) -> None:
    """Generates for `job`, emitting TextDelta events and then exactly one Finished (or Failed,
    from the caller). Stops at an end-of-generation token, a stop sequence, max_tokens, or as
    soon as `cancelled()` turns true (checked between tokens)."""
    # The binding is optional; only the worker process needs it.
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    sampling = job.sampling
    if sampling.seed is not None:
        llama.reset()  # a full prompt evaluation makes same-seed runs repeat exactly
    reused = reused_prefix(list(llama._input_ids[:llama.n_tokens]), job.prompt_tokens)
    llama.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
    tokens = llama.generate(
        list(job.prompt_tokens),
        temp=sampling.temperature,
        top_p=sampling.top_p,
        top_k=max(sampling.top_k, 0),
        min_p=sampling.min_p,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        repeat_penalty=repeat_penalty,
        grammar=None if job.grammar is None else LlamaGrammar.from_string(job.grammar),
    )
    scanner = StopScanner(job.stop)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    held: list[TokenLogprob] = []
    count = 0
    reason: FinishReason = "length"
    vocab = llama._model.vocab
    try:
        while count < job.max_tokens:
            if cancelled():
                reason = "cancelled"
                break
            token = next(tokens, None)
            if token is None or llama_cpp.llama_vocab_is_eog(vocab, token):
                reason = "stop"
                break
            count += 1
            if job.top_logprobs is not None:
                held.append(_logprob_of(llama, token, job.top_logprobs))
            text = scanner.feed(decoder.decode(llama.detokenize([token])))
            if scanner.stopped:
                reason = "stop"
            if text or scanner.stopped:
                emit(TextDelta(text, tuple(held)))
                held = []
            if scanner.stopped:
                break
    finally:
        tokens.close()
    if not scanner.stopped:
        rest = scanner.feed(decoder.decode(b"", final=True)) + scanner.flush()
        if rest or held:
            emit(TextDelta(rest, tuple(held)))
    emit(Finished(reason, count, reused))


def reused_prefix(evaluated: list[int], prompt: tuple[int, ...]) -> int:
    """How much of `prompt` llama.cpp's `generate` takes from its KV cache: the longest
    prefix it shares with the tokens evaluated last, less the one token it evaluates again
    to refresh the logits when the whole prompt matches (all of it when the cache holds
    exactly the prompt). The same rule generate applies, read just before it runs."""
    shared = 0
    for old, new in zip(evaluated, prompt, strict=False):
        if old != new:
            break
        shared += 1
    if shared == len(prompt) and len(evaluated) != len(prompt):
        return max(shared - 1, 0)
    return shared


def _logprob_of(llama: Any, token: int, top_n: int) -> TokenLogprob:
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
    logits = np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),))
    return token_logprobs(logits, token, top_n, lambda t: bytes(llama.detokenize([t])))
