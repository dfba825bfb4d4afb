"""`fileData.fileUri` naming a gateway file, on every upstream kind: inlined for translated
upstreams (what the fake received holds the file's bytes), copied once to a Gemini upstream's
Files API for pass-through (the fake holds the copy, the forwarded request names it); another
key's file or a missing one is Google's 403, with nothing recorded."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import update
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.schema import gemini_files
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.api.conftest import create_key
from tests.api.upstream_fakes import KINDS, SECRETS, UPSTREAM
from tests.contract.conftest import (
    Fakes,
    model_block,
    provider_block,
    running_fakes,
    settings_for,
)
from tests.contract.scenarios import received

MEDIA = ["text/plain", "image/png", "application/pdf"]
INLINE_LIMIT = 2000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@dataclass
class Gateway:
    http: httpx.AsyncClient
    app: Starlette
    settings: Settings
    fakes: Fakes

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_fakes() as fakes:
        config = {
            "routing": {"retries": 0},
            "providers": {kind: provider_block(kind, fakes.urls[kind], [f"{kind.upper()}_KEY"])
                          for kind in KINDS},
            "models": {f"{kind}-alias": model_block([(kind, UPSTREAM[kind])],
                                                    input_mime_types=MEDIA) for kind in KINDS},
            "storage": {"files": {"max_inline_bytes": INLINE_LIMIT}},
        }
        settings = settings_for(tmp_path, config, SECRETS)
        key = await create_key(settings)
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                headers={"x-goog-api-key": key}, timeout=30.0) as http:
            yield Gateway(http, app, settings, fakes)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running(tmp_path) as opened:
        yield opened


async def upload(http: httpx.AsyncClient, data: bytes, mime: str) -> dict[str, Any]:
    started = await http.post("/upload/v1beta/files", json={"file": {"displayName": "doc"}},
                              headers={"X-Goog-Upload-Protocol": "resumable",
                                       "X-Goog-Upload-Command": "start",
                                       "X-Goog-Upload-Header-Content-Length": str(len(data)),
                                       "X-Goog-Upload-Header-Content-Type": mime})
    done = await http.post(started.headers["x-goog-upload-url"], content=data, headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
    file: dict[str, Any] = done.json()["file"]
    return file


def asking(uri: str, mime: str | None = None, question: str = "What does it say?"
           ) -> dict[str, Any]:
    file_data = {"fileUri": uri, **({"mimeType": mime} if mime else {})}
    return {"contents": [{"role": "user", "parts": [{"text": question},
                                                    {"fileData": file_data}]}]}


@pytest.mark.parametrize("form", ["uri", "name"])
async def test_a_text_file_reaches_an_openai_compatible_upstream_inline(
        gateway: Gateway, form: str) -> None:
    file = await upload(gateway.http, b"The secret word is marmalade.", "text/plain")
    uri = file["uri"] if form == "uri" else file["name"]
    answer = await gateway.http.post("/v1beta/models/openai-alias:generateContent",
                                     json=asking(uri, "text/plain"))
    assert answer.status_code == 200, answer.text
    content = received("openai", gateway.fakes)["messages"][0]["content"]
    assert {"type": "text", "text": "The secret word is marmalade."} in content


async def test_an_image_file_reaches_anthropic_as_an_image_block(gateway: Gateway) -> None:
    file = await upload(gateway.http, PNG, "image/png")
    answer = await gateway.http.post("/v1beta/models/anthropic-alias:streamGenerateContent?"
                                     "alt=sse", json=asking(file["uri"]))
    assert answer.status_code == 200, answer.text
    blocks = received("anthropic", gateway.fakes)["messages"][0]["content"]
    assert {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                        "data": base64.b64encode(PNG).decode()}} in blocks


async def test_gemini_pass_through_copies_the_file_upstream_once(gateway: Gateway) -> None:
    data = b"%PDF-1.4 a small document"
    file = await upload(gateway.http, data, "application/pdf")
    fake = gateway.fakes.gemini
    for path in ("generateContent", "streamGenerateContent?alt=sse", "countTokens"):
        answer = await gateway.http.post(f"/v1beta/models/gemini-alias:{path}",
                                         json=asking(file["uri"], "application/pdf"))
        assert answer.status_code == 200, answer.text
        sent = orjson.loads(fake.requests[-1].body)
        copy_uri = sent["contents"][0]["parts"][1]["fileData"]["fileUri"]
        assert copy_uri.endswith("/v1beta/files/up1")  # the upstream's own copy
    assert list(fake.files) == ["up1"]  # uploaded once, then remembered
    copy = fake.files["up1"]
    assert (bytes(copy.data), copy.mime_type, copy.display_name) == (
        data, "application/pdf", "doc")
    start = fake.file_requests[0]
    assert start.headers["x-goog-api-key"] == "gm-gateway"  # the gateway's credential


async def test_a_copy_that_expired_upstream_is_uploaded_again(gateway: Gateway) -> None:
    file = await upload(gateway.http, b"%PDF again", "application/pdf")
    body = asking(file["name"], "application/pdf")
    await gateway.http.post("/v1beta/models/gemini-alias:generateContent", json=body)
    store = gateway.app.state.files
    file_id = file["name"].removeprefix("files/")
    digest = hashlib.sha256(b"gm-gateway").hexdigest()
    await store.remember_upstream_copy(file_id, "gemini", digest, "gone",
                                       datetime.now(UTC) - timedelta(seconds=1))
    answer = await gateway.http.post("/v1beta/models/gemini-alias:generateContent", json=body)
    assert answer.status_code == 200, answer.text
    assert list(gateway.fakes.gemini.files) == ["up1", "up2"]


async def test_another_key_s_file_or_a_missing_one_is_refused_and_not_recorded(
        gateway: Gateway) -> None:
    file = await upload(gateway.http, b"mine", "text/plain")
    other = {"x-goog-api-key": await create_key(gateway.settings, "other")}
    file_id = file["name"].removeprefix("files/")
    for kind in KINDS:
        for uri, headers, named in ((file["uri"], other, file_id),
                                    ("files/nosuchfile", {}, "nosuchfile")):
            answer = await gateway.http.post(f"/v1beta/models/{kind}-alias:generateContent",
                                             json=asking(uri), headers=headers)
            assert answer.status_code == 403
            assert answer.json() == {"error": {
                "code": 403, "status": "PERMISSION_DENIED", "message":
                f"You do not have permission to access the File {named} or it may not "
                "exist."}}
    assert await gateway.records() == []
    assert gateway.fakes.gemini.requests == [] and gateway.fakes.openai.requests == []


async def test_a_file_over_the_inline_limit_is_refused_by_translated_upstreams_only(
        gateway: Gateway) -> None:
    file = await upload(gateway.http, b"x" * (INLINE_LIMIT + 1), "text/plain")
    for kind in ("openai", "anthropic"):
        answer = await gateway.http.post(f"/v1beta/models/{kind}-alias:generateContent",
                                         json=asking(file["uri"]))
        assert answer.status_code == 400
        assert answer.json()["error"] == {
            "code": 400, "status": "INVALID_ARGUMENT", "message":
            f"The files this request refers to take {INLINE_LIMIT + 1} bytes; this model's "
            f"upstream receives files inline, at most {INLINE_LIMIT} bytes per request."}
    passed = await gateway.http.post("/v1beta/models/gemini-alias:generateContent",
                                     json=asking(file["uri"]))
    assert passed.status_code == 200


async def test_a_type_the_model_cannot_take_is_refused_in_google_s_words(
        gateway: Gateway) -> None:
    file = await upload(gateway.http, b"RIFF....WAVE", "audio/wav")
    answer = await gateway.http.post("/v1beta/models/openai-alias:generateContent",
                                     json=asking(file["uri"]))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("Unsupported MIME type: audio/wav.")


async def test_a_url_on_another_host_is_left_alone(gateway: Gateway) -> None:
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    await gateway.http.post("/v1beta/models/gemini-alias:generateContent", json=asking(uri))
    sent = orjson.loads(gateway.fakes.gemini.requests[-1].body)
    assert sent["contents"][0]["parts"][1]["fileData"]["fileUri"] == uri
    assert gateway.fakes.gemini.files == {}


async def test_a_file_still_processing_cannot_be_used_yet(gateway: Gateway) -> None:
    file = await upload(gateway.http, b"almost", "text/plain")
    store = gateway.app.state.files
    async with store._engine.begin() as conn:
        await conn.execute(update(gemini_files).values(state="PROCESSING"))
    answer = await gateway.http.post("/v1beta/models/openai-alias:generateContent",
                                     json=asking(file["uri"]))
    assert answer.status_code == 400
    file_id = file["name"].removeprefix("files/")
    assert answer.json() == {"error": {
        "code": 400, "status": "FAILED_PRECONDITION", "message":
        f"The File {file_id} is not in an ACTIVE state and usage is not allowed."}}


async def test_pass_through_alone_never_reads_the_file_whole(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    file = await upload(gateway.http, b"%PDF streamed up in pieces", "application/pdf")

    async def refused(key_id: int, file_id: str) -> bytes:
        raise AssertionError("read whole for a model that only forwards")

    monkeypatch.setattr(gateway.app.state.files, "read_bytes", refused)
    answer = await gateway.http.post("/v1beta/models/gemini-alias:generateContent",
                                     json=asking(file["uri"], "application/pdf"))
    assert answer.status_code == 200, answer.text
    assert bytes(gateway.fakes.gemini.files["up1"].data) == b"%PDF streamed up in pieces"
