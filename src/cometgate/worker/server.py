"""The local model worker: an OpenAI-compatible HTTP server around one llama.cpp model.

    python -m cometgate.worker --model-path PATH --model-name NAME \\
        --host 127.0.0.1 --port N --threads 2 --context-size 8192

It binds first and loads the model in the background: /health answers 503 until the model is
loaded, then 200. If loading fails the process exits with status 1 (its supervisor restarts it).
SIGTERM (and Ctrl-C) shut it down gracefully: uvicorn stops accepting, running streams end,
the generation thread is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cometgate.bundled_model import bundled_gguf_path
from cometgate.worker.auth import WorkerTokenGuard
from cometgate.worker.completion import (
    GenerationFailed,
    collect_choices,
    described_tools,
    plan_completion,
    prompt_tokens,
    stream_completion,
    submit_all,
)
from cometgate.worker.engine import Engine, EngineConfig
from cometgate.worker.openai_wire import StreamIdentity, completion_body, error_body
from cometgate.worker.request import (
    RequestError,
    parse_chat_request,
    parse_json_body,
    parse_messages,
    parse_tools,
)

log = logging.getLogger("cometgate.local.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    model_path: Path
    model_name: str
    host: str
    port: int
    threads: int
    context_size: int
    repeat_penalty: float = 1.0


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def request_error_response(error: RequestError) -> Response:
    body = error_body(error.message, param=error.param, code=error.code)
    return json_response(body, error.status)


class WorkerApp:
    """Routes of the worker over one Engine."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name
        self.created = int(time.time())

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/tokenize", self.tokenize, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        if not self.engine.loaded:
            return json_response({"status": "loading"}, 503)
        return json_response({"status": "ok"})

    async def models(self, request: Request) -> Response:
        model = {"id": self.model_name, "object": "model", "created": self.created,
                 "owned_by": "cometgate", "context_length": self.engine.n_ctx}
        return json_response({"object": "list", "data": [model]})

    async def chat_completions(self, request: Request) -> Response:
        try:
            chat = parse_chat_request(parse_json_body(await request.body()))
            self._check_ready(chat.model)
            plan = plan_completion(self.engine, chat)
        except RequestError as error:
            return request_error_response(error)
        tickets = submit_all(self.engine, plan)
        identity = StreamIdentity.fresh(chat.model)
        if chat.stream:
            body = stream_completion(tickets, plan, identity, chat.include_usage)
            return StreamingResponse(body, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        collecting = asyncio.ensure_future(collect_choices(tickets, plan))
        if not await _finished_before_disconnect(collecting, request):
            for ticket in tickets:
                ticket.cancel()
            return Response(status_code=499)  # nobody will read it
        try:
            choices, usage = collecting.result()
        except GenerationFailed as error:
            return json_response(error_body(str(error), kind="server_error"), 500)
        return json_response(completion_body(identity, choices, usage))

    async def tokenize(self, request: Request) -> Response:
        try:
            body = parse_json_body(await request.body())
            self._check_ready(body.get("model"))
            tokens = self._tokens_for(body)
        except RequestError as error:
            return request_error_response(error)
        return json_response({"count": len(tokens), "max_model_len": self.engine.n_ctx,
                              "tokens": tokens})

    def _tokens_for(self, body: dict[str, Any]) -> list[int]:
        if isinstance(body.get("prompt"), str):
            return self.engine.tokenize(body["prompt"])
        messages = parse_messages(body.get("messages"))
        tools = parse_tools(body.get("tools"))
        # An extension: tool_choice "none" renders without tool descriptions, as completions do.
        choice = "none" if body.get("tool_choice") == "none" else "auto"
        return prompt_tokens(self.engine, messages, described_tools(tools, choice))

    def _check_ready(self, model: object) -> None:
        if model is not None and model != self.model_name:
            raise RequestError(f"The model `{model}` does not exist or you do not have access "
                               "to it.", param="model", code="model_not_found", status=404)
        if not self.engine.loaded:
            raise RequestError("The model is still loading; retry shortly.",
                               code="model_not_loaded", status=503)


async def _finished_before_disconnect(work: asyncio.Future[Any], request: Request) -> bool:
    """Waits for `work`; False (and `work` cancelled) if the client disconnects first."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if work.done():
        return True
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return False


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(
    engine: Engine, model_name: str, on_load_failure: Callable[[str], None], *, token: str,
) -> Starlette:
    """Every request must carry `token` (see worker_auth)."""
    worker = WorkerApp(engine, model_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine.start(on_load_failure)
        try:
            yield
        finally:
            await asyncio.to_thread(engine.stop)

    return Starlette(routes=worker.routes(), lifespan=lifespan,
                     middleware=[Middleware(WorkerTokenGuard, token=token)])


def parse_args(argv: Sequence[str] | None = None) -> WorkerSettings:
    parser = argparse.ArgumentParser(prog="python -m cometgate.worker",
                                     description="OpenAI-compatible llama.cpp model worker")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="GGUF file (default: the bundled SmolLM2)")
    parser.add_argument("--model-name", default="smollm2-135m-instruct")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context-size", type=int, default=8192)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.context_size < 16:
        parser.error("--threads must be >= 1 and --context-size >= 16")
    if not args.repeat_penalty > 0:
        parser.error("--repeat-penalty must be positive")
    return WorkerSettings(args.model_path or bundled_gguf_path(), args.model_name, args.host,
                          args.port, args.threads, args.context_size, args.repeat_penalty)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = parse_args(argv)
    token = sys.stdin.readline().strip()
    if not token:
        log.error("the worker reads its access token from the first line of its stdin")
        return 2
    if not settings.model_path.is_file():
        log.error("model file not found: %s", settings.model_path)
        return 2
    engine = Engine(EngineConfig(settings.model_path, settings.context_size, settings.threads,
                                 settings.repeat_penalty))
    server: uvicorn.Server | None = None

    def stop_on_load_failure(reason: str) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(engine, settings.model_name, stop_on_load_failure, token=token)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, workers=1,
                            log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal through the
    # handler that was installed before it; with this one the process exits 0 after a clean stop.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _ignore_after_graceful_stop)
    server.run()
    return 1 if engine.load_error else 0


def _ignore_after_graceful_stop(signum: int, frame: FrameType | None) -> None:
    log.info("stopped on signal %d", signum)

