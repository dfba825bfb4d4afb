"""Two gateway replicas on one PostgreSQL share the Files API: an upload started on one takes
its pieces on either, and the file is read, listed, used in a generate call and deleted through
the other. Each replica has its own data directory, so the bytes can only come from the
database (storage.files.store "auto" keeps them there on PostgreSQL).

Needs COMETGATE_TEST_POSTGRES_URL (scripts/services): skips without it, fails without it in CI.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.contract.upstreams import served
from tests.e2e.fake_gateway import MODEL, ServeProcess, gateway_config, gateway_env, start_serve
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.unit.storage.conftest import fresh_postgres_schema_url, postgres_base_url

PIECE = 64 * 1024


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[ServeProcess, ServeProcess, str,
                                                     FakeOpenAIUpstream]]:
    upstream = FakeOpenAIUpstream()
    async for database_url in fresh_postgres_schema_url(postgres_base_url()):
        env = gateway_env(COMETGATE_DATABASE_URL=database_url)
        async with served(upstream.app) as (upstream_url,):
            config = gateway_config(upstream_url)
            first = await start_serve(tmp_path, "a", config, tmp_path / "a", env)
            try:
                second = await start_serve(tmp_path, "b", config, tmp_path / "b", env)
                try:
                    async with await open_database(database_url) as database:
                        _, key = await KeyRepository(database).create("files")
                    yield first, second, key, upstream
                finally:
                    second.stop()
            finally:
                first.stop()


async def test_a_file_uploaded_across_replicas_is_used_by_either(
        two: tuple[ServeProcess, ServeProcess, str, FakeOpenAIUpstream]) -> None:
    first, second, key, upstream = two
    data = (b"Replicated words. " * 10_000)[:3 * PIECE + 123]
    headers = {"x-goog-api-key": key}
    async with httpx.AsyncClient(timeout=30) as http:
        started = await http.post(
            f"{first.base_url}/upload/v1beta/files", json={"file": {"displayName": "shared"}},
            headers={**headers, "X-Goog-Upload-Protocol": "resumable",
                     "X-Goog-Upload-Command": "start",
                     "X-Goog-Upload-Header-Content-Length": str(len(data)),
                     "X-Goog-Upload-Header-Content-Type": "text/plain"})
        upload_path = started.headers["x-goog-upload-url"].removeprefix(first.base_url)
        pieces = [data[i:i + PIECE] for i in range(0, len(data), PIECE)]
        answer = None
        for number, piece in enumerate(pieces):  # alternating replicas
            replica = (second, first)[number % 2]
            last = number == len(pieces) - 1
            answer = await http.post(replica.base_url + upload_path, content=piece, headers={
                "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                "X-Goog-Upload-Offset": str(number * PIECE)})
            assert answer.status_code == 200, answer.text
        assert answer is not None
        file = answer.json()["file"]
        assert file["sizeBytes"] == str(len(data))
        name = file["name"]
        for replica in (first, second):
            download = await http.get(f"{replica.base_url}/download/v1beta/{name}:download",
                                      params={"alt": "media"}, headers=headers)
            assert download.content == data
            listed = (await http.get(f"{replica.base_url}/v1beta/files", headers=headers)).json()
            assert [f["name"] for f in listed["files"]] == [name]
        generated = await http.post(
            f"{first.base_url}/v1beta/models/{MODEL}:generateContent", headers=headers,
            json={"contents": [{"role": "user", "parts": [
                {"text": "Summarise."}, {"fileData": {"fileUri": name}}]}]})
        assert generated.status_code == 200, generated.text
        sent = upstream.requests[-1]["messages"][0]["content"]
        assert {"type": "text", "text": data.decode()} in sent
        assert (await http.delete(f"{second.base_url}/v1beta/{name}",
                                  headers=headers)).status_code == 200
        gone = await http.get(f"{first.base_url}/v1beta/{name}", headers=headers)
        assert gone.status_code == 403
    assert _kept_on_disk(first.log_path.parent) == []


def _kept_on_disk(root: Path) -> list[str]:
    """What either replica kept in its data directory's files/ (nothing: the database
    holds the bytes)."""
    return [name for replica in ("a", "b") if (root / replica / "files").exists()
            for name in os.listdir(root / replica / "files")]
