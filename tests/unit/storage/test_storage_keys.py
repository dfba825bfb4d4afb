from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from cometgate.limits.policy import Limits
from cometgate.storage.database import Database, open_database, sqlite_url
from cometgate.storage.keys import (
    AmbiguousKeyError,
    DuplicateKeyNameError,
    KeyNotFoundError,
    KeyRecord,
    KeyRepository,
    validate_key_name,
)
from cometgate.storage.schema import api_keys, usage_records

KEY_SHAPE = re.compile(r"cg-[A-Za-z0-9_-]{43}")


async def test_create_returns_a_fresh_key_and_a_record_without_it(keys: KeyRepository) -> None:
    before = datetime.now(UTC)
    record, key = await keys.create("alice")
    assert KEY_SHAPE.fullmatch(key)
    assert record.name == "alice"
    assert record.prefix == key[:11]
    assert record.revoked_at is None and not record.revoked
    assert record.created_at.tzinfo is UTC and record.created_at >= before
    assert key not in repr(record)
    assert hashlib.sha256(key.encode()).hexdigest() not in repr(record)


async def test_keys_are_different_each_time(keys: KeyRepository) -> None:
    _, first = await keys.create("one")
    _, second = await keys.create("two")
    assert first != second


async def test_only_the_digest_is_stored(keys: KeyRepository, database: Database) -> None:
    record, key = await keys.create("stored")
    async with database.engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == record.id))).one()
    assert row.key_hash == hashlib.sha256(key.encode("utf-8")).hexdigest()
    assert key not in [str(value) for value in row]


def _all_file_bytes(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()))


async def test_the_plaintext_key_never_reaches_the_database_files(data_dir: Path) -> None:
    async with await open_database(sqlite_url(data_dir)) as db:
        repo = KeyRepository(db)
        issued = [(await repo.create(f"k{i}"))[1] for i in range(5)]
        await repo.revoke("k0")
        # While open, recent writes may sit in the -wal file; after closing, in the main file.
        on_disk = _all_file_bytes(data_dir)
    on_disk += _all_file_bytes(data_dir)
    assert b"cg-" in on_disk  # the prefixes are there, so we are reading the right bytes
    for key in issued:
        assert key.encode() not in on_disk
        assert key[11:].encode() not in on_disk


async def test_list_returns_every_key_oldest_first(keys: KeyRepository) -> None:
    assert await keys.list() == []
    await keys.create("a")
    b, _ = await keys.create("b")
    revoked_a = await keys.revoke("a")
    assert await keys.list() == [revoked_a, b]
    assert all(isinstance(r, KeyRecord) for r in await keys.list())


async def test_list_reads_back_exactly_what_create_returned(keys: KeyRepository) -> None:
    record, _ = await keys.create("roundtrip")
    assert await keys.list() == [record]


async def test_count_counts_active_keys_unless_asked_for_all(keys: KeyRepository) -> None:
    assert await keys.count() == 0
    await keys.create("a")
    await keys.create("b")
    await keys.revoke("a")
    assert await keys.count() == 1
    assert await keys.count(include_revoked=True) == 2


@pytest.mark.parametrize("by", ["id", "name", "prefix"])
async def test_revoke_by_any_identifier(keys: KeyRepository, by: str) -> None:
    record, _ = await keys.create("target")
    await keys.create("bystander")
    ident = {"id": str(record.id), "name": record.name, "prefix": record.prefix}[by]
    revoked = await keys.revoke(ident)
    assert revoked.id == record.id
    assert revoked.revoked_at is not None and revoked.revoked_at.tzinfo is UTC
    assert revoked.revoked_at >= record.created_at
    assert [r.name for r in await keys.list() if not r.revoked] == ["bystander"]


async def test_revoking_twice_keeps_the_first_revocation(keys: KeyRepository) -> None:
    record, _ = await keys.create("twice")
    first = await keys.revoke(str(record.id))
    second = await keys.revoke(str(record.id))
    by_name = await keys.revoke("twice")
    assert first == second == by_name
    assert first.revoked_at is not None


