"""`cometgate keys …` and `cometgate usage …`: the admin API's operations on the command line.

They open the database directly (no server needed) and check allow-lists against the models
in the configuration, as the admin API does. Output contract: stdout carries only what a script
would capture (the key for create/rotate, JSON for show/update, a table or CSV for usage);
messages for people go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import orjson

from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.key_policy import BILLABLE_FIELDS, parse_money
from cometgate.storage.keys import TRANSLATION_POLICIES, KeyRecord, KeyRepository
from cometgate.storage.money import money_text
from cometgate.storage.usage import GROUPS, UsageQueries, UsageTotals

T = TypeVar("T")
# Flag (as typed after --clear, or the option's dest) → repository field.
_FIELD_OF_FLAG = {
    "owner": "owner", "metadata": "metadata", "expires": "expires_at", "models": "allowed_models",
    "ips": "allowed_ips", "rpm": "rpm", "tpm": "tpm", "rpd": "rpd",
    "concurrency": "max_concurrent", "budget": "budget_total_usd",
    "budget_period": "budget_period", "period_budget": "budget_period_usd",
    "translation": "translation", "allow_passthrough_field": "allowed_passthrough",
    "store_conversations": "store_conversations",
}
_CLEARABLE = sorted(flag.replace("_", "-") for flag in _FIELD_OF_FLAG)


def add_key_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", parents=[common], help="create a key; prints only the key")
    create.add_argument("--name", required=True)
    _policy_flags(create)
    create.set_defaults(run=_keys_create)
    listing = keys.add_parser("list", parents=[common], help="list keys (never the keys)")
    listing.set_defaults(run=_keys_list)
    show = keys.add_parser("show", parents=[common], help="one key as JSON")
    show.add_argument("ident", help="id, name or prefix")
    show.set_defaults(run=_keys_show)
    change = keys.add_parser("update", parents=[common], help="change a key; prints it as JSON")
    change.add_argument("ident", help="id, name or prefix")
    change.add_argument("--name", help="rename the key")
    _policy_flags(change)
    change.add_argument("--clear", action="append", default=[], choices=_CLEARABLE,
                        metavar="FIELD", help=f"unset a field: {', '.join(_CLEARABLE)}")
    change.set_defaults(run=_keys_update)
    for action, text, run in [
        ("revoke", "revoke a key by id, name or prefix", _keys_revoke),
        ("rotate", "give a key a new secret; prints only the new key", _keys_rotate),
        ("delete", "remove a key (its usage history stays)", _keys_delete),
    ]:
        parser = keys.add_parser(action, parents=[common], help=text)
        parser.add_argument("ident")
        parser.set_defaults(run=run)


def add_usage_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    usage = commands.add_parser("usage", help="usage totals and exports").add_subparsers(
        required=True, metavar="ACTION"
    )
    totals = usage.add_parser("totals", parents=[common], help="totals as a table")
    totals.add_argument("--by", choices=GROUPS, default="key")
    export = usage.add_parser("export", parents=[common],
                              help="CSV on stdout: one row per request, or totals with --by")
    export.add_argument("--by", choices=GROUPS)
    for parser in (totals, export):
        parser.add_argument("--since", help="ISO 8601 time or date (inclusive)")
        parser.add_argument("--until", help="ISO 8601 time or date (exclusive)")
        parser.add_argument("--key", help="only this key (id, name or prefix)")
        parser.add_argument("--model", help="only this model alias")
    totals.set_defaults(run=_usage_totals)
    export.set_defaults(run=_usage_export)


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner")
    parser.add_argument("--metadata", help="a JSON object")
    parser.add_argument("--expires", help="ISO 8601 time with a zone, or a date (UTC)")
    parser.add_argument("--models", help="allowed models: names or glob patterns, comma-separated")
    parser.add_argument("--ips", help="allowed client networks (CIDR), comma-separated")
    for limit in ("rpm", "tpm", "rpd", "concurrency"):
        parser.add_argument(f"--{limit}", type=int)
    parser.add_argument("--budget", help="total budget in USD")
    parser.add_argument("--budget-period", choices=["day", "month"])
    parser.add_argument("--period-budget", help="budget per period in USD")
    parser.add_argument("--translation", choices=TRANSLATION_POLICIES,
                        help="override the models' translation policy for this key")
    parser.add_argument("--allow-passthrough-field", action="append", metavar="FIELD",
                        help="a billable request field this key may send despite a budget or "
                             f"a strict policy (repeat, or comma-separate): "
                             f"{', '.join(BILLABLE_FIELDS)}; replaces the key's list")
    parser.add_argument("--store-conversations", choices=["yes", "no"],
                        help="no: keep none of this key's conversations (Responses API store)")


def policy_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """Repository fields from the flags given (absent flags are left out)."""
    converters: dict[str, Callable[[Any], Any]] = {
        "metadata": _json_object, "expires": parse_time, "models": _split, "ips": _split,
        "allow_passthrough_field": lambda given: [f for text in given for f in _split(text)],
        "budget": lambda text: parse_money("--budget", text),
        "period_budget": lambda text: parse_money("--period-budget", text),
        "store_conversations": lambda text: text == "yes",
    }
    found: dict[str, Any] = {}
    for flag, field in _FIELD_OF_FLAG.items():
        value = getattr(args, flag, None)
        if value is not None:
            found[field] = converters.get(flag, lambda v: v)(value)
    return found


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with a zone, or a date meaning its start in UTC."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add one, like {text}Z")
    return moment


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    policy = policy_arguments(args)
    _, key = _run(settings, lambda keys, _: keys.create(args.name, **policy))
    print(key)
    return 0


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    records = _run(settings, lambda keys, _: keys.list())
    now = datetime.now(UTC)
    print(f"{'ID':>4}  {'NAME':24}  {'PREFIX':12}  {'CREATED':20}  STATUS")
    for record in records:
        status = record.status(now)
        if record.revoked_at:
            status = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}"
        print(f"{record.id:>4}  {record.name:24}  {record.prefix:12}  "
              f"{record.created_at:%Y-%m-%d %H:%M:%S}   {status}")
    return 0


def _keys_show(settings: Settings, args: argparse.Namespace) -> int:
    _print_json(_run(settings, lambda keys, _: keys.show(args.ident)))
    return 0


def _keys_update(settings: Settings, args: argparse.Namespace) -> int:
    changes = policy_arguments(args)
    for flag in args.clear:
        field = _FIELD_OF_FLAG[flag.replace("-", "_")]
        if field in changes:
            raise ValueError(f"--{flag} is both set and cleared")
        changes[field] = None
        if field == "budget_period":  # the pair is set and unset together
            changes["budget_period_usd"] = None
    if args.name is not None:
        changes["name"] = args.name
    if not changes:
        raise ValueError("nothing to change: give a flag such as --rpm, or --clear FIELD")
    _print_json(_run(settings, lambda keys, _: keys.update(args.ident, **changes)))
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    record = _run(settings, lambda keys, _: keys.revoke(args.ident))
    print(f"revoked key {record.id} ({record.name}, {record.prefix}…)", file=sys.stderr)
    return 0


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    record, key = _run(settings, lambda keys, _: keys.rotate(args.ident))
    print(key)
    print(f"rotated key {record.id} ({record.name}); the old key no longer works",
          file=sys.stderr)
    return 0


def _keys_delete(settings: Settings, args: argparse.Namespace) -> int:
    record = _run(settings, lambda keys, _: keys.delete(args.ident))
    print(f"deleted key {record.id} ({record.name}); its usage history is kept", file=sys.stderr)
    return 0


def _usage_totals(settings: Settings, args: argparse.Namespace) -> int:
    async def totals(keys: KeyRepository, usage: UsageQueries) -> list[UsageTotals]:
        return await usage.totals(args.by, **await _usage_filters(keys, args))

    rows = _run(settings, totals)
    print(f"{args.by.upper():24}  {'REQUESTS':>8}  {'PROMPT':>10}  {'OUTPUT':>10}  "
          f"{'THOUGHTS':>10}  {'CACHED':>10}  {'COST USD':>14}")
    for row in rows:
        group = row.key_id if args.by == "key" else row.model if args.by == "model" else row.day
        print(f"{group!s:24}  {row.requests:>8}  {row.prompt_tokens:>10}  "
              f"{row.output_tokens:>10}  {row.thoughts_tokens:>10}  {row.cached_tokens:>10}  "
              f"{money_text(row.cost_usd):>14}")
    return 0


def _usage_export(settings: Settings, args: argparse.Namespace) -> int:
    async def export(keys: KeyRepository, usage: UsageQueries) -> str:
        return await usage.csv(args.by, **await _usage_filters(keys, args))

    sys.stdout.write(_run(settings, export))
    return 0


async def _usage_filters(keys: KeyRepository, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "since": None if args.since is None else parse_time(args.since),
        "until": None if args.until is None else parse_time(args.until),
        "key_id": None if args.key is None else (await keys.find(args.key)).id,
        "model": args.model,
    }


def _run(
    settings: Settings, action: Callable[[KeyRepository, UsageQueries], Awaitable[T]]
) -> T:
    async def opened() -> T:
        database = await open_database(settings.database_url)
        models = [model.info.id for model in settings.models]
        try:
            return await action(KeyRepository(database, known_models=models),
                                UsageQueries(database))
        finally:
            await database.aclose()

    return asyncio.run(opened())


def _print_json(record: KeyRecord) -> None:
    document = record.as_document(datetime.now(UTC))
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())


def _json_object(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--metadata is not valid JSON: {exc}") from None


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
