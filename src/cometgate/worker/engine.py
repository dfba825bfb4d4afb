"""The llama.cpp engine: one model, one generation thread, a FIFO queue of jobs.

Invariants:
- Only the generation thread touches the llama.cpp context (it is not thread-safe). Other threads
  use only the vocabulary (tokenize, detokenize, grammar checks), which is read-only once loaded.
- Jobs run one at a time in submission order; each Ticket receives its events on the event loop
  that submitted it, ending with exactly one Finished or Failed.
- A cancelled ticket stops its generation before the next token, or is skipped if still queued.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cometgate.worker.generation import (
    Failed,
    Finished,
    GenerationEvent,
    GenerationJob,
    run_generation,
)
from cometgate.worker.prompt import ChatTemplate

log = logging.getLogger(__name__)

# Used when a GGUF carries no template; SmolLM2 and many small models speak ChatML.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model_path: Path
    n_ctx: int
    n_threads: int
    # llama.cpp's penalty on tokens seen in the recent window; 1.0 is none. A 135M model
    # otherwise loops on a phrase until its output limit (see defaults.yaml).
    repeat_penalty: float = 1.0


class Ticket:
    """A queued job's handle: iterate its events on the submitting loop; cancel at any time."""

    def __init__(self, job: GenerationJob, loop: asyncio.AbstractEventLoop) -> None:
        self.job = job
        self._loop = loop
        self._events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def deliver(self, event: GenerationEvent) -> None:
        """Called from the generation thread."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self.cancel()  # the loop is closed: nobody is listening any more

    async def events(self) -> AsyncIterator[GenerationEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Finished | Failed):
                return


class Engine:
    """Loads the model on its own thread and then serves queued jobs on that thread."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._jobs: queue.Queue[Ticket | None] = queue.Queue()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        self._llama: Any = None
        self._template: ChatTemplate | None = None
        self.load_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    @property
    def template(self) -> ChatTemplate:
        if self._template is None:
            raise RuntimeError("model not loaded")
        return self._template

    def start(self, on_load_failure: Callable[[str], None]) -> None:
        self._thread = threading.Thread(
            target=self._serve, args=(on_load_failure,), name="llama-generation", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancels queued and running jobs, ends the thread and frees the model."""
        while True:
            try:
                pending = self._jobs.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                pending.cancel()
                pending.deliver(Finished("cancelled", 0))
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, job: GenerationJob) -> Ticket:
        ticket = Ticket(job, asyncio.get_running_loop())
        self._jobs.put(ticket)
        return ticket

    def tokenize(self, text: str) -> list[int]:
        """Prompt text → token ids, special tokens parsed, BOS added as the model asks."""
        llama = self._require_model()
        add_bos = bool(llama._model.add_bos_token())
        bos = self.template.bos_token
        if add_bos and bos and text.startswith(bos):
            text = text[len(bos) :]  # the template already wrote it; do not double it
        return list(llama.tokenize(text.encode(), add_bos=add_bos, special=True))

    def grammar_is_valid(self, grammar: str) -> bool:
        """Whether llama.cpp parses `grammar`; an unparsable one would crash the sampler."""
        import llama_cpp

        llama = self._require_model()
        sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar.encode(), b"root"
        )
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    def _require_model(self) -> Any:
        if self._llama is None:
            raise RuntimeError("model not loaded")
        return self._llama

    def _serve(self, on_load_failure: Callable[[str], None]) -> None:
        try:
            self._load()
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.error("cannot load model %s: %s", self.config.model_path, self.load_error)
            on_load_failure(self.load_error)
            return
        while (ticket := self._jobs.get()) is not None:
            self._run(ticket)
        self._llama.close()

    def _load(self) -> None:
        import llama_cpp

        llama = llama_cpp.Llama(
            model_path=str(self.config.model_path),
            n_ctx=self.config.n_ctx,
            n_threads=self.config.n_threads,
            n_threads_batch=self.config.n_threads,
            verbose=False,
        )
        metadata: dict[str, str] = dict(llama.metadata)
        self._template = ChatTemplate(
            metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=_special_text(llama, llama.token_bos()),
            eos_token=_special_text(llama, llama.token_eos()),
        )
        self._llama = llama
        self._loaded.set()
        log.info("model loaded: %s (n_ctx=%d)", self.config.model_path.name, self.config.n_ctx)

    def _run(self, ticket: Ticket) -> None:
        if ticket.cancelled:
            ticket.deliver(Finished("cancelled", 0))
            return
        try:
            run_generation(self._llama, ticket.job, ticket.deliver, lambda: ticket.cancelled,
                           repeat_penalty=self.config.repeat_penalty)
        except Exception as error:  # a failed job must not take the thread down
            log.exception("generation failed")
            ticket.deliver(Failed(f"{type(error).__name__}: {error}"))


def _special_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", errors="replace")