@pytest.mark.parametrize(
    ("ident", "message"),
    [
        ("999", "no API key has id 999"),
        ("cg-AAAAAAAA", "no API key has prefix"),
        ("cg-short", "is not a key prefix"),
        ("nobody", "no API key is named 'nobody'"),
    ],
)
async def test_revoking_an_unknown_key_says_so(
    keys: KeyRepository, ident: str, message: str
) -> None:
    await keys.create("somebody")
    with pytest.raises(KeyNotFoundError, match=re.escape(message)):
        await keys.revoke(ident)
    assert await keys.count() == 1


async def test_a_prefix_shared_by_two_keys_is_ambiguous(
    keys: KeyRepository, database: Database
) -> None:
    record, _ = await keys.create("first")
    async with database.engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                name="second",
                prefix=record.prefix,
                key_hash="f" * 64,
                created_at=datetime.now(UTC),
            )
        )
    with pytest.raises(AmbiguousKeyError, match="use the id"):
        await keys.revoke(record.prefix)
    assert (await keys.revoke(str(record.id))).revoked


async def test_authenticate_accepts_the_issued_key(keys: KeyRepository) -> None:
    record, key = await keys.create("caller")
    assert await keys.authenticate(key) == record


async def test_authenticate_rejects_a_wrong_key_with_the_right_prefix(
    keys: KeyRepository,
) -> None:
    _, key = await keys.create("caller")
    forged = key[:11] + ("A" if key[11] != "A" else "B") + key[12:]
    assert await keys.authenticate(forged) is None
    assert await keys.authenticate(key[:-1]) is None
    assert await keys.authenticate(key + "x") is None


async def test_authenticate_picks_the_matching_key_among_same_prefix_rows(
    keys: KeyRepository, database: Database
) -> None:
    record, key = await keys.create("real")
    async with database.engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                name="decoy", prefix=record.prefix, key_hash="0" * 64, created_at=datetime.now(UTC)
            )
        )
    assert await keys.authenticate(key) == record


async def test_authenticate_returns_a_revoked_keys_record(keys: KeyRepository) -> None:
    _, key = await keys.create("leaver")
    revoked = await keys.revoke("leaver")
    found = await keys.authenticate(key)
    assert found == revoked
    assert found is not None and found.revoked_at is not None


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "cg-",
        "cg-AAAAAAAA",
        "cg-unknownprefix-and-some-more-characters-00",
        "sk-abc" * 8,
        "cg-" + "x" * 300,
        "cg-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9rest",
    ],
)
async def test_authenticate_answers_none_for_anything_unknown(
    keys: KeyRepository, presented: str
) -> None:
    await keys.create("someone")
    assert await keys.authenticate(presented) is None


async def test_find_prefers_the_active_key_of_a_reused_name(keys: KeyRepository) -> None:
    old, _ = await keys.create("service")
    await keys.revoke("service")
    new, _ = await keys.create("service")
    assert new.id != old.id
    assert await keys.find("service") == new
    assert (await keys.find(str(old.id))).revoked


async def test_duplicate_active_name_is_refused(keys: KeyRepository) -> None:
    await keys.create("dup")
    with pytest.raises(DuplicateKeyNameError, match="already exists"):
        await keys.create("dup")
    assert await keys.count(include_revoked=True) == 1


