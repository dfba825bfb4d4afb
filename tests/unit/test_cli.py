"""`cometgate keys …` through cli.main, and one real subprocess to prove stdout holds only
the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cometgate.cli import main

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
