"""The bundled model as a provider: a supervised worker process reached through the ordinary
OpenAI-dialect HTTP provider, exactly as a vLLM or llama.cpp server elsewhere would be."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

from cometgate.bundled_model import BundledModelMissing, bundled_gguf_path
from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.errors import UpstreamUnavailable
from cometgate.providers.base import Target
from cometgate.providers.http import TokenizingHttpProvider
from cometgate.providers.local.supervisor import (
    SharedWorker,
    WorkerCommand,
    WorkerSupervisor,
    WorkerWatch,
)
from cometgate.settings import LocalProviderSettings

# The worker implements top_k and vLLM's /tokenize, and understands any response schema root.
WORKER_OPTIONS = OpenAIOptions(accepts_top_k=True, tokenize_endpoint=True)


class LocalProvider:
    def __init__(self, settings: LocalProviderSettings, *, model_name: str,
                 shared: SharedWorker | None = None) -> None:
        """`shared`: the worker another process supervises (`serve --workers N`); this
        provider then only watches its health and never starts it."""
        self.name = settings.name
        self._problem: str | None = None
        path: Path | None = settings.model_path
        try:
            path = path or bundled_gguf_path()
        except BundledModelMissing as exc:
            self._problem = str(exc)
        if path is not None and not path.is_file():
            self._problem = f"model file {path} does not exist"
        command = WorkerCommand(
            model_path=path or _NOWHERE,
            model_name=model_name,
            host=settings.host,
            threads=settings.threads,
            context_size=settings.context_size,
            repeat_penalty=settings.repeat_penalty,
        )
        self.supervisor: WorkerSupervisor | WorkerWatch = (
            WorkerSupervisor(command, port=settings.port) if shared is None
            else WorkerWatch(settings.host, shared))
        self._http = TokenizingHttpProvider(
            settings.name,
            base_url=f"{self.supervisor.base_url}/v1",
            api_key=self.supervisor.token,
            options=WORKER_OPTIONS,
            timeouts=settings.timeouts,
        )

    async def start(self) -> None:
        if self._problem is None:
            self.supervisor.start()

    def is_ready(self) -> bool:
        return self.supervisor.ready

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        self._require_ready()
        return await self._http.generate(request, target)

    async def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        self._require_ready()
        async for event in self._http.stream(request, target):
            yield event

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int:
        self._require_ready()
        return await self._http.count_tokens(request, target)

    async def aclose(self) -> None:
        await self.supervisor.aclose()
        await self._http.aclose()

    def _require_ready(self) -> None:
        if self._problem is not None:
            raise UpstreamUnavailable(f"The local model cannot start: {self._problem}.")
        if not self.supervisor.ready:
            # While the worker loads or restarts after a crash, answer at once rather than hang.
            raise UpstreamUnavailable(
                "The local model is starting or restarting; retry shortly.", retry_after=2.0
            )


_NOWHERE = Path("/nonexistent.gguf")  # placeholder when no model file exists