async def test_concurrent_creates_of_one_name_leave_one_key(data_dir: Path) -> None:
    url = sqlite_url(data_dir)
    async with await open_database(url) as one, await open_database(url) as two:
        results = await asyncio.gather(
            *(KeyRepository(db).create("race") for db in (one, two, one, two)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, tuple) for r in results) == 1
        assert all(isinstance(r, DuplicateKeyNameError | tuple) for r in results), results
        assert await KeyRepository(one).count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("x" * 65, "65 characters long; the limit is 64"),
        ("line\nbreak", "U+000A"),
        ("tab\there", "U+0009"),
        ("nul\x00", "U+0000"),
        ("del\x7f", "U+007F"),
        ("c1\x85", "U+0085"),
        ("bidi\u202eevil", "U+202E"),
        ("zero\u200bwidth", "U+200B"),
        ("sep\u2028", "U+2028"),
        (" padded", "whitespace"),
        ("padded ", "whitespace"),
        ("12345", "all digits"),
        ("cg-lookalike", "must not start with 'cg-'"),
    ],
)
async def test_bad_names_are_refused_with_a_reason(
    keys: KeyRepository, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        await keys.create(name)
    assert await keys.count(include_revoked=True) == 0


@pytest.mark.parametrize("name", ["a", "x" * 64, "ci runner #2", "équipe-données", "名前", "7a"])
def test_reasonable_names_are_accepted(name: str) -> None:
    validate_key_name(name)


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        validate_key_name(42)  # type: ignore[arg-type]


async def test_a_constraint_failure_other_than_the_name_is_not_called_a_duplicate_name(
    keys: KeyRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forces the (otherwise astronomically unlikely) collision of two random keys.
    monkeypatch.setattr("cometgate.storage.keys.secrets.token_urlsafe", lambda n: "A" * 43)
    await keys.create("first")
    with pytest.raises(IntegrityError):
        await keys.create("second")
    assert [r.name for r in await keys.list()] == ["first"]


# --- policies: owner, metadata, expiry, allow-lists, limits, budgets --------------------------

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "smollm2")


@pytest.fixture
def checked_keys(keys: KeyRepository) -> KeyRepository:
    return KeyRepository(keys.database, known_models=MODELS)


async def test_every_policy_field_is_stored_and_read_back_exactly(
    checked_keys: KeyRepository,
) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    record, key = await checked_keys.create(
        "full", owner="ops", metadata={"cost_centre": 42, "tags": ["a"]}, expires_at=expires,
        allowed_models=["gemini-*", "smollm2"], allowed_ips=["10.0.0.0/8", "2001:db8::/32"],
        rpm=60, tpm=10_000, rpd=1000, max_concurrent=3,
        budget_total_usd=Decimal("123456789.123456"), budget_period="month",
        budget_period_usd=Decimal("0.000001"), allowed_passthrough=["googleSearch", "n"],
    )
    assert record == await checked_keys.authenticate(key) == await checked_keys.show("full")
    assert record.allowed_passthrough == ("googleSearch", "n") and record.budgeted
    assert record.metadata == {"cost_centre": 42, "tags": ["a"]}
    assert record.allowed_models == ("gemini-*", "smollm2")
    assert record.expires_at == expires and not record.expired(datetime.now(UTC))
    assert record.budget_total_usd == Decimal("123456789.123456")
    assert record.budget_period_usd == Decimal("0.000001")
    assert (record.rpm, record.tpm, record.rpd, record.max_concurrent) == (60, 10_000, 1000, 3)
    assert record.allows_model("gemini-2.5-pro") and not record.allows_model("gpt-4o")
    assert record.allows_address("2001:db8::1") and not record.allows_address("11.0.0.1")
    assert not record.allows_address("not an address")


async def test_a_key_without_policies_allows_everything(keys: KeyRepository) -> None:
    record, _ = await keys.create("open")
    assert record.allows_model("anything") and record.allows_address("203.0.113.9")
    assert record.metadata == {} and record.rpm is None and record.budget_total_usd is None
    assert record.allowed_passthrough == () and not record.budgeted
    assert record.status(datetime.now(UTC)) == "active"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"rpm": -1}, "rpm must be between 1"),
        ({"rpm": 0}, "rpm must be between 1"),
        ({"rpm": 10**7 + 1}, "rpm must be between 1 and 10,000,000"),
        ({"tpm": 2**31}, "tpm must be between"),
        ({"max_concurrent": True}, "whole number"),
        ({"rpd": 1.0}, "whole number"),
        ({"budget_total_usd": Decimal(0)}, "positive"),
        ({"budget_total_usd": Decimal("-1")}, "positive"),
        ({"budget_total_usd": Decimal("NaN")}, "positive"),
        ({"budget_total_usd": Decimal("1e10")}, "at most"),
        ({"budget_total_usd": Decimal("0.0000001")}, "6 decimal places"),
        ({"budget_total_usd": 1.5}, "decimal amount"),
        ({"budget_period": "day"}, "set together"),
        ({"budget_period_usd": Decimal(1)}, "set together"),
        ({"budget_period": "week", "budget_period_usd": Decimal(1)}, "day, month"),
        ({"allowed_ips": ["10.0.0.1/8"]}, "host bits set"),
        ({"allowed_ips": ["999.0.0.0/8"]}, "not a CIDR range"),
        ({"allowed_ips": "10.0.0.0/8"}, "list of strings"),
        ({"allowed_models": ["gpt-4o"]}, "not a configured model"),
        ({"allowed_models": ["claude-*"]}, "matches no configured model"),
        ({"allowed_models": [""]}, "non-empty"),
        ({"metadata": ["a"]}, "JSON object"),
        ({"metadata": {"big": "x" * 16_400}}, "the limit is 16384"),
        ({"metadata": {"when": object()}}, "only JSON values"),
        ({"owner": ""}, "owner must be a non-empty"),
        ({"owner": "a\x00b"}, "control"),
        ({"expires_at": datetime(2001, 1, 1, tzinfo=UTC)}, "in the past"),
        ({"expires_at": datetime(2099, 1, 1)}, "time zone"),
        ({"colour": "red"}, "unknown key field(s): colour"),
        ({"allowed_passthrough": ["google_search"]},
         "allowed_passthrough: 'google_search' is not a billable field; known fields: "
         "googleSearch, googleSearchRetrieval, urlContext"),
        ({"allowed_passthrough": "n"}, "allowed_passthrough must be a list of strings"),
        ({"allowed_passthrough": [""]}, "allowed_passthrough entries must be non-empty"),
    ],
)
async def test_bad_policies_are_refused_with_a_reason(
    checked_keys: KeyRepository, policy: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        await checked_keys.create("bad", **policy)
    assert await checked_keys.count(include_revoked=True) == 0


async def test_without_known_models_any_allow_list_entry_is_accepted(keys: KeyRepository) -> None:
    record, _ = await keys.create("loose", allowed_models=["whatever-*"])
    assert record.allowed_models == ("whatever-*",)


async def test_update_changes_named_fields_and_none_clears(checked_keys: KeyRepository) -> None:
    record, key = await checked_keys.create(
        "u", rpm=5, owner="a", metadata={"x": 1}, allowed_ips=["10.0.0.0/8"])
    updated = await checked_keys.update(
        str(record.id), rpm=50, owner=None, metadata=None, allowed_ips=None, name="u2",
        allowed_passthrough=["cachedContent"])
    assert (updated.rpm, updated.owner, updated.metadata, updated.allowed_ips) == (
        50, None, {}, ())
    assert updated.allowed_passthrough == ("cachedContent",)
    cleared = await checked_keys.update(str(record.id), allowed_passthrough=None)
    assert cleared.allowed_passthrough == ()
    updated = await checked_keys.update(str(record.id), allowed_passthrough=["cachedContent"])
    assert updated.name == "u2" and updated.prefix == record.prefix
    assert updated.updated_at is not None and updated.updated_at >= record.created_at
    assert await checked_keys.authenticate(key) == updated


async def test_update_checks_the_resulting_policy_whole(checked_keys: KeyRepository) -> None:
    record, _ = await checked_keys.create(
        "pair", budget_period="day", budget_period_usd=Decimal(2))
    with pytest.raises(ValueError, match="set together"):
        await checked_keys.update("pair", budget_period_usd=None)
    cleared = await checked_keys.update("pair", budget_period=None, budget_period_usd=None)
    assert cleared.budget_period is None and cleared.budget_period_usd is None
    moved = await checked_keys.update("pair", budget_period="month",
                                      budget_period_usd=Decimal("9.5"))
    assert (moved.budget_period, moved.budget_period_usd) == ("month", Decimal("9.5"))
    assert record.id == moved.id


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"rpm": -5}, "rpm"), ({"name": None}, "cannot be cleared"), ({"name": "12"}, "digits"),
     ({"translation": "loose"}, "translation"), ({"id": 9}, "unknown key field(s): id"),
     ({"allowed_models": ["nope"]}, "not a configured model")],
)
async def test_bad_updates_change_nothing(
    checked_keys: KeyRepository, changes: dict[str, Any], message: str
) -> None:
    record, _ = await checked_keys.create("same", rpm=3)
    with pytest.raises(ValueError, match=re.escape(message)):
        await checked_keys.update("same", **changes)
    assert await checked_keys.show(str(record.id)) == record


