"""`cometgate conversations list|purge|sweep`: the admin API's stored-conversation operations on
the command line, on the database directly (no server needed).

Output contract as for `keys`: a table (list) or a count (purge, sweep) on stdout, messages for
people on stderr. A listing never shows what callers wrote, only what identifies a turn.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from cometgate.admin_commands import parse_time
from cometgate.settings import Settings
from cometgate.storage.conversations import ConversationStore
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository

T = TypeVar("T")
APIS = ("responses", "interactions")


def add_conversation_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser(
        "conversations", help="stored conversations (Responses API store)"
    ).add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common],
                                 help="live stored turns, newest first (never their content)")
    listing.add_argument("--key", help="only this key's (id, name or prefix)")
    listing.add_argument("--api", choices=APIS)
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=_list)
    purge = actions.add_parser("purge", parents=[common],
                               help="remove stored turns matching every filter given")
    purge.add_argument("--key", help="only this key's (id, name or prefix)")
    purge.add_argument("--api", choices=APIS)
    purge.add_argument("--before", help="only turns made before this ISO 8601 time or date")
    purge.add_argument("--id", help="only this turn")
    purge.add_argument("--all", action="store_true", help="everything (when no filter is given)")
    purge.set_defaults(run=_purge)
    sweep = actions.add_parser("sweep", parents=[common],
                               help="remove expired turns now (the server does it hourly)")
    sweep.set_defaults(run=_sweep)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise ValueError("--limit must be from 1 to 1000")

    async def listed(store: ConversationStore, keys: KeyRepository) -> list[Any]:
        key_id = None if args.key is None else (await keys.find(args.key)).id
        return await store.list(api=args.api, key_id=key_id, limit=args.limit)

    print(f"{'ID':60}  {'API':12}  {'KEY':>4}  {'MODEL':24}  {'CREATED':20}  EXPIRES")
    for turn in _run(settings, listed):
        print(f"{turn.id:60}  {turn.api:12}  {turn.key_id:>4}  {turn.model:24}  "
              f"{turn.created_at:%Y-%m-%d %H:%M:%S}   {turn.expires_at:%Y-%m-%d %H:%M:%S}")
    return 0


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    given = [args.key, args.api, args.before, args.id]
    if all(value is None for value in given) and not args.all:
        raise ValueError("name what to purge (--key, --api, --before, --id), or give --all")

    async def purged(store: ConversationStore, keys: KeyRepository) -> int:
        key_id = None if args.key is None else (await keys.find(args.key)).id
        before = None if args.before is None else parse_time(args.before)
        return await store.purge(key_id=key_id, api=args.api, created_before=before,
                                 turn_id=args.id)

    count = _run(settings, purged)
    print(count)
    print(f"purged {count} stored turn(s)", file=sys.stderr)
    return 0


def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    async def swept(store: ConversationStore, keys: KeyRepository) -> int:
        return await store.purge_expired()

    count = _run(settings, swept)
    print(count)
    print(f"removed {count} expired stored turn(s)", file=sys.stderr)
    return 0


def _run(settings: Settings,
         action: Callable[[ConversationStore, KeyRepository], Awaitable[T]]) -> T:
    # Retention only sets the expiry of new turns, which these commands never write; the
    # configured value is used all the same, so a store here is the server's store.
    retention = timedelta(days=settings.conversations.retention_days)

    async def opened() -> T:
        database = await open_database(settings.database_url)
        try:
            return await action(ConversationStore(database, retention=retention),
                                KeyRepository(database))
        finally:
            await database.aclose()

    return asyncio.run(opened())
