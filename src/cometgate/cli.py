"""`cometgate serve [--workers N] | keys create|list|show|update|revoke|rotate|delete |
usage totals|export |
conversations list|purge|sweep`.

Every command takes --config and --data-dir, so keys can be made before the server has ever
started. Machine-readable output goes to stdout (only the key, for `keys create`); everything
meant for people goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cometgate.admin_commands import add_key_commands, add_usage_commands
from cometgate.conversation_commands import add_conversation_commands
from cometgate.settings import ConfigError, Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository

MAX_WORKERS = 256


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
    except ConfigError as exc:
        print(f"cometgate: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.run(settings, args)
    except (ValueError, LookupError) as exc:
        print(f"cometgate: {exc}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="YAML config file (default: embedded)")
    common.add_argument("--data-dir", type=Path, help="where the SQLite database lives")
    parser = argparse.ArgumentParser(prog="cometgate", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument("--workers", type=_worker_count, default=None,
                       help="gateway processes sharing the port (default: one per core)")
    serve.set_defaults(run=_serve)

    add_key_commands(commands, common)
    add_usage_commands(commands, common)
    add_conversation_commands(commands, common)
    return parser


async def _with_keys(settings: Settings) -> KeyRepository:
    database = await open_database(settings.database_url)
    return KeyRepository(database)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from cometgate.server import run  # the server stack is only imported when serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every upstream request at INFO, health probes included; ours are enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from cometgate.serve_workers import default_workers, run_workers

    workers = args.workers or default_workers()
    first_key = asyncio.run(_first_key(settings))
    _print_welcome(settings, first_key, workers)
    if workers == 1:
        run(settings)
        return 0
    return run_workers(settings, workers)


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}, got {count}")
    return count


async def _first_key(settings: Settings) -> str | None:
    """On an empty database, make one key so a new user can call the gateway at once."""
    repository = await _with_keys(settings)
    try:
        if await repository.count(include_revoked=True) > 0:
            return None
        _, key = await repository.create("default")
        return key
    finally:
        await repository.database.aclose()


def _print_welcome(settings: Settings, first_key: str | None, workers: int) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    model = settings.models[0].info.id if settings.models else "MODEL"
    processes = f", {workers} workers" if workers > 1 else ""
    lines = [f"cometgate listening on {base} (data in {settings.data_dir}{processes})"]
    if first_key:
        lines += [
            "",
            "Created your first API key (shown once; store it now):",
            f"  {first_key}",
            "",
            f"  export KEY={first_key}",
        ]
    else:
        lines += ["", "Make a key with:  export KEY=$(cometgate keys create --name me"
                  + (f" --data-dir {settings.data_dir}" if settings.data_dir else "") + ")"]
    lines += [
        "",
        "Try it:",
        f'  curl "{base}/v1beta/models/{model}:generateContent" \\',
        "    -H \"x-goog-api-key: $KEY\" -H 'Content-Type: application/json' -X POST \\",
        "    -d '{\"contents\":[{\"parts\":[{\"text\":\"How does AI work?\"}]}]}'",
        "",
        f"The same key works for OpenAI clients (base URL {base}/v1) and Anthropic clients",
        f"(base URL {base}).",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