async def test_renaming_onto_an_active_name_is_refused(keys: KeyRepository) -> None:
    await keys.create("taken")
    await keys.create("other")
    with pytest.raises(DuplicateKeyNameError):
        await keys.update("other", name="taken")
    renamed = await keys.update("taken", name="taken")  # to its own name: no conflict
    assert renamed.name == "taken"


async def test_an_expiry_in_the_past_may_be_set_by_update(keys: KeyRepository) -> None:
    await keys.create("soon")
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = await keys.update("soon", expires_at=past)
    assert expired.expired(datetime.now(UTC)) and expired.status(datetime.now(UTC)) == "expired"


async def test_rotate_keeps_the_id_and_policies_and_retires_the_old_secret(
    keys: KeyRepository,
) -> None:
    record, old = await keys.create("rot", rpm=9, metadata={"a": 1})
    rotated, new = await keys.rotate("rot")
    assert KEY_SHAPE.fullmatch(new) and new != old
    assert rotated.id == record.id and rotated.prefix == new[:11] != record.prefix
    assert (rotated.rpm, rotated.metadata) == (9, {"a": 1})
    assert await keys.authenticate(old) is None
    assert await keys.authenticate(new) == rotated


async def test_a_revoked_key_cannot_be_rotated_back_to_life(keys: KeyRepository) -> None:
    record, old = await keys.create("dead")
    await keys.revoke("dead")
    with pytest.raises(ValueError, match="revoked"):
        await keys.rotate(str(record.id))
    revoked = await keys.authenticate(old)
    assert revoked is not None and revoked.revoked


