"""`cometgate keys …` through cli.main, and one real subprocess to prove stdout holds only
the key."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from cometgate.cli import main
from cometgate.settings import load_settings
from cometgate.storage.database import open_database
from cometgate.storage.schema import usage_records

KEY = re.compile(r"cg-[A-Za-z0-9_-]{43}")
CONFIG = """
providers:
  fake: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  tiny: {provider: fake, input_token_limit: 10, output_token_limit: 10}
"""


@pytest.fixture
def where(tmp_path: Path) -> list[str]:
    config = tmp_path / "cometgate.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return ["--config", str(config), "--data-dir", str(tmp_path / "data")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], where: list[str], name: str) -> str:
    code, out, err = run(capsys, "keys", "create", "--name", name, *where)
    assert code == 0, err
    return out.strip()


def test_create_prints_only_the_key(capsys: pytest.CaptureFixture[str],
                                    where: list[str]) -> None:
    code, out, err = run(capsys, "keys", "create", "--name", "alice", *where)
    assert code == 0
    assert KEY.fullmatch(out.rstrip("\n")) and out.endswith("\n") and out.count("\n") == 1
    assert err == ""


def test_list_shows_names_and_prefixes_never_keys(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    alice = create(capsys, where, "alice")
    bob = create(capsys, where, "bob")
    code, out, _ = run(capsys, "keys", "list", *where)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "PREFIX", "CREATED", "STATUS"]
    assert "alice" in lines[1] and alice[:11] in lines[1] and lines[1].endswith("active")
    assert "bob" in lines[2] and bob[:11] in lines[2]
    assert alice not in out and bob not in out
    assert alice[:12] not in out  # not one character past the stored prefix


@pytest.mark.parametrize("ident_of", ["name", "prefix", "id"])
def test_revoke_by_name_prefix_or_id(
    capsys: pytest.CaptureFixture[str], where: list[str], ident_of: str
) -> None:
    create(capsys, where, "first")
    key = create(capsys, where, "second")
    ident = {"name": "second", "prefix": key[:11], "id": "2"}[ident_of]
    code, out, err = run(capsys, "keys", "revoke", ident, *where)
    assert code == 0 and out == ""
    assert "revoked key 2 (second" in err
    _, listing, _ = run(capsys, "keys", "list", *where)
    first, second = listing.splitlines()[1:]
    assert first.endswith("active")
    assert "revoked" in second


def test_revoke_is_idempotent(capsys: pytest.CaptureFixture[str], where: list[str]) -> None:
    create(capsys, where, "gone")
    assert run(capsys, "keys", "revoke", "gone", *where)[0] == 0
    assert run(capsys, "keys", "revoke", "gone", *where)[0] == 0


@pytest.mark.parametrize("ident", ["nobody", "99", "cg-AAAAAAAA", "cg-short"])
def test_revoke_unknown_ident_exits_1(
    capsys: pytest.CaptureFixture[str], where: list[str], ident: str
) -> None:
    create(capsys, where, "someone")
    code, out, err = run(capsys, "keys", "revoke", ident, *where)
    assert code == 1 and out == ""
    assert err.startswith("cometgate: ") and "key" in err


@pytest.mark.parametrize("name", ["123", "cg-lookalike", " padded", ""])
def test_create_refuses_bad_names(
    capsys: pytest.CaptureFixture[str], where: list[str], name: str
) -> None:
    code, out, err = run(capsys, "keys", "create", "--name", name, *where)
    assert code == 1 and out == ""
    assert err.startswith("cometgate: API key name")


def test_create_refuses_a_duplicate_active_name(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    create(capsys, where, "twin")
    code, out, err = run(capsys, "keys", "create", "--name", "twin", *where)
    assert code == 1 and out == "" and "already exists" in err


@pytest.mark.parametrize(
    "config_text",
    ["providers: [unclosed", "bogus_section: {}\n",
     "models:\n  m: {provider: nowhere, input_token_limit: 1, output_token_limit: 1}\n"],
)
def test_bad_config_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config_text: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text, encoding="utf-8")
    code, out, err = run(capsys, "keys", "list", "--config", str(config),
                         "--data-dir", str(tmp_path / "data"))
    assert code == 2 and out == ""
    assert err.startswith("cometgate: configuration error:")


def test_missing_config_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "keys", "list", "--config", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read config file" in err


def test_subprocess_create_writes_only_the_key_to_stdout(
    tmp_path: Path, where: list[str]
) -> None:
    executable = Path(sys.executable).parent / "cometgate"
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(executable), "keys", "create", "--name", "scripted", *where],
        capture_output=True, check=False, env=environment, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert KEY.fullmatch(result.stdout.decode().rstrip("\n"))
    assert result.stdout.count(b"\n") == 1


# --- policies, show, update, rotate, delete, usage --------------------------------------------


def show(capsys: pytest.CaptureFixture[str], where: list[str], ident: str) -> dict[str, Any]:
    code, out, err = run(capsys, "keys", "show", ident, *where)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def test_create_with_policy_flags_then_show_as_json(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    code, out, err = run(
        capsys, "keys", "create", "--name", "team", "--owner", "ops", "--metadata", '{"a": 1}',
        "--expires", "2099-01-01", "--models", "tiny,ti*", "--ips", "10.0.0.0/8, 192.168.1.0/24",
        "--rpm", "60", "--tpm", "1000", "--rpd", "500", "--concurrency", "2",
        "--budget", "12.50", "--budget-period", "month", "--period-budget", "3",
        "--translation", "lenient", "--allow-passthrough-field", "googleSearch,n",
        "--allow-passthrough-field", "service_tier", "--store-conversations", "no", *where)
    assert code == 0, err
    key = out.strip()
    assert KEY.fullmatch(key) and err == ""
    document = show(capsys, where, "team")
    assert key not in json.dumps(document)
    assert document | {"created_at": None} == {
        "id": 1, "name": "team", "prefix": key[:11], "status": "active", "created_at": None,
        "updated_at": None, "revoked_at": None, "expires_at": "2099-01-01T00:00:00Z",
        "translation": "lenient", "owner": "ops", "metadata": {"a": 1},
        "allowed_models": ["tiny", "ti*"], "allowed_ips": ["10.0.0.0/8", "192.168.1.0/24"],
        "rpm": 60, "tpm": 1000, "rpd": 500, "max_concurrent": 2, "budget_total_usd": "12.5",
        "budget_period": "month", "budget_period_usd": "3",
        "allowed_passthrough": ["googleSearch", "n", "service_tier"],
        "store_conversations": False,
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rpm", "-3"], "rpm must be between 1"),
        (["--models", "gpt-*"], "matches no configured model"),
        (["--ips", "10.0.0.1/8"], "host bits set"),
        (["--budget", "lots"], "--budget must be a decimal amount"),
        (["--budget", "0"], "positive"),
        (["--budget-period", "day"], "set together"),
        (["--metadata", "{nope"], "--metadata is not valid JSON"),
        (["--metadata", "[1]"], "JSON object"),
        (["--expires", "2001-01-01"], "in the past"),
        (["--expires", "2099-01-01T00:00:00"], "no time zone"),
        (["--allow-passthrough-field", "googleSerch"],
         "allowed_passthrough: 'googleSerch' is not a billable field; known fields: googleSearch"),
    ],
)
def test_create_refuses_bad_policies(
    capsys: pytest.CaptureFixture[str], where: list[str], flags: list[str], message: str
) -> None:
    code, out, err = run(capsys, "keys", "create", "--name", "x", *flags, *where)
    assert code == 1 and out == ""
    assert err.startswith("cometgate: ") and message in err


def test_update_sets_and_clears_fields(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    create(capsys, where, "u")
    run(capsys, "keys", "update", "u", "--rpm", "5", "--budget-period", "day",
        "--period-budget", "1", "--owner", "me", *where)
    code, out, err = run(capsys, "keys", "update", "1", "--clear", "owner", "--clear",
                         "budget-period", "--tpm", "70", "--name", "renamed", *where)
    assert code == 0, err
    document = json.loads(out)
    assert (document["name"], document["rpm"], document["tpm"], document["owner"]) == (
        "renamed", 5, 70, None)
    assert document["budget_period"] is None and document["budget_period_usd"] is None
    code, out, err = run(capsys, "keys", "update", "1", "--allow-passthrough-field",
                         "urlContext", *where)
    assert code == 0, err
    assert json.loads(out)["allowed_passthrough"] == ["urlContext"]
    code, out, err = run(capsys, "keys", "update", "1", "--clear", "allow-passthrough-field",
                         *where)
    assert code == 0, err
    assert json.loads(out)["allowed_passthrough"] == []
    code, out, err = run(capsys, "keys", "update", "1", "--store-conversations", "no", *where)
    assert code == 0, err
    assert json.loads(out)["store_conversations"] is False
    code, out, err = run(capsys, "keys", "update", "1", "--clear", "store-conversations", *where)
    assert code == 0, err
    assert json.loads(out)["store_conversations"] is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [([], "nothing to change"), (["--rpm", "3", "--clear", "rpm"], "both set and cleared"),
     (["--clear", "rpm", "--rpm", "0"], "both set and cleared"), (["--rpm", "0"], "rpm")],
)
def test_bad_updates_exit_1(
    capsys: pytest.CaptureFixture[str], where: list[str], flags: list[str], message: str
) -> None:
    create(capsys, where, "u")
    code, out, err = run(capsys, "keys", "update", "u", *flags, *where)
    assert code == 1 and out == "" and message in err


def test_rotate_prints_only_the_new_key_and_keeps_the_id(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    old = create(capsys, where, "r")
    code, out, err = run(capsys, "keys", "rotate", "r", *where)
    new = out.strip()
    assert code == 0 and KEY.fullmatch(new) and out.count("\n") == 1
    assert new != old and "old key no longer works" in err
    assert show(capsys, where, "r")["prefix"] == new[:11]
    assert show(capsys, where, "r")["id"] == 1


def test_delete_removes_the_key(capsys: pytest.CaptureFixture[str], where: list[str]) -> None:
    create(capsys, where, "d")
    code, out, err = run(capsys, "keys", "delete", "d", *where)
    assert code == 0 and out == "" and "usage history is kept" in err
    code, _, err = run(capsys, "keys", "show", "d", *where)
    assert code == 1 and "no API key is named 'd'" in err


def _usage(where: list[str], key_id: int, model: str, cost: str, day: str) -> None:
    async def write() -> None:
        database = await open_database(load_settings(Path(where[1]),
                                                     data_dir=Path(where[3])).database_url)
        try:
            async with database.engine.begin() as conn:
                await conn.execute(insert(usage_records).values(
                    request_id=f"{key_id}-{model}-{day}", key_id=key_id, model=model,
                    dialect="gemini", stream=False, status=200, prompt_tokens=10,
                    output_tokens=2, thoughts_tokens=1, cached_tokens=0, cost_usd=Decimal(cost),
                    latency_ms=1.0, created_at=datetime.fromisoformat(f"{day}T12:00:00+00:00")))
        finally:
            await database.aclose()

    asyncio.run(write())


def test_usage_totals_table_and_filters(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    create(capsys, where, "alice")
    _usage(where, 1, "tiny", "0.5", "2024-05-01")
    _usage(where, 1, "tiny", "0.25", "2024-05-02")
    _usage(where, 2, "other", "1", "2024-05-02")
    code, out, _ = run(capsys, "usage", "totals", "--by", "model", *where)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["MODEL", "REQUESTS"]
    assert lines[1].split() == ["other", "1", "10", "2", "1", "0", "1"]
    assert lines[2].split() == ["tiny", "2", "20", "4", "2", "0", "0.75"]
    _, out, _ = run(capsys, "usage", "totals", "--by", "day", "--key", "alice",
                    "--since", "2024-05-02", *where)
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["2024-05-02", "1"]]


def test_usage_export_writes_csv_to_stdout(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    _usage(where, 1, "tiny", "0.5", "2024-05-01")
    code, out, err = run(capsys, "usage", "export", "--until", "2024-06-01T00:00:00Z", *where)
    assert code == 0 and err == ""
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["request_id", "key_id", "model"] and len(rows) == 2
    assert rows[1][:3] == ["1-tiny-2024-05-01", "1", "tiny"]
    code, out, _ = run(capsys, "usage", "export", "--by", "key", *where)
    assert list(csv.reader(io.StringIO(out)))[1][0] == "1"


def test_usage_for_an_unknown_key_exits_1(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    code, out, err = run(capsys, "usage", "totals", "--key", "ghost", *where)
    assert code == 1 and out == "" and "ghost" in err