async def test_delete_removes_the_row_but_not_usage(
    keys: KeyRepository, database: Database
) -> None:
    record, key = await keys.create("doomed")
    async with database.engine.begin() as conn:
        await conn.execute(insert(usage_records).values(
            request_id="req-1", key_id=record.id, model="m", dialect="gemini", stream=False,
            status=200, prompt_tokens=1, output_tokens=1, thoughts_tokens=0, cached_tokens=0,
            cost_usd=Decimal("0.5"), latency_ms=1.0, created_at=datetime.now(UTC)))
    deleted = await keys.delete("doomed")
    assert deleted == record
    assert await keys.authenticate(key) is None
    with pytest.raises(KeyNotFoundError):
        await keys.show(str(record.id))
    async with database.engine.connect() as conn:
        kept = (await conn.execute(select(usage_records.c.key_id))).scalars().all()
    assert kept == [record.id]
    with pytest.raises(KeyNotFoundError):
        await keys.delete("doomed")


async def test_limits_carry_the_keys_limits_and_budgets(keys: KeyRepository) -> None:
    record, _ = await keys.create("lim", rpm=1, tpm=2, rpd=3, max_concurrent=4,
                                  budget_total_usd=Decimal(5), budget_period="day",
                                  budget_period_usd=Decimal("0.5"))
    assert record.limits() == Limits(rpm=1, tpm=2, rpd=3, max_concurrent=4,
                                     budget_total=Decimal(5), budget_period="day",
                                     budget_period_amount=Decimal("0.5"))
    bare, _ = await keys.create("bare")
    assert bare.limits() == Limits()
