"""The Gemini Files API end to end through the app: the resumable protocol (several pieces, a
wrong offset, a resumed upload), multipart, get/list/delete/download, per-key scope, limits,
expiry, and bad metadata — each refusal in Google's envelope."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import update

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.file_store import FileStore
from cometgate.storage.keys import KeyRepository
from cometgate.storage.schema import gemini_files
from tests.api.conftest import create_key
from tests.conftest import FAKE_MODELS_YAML

START = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}


def forbidden(file_id: str) -> dict[str, Any]:
    return {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                      f"You do not have permission to access the File {file_id} or it may "
                      "not exist."}}


async def start(http: httpx.AsyncClient, size: int, mime: str = "text/plain",
                file: dict[str, Any] | None = None) -> httpx.Response:
    return await http.post(
        "/upload/v1beta/files", json={"file": file if file is not None else
                                      {"displayName": "notes.txt"}},
        headers={**START, "X-Goog-Upload-Header-Content-Length": str(size),
                 "X-Goog-Upload-Header-Content-Type": mime})


async def send(http: httpx.AsyncClient, url: str, data: bytes, offset: int,
               command: str = "upload") -> httpx.Response:
    return await http.post(url, content=data, headers={
        "X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)})


async def upload(http: httpx.AsyncClient, data: bytes, mime: str = "text/plain",
                 name: str = "notes.txt") -> dict[str, Any]:
    url = (await start(http, len(data), mime, {"displayName": name})).headers[
        "x-goog-upload-url"]
    done = await send(http, url, data, 0, "upload, finalize")
    assert done.status_code == 200, done.text
    file: dict[str, Any] = done.json()["file"]
    return file


def settings_with(tmp_path: Path, files: dict[str, Any]) -> Settings:
    config = yaml.safe_load(FAKE_MODELS_YAML)
    config["storage"] = {"files": files}
    path = tmp_path / "files.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path, data_dir=tmp_path / "files-data", env={"HOME": str(tmp_path)})


@pytest.fixture
def open_gateway(fake_provider: Provider) -> Any:
    async def opened(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
        key = await create_key(settings)
        app = create_app(settings, providers={"fake": fake_provider})
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                headers={"x-goog-api-key": key}) as http:
            yield http, app
    return opened


async def test_a_file_uploaded_in_several_pieces_is_kept_whole(
        client: httpx.AsyncClient) -> None:
    data = b"first piece|" + b"second piece|" + b"third"
    started = await start(client, len(data))
    assert started.status_code == 200 and started.content == b""
    assert started.headers["x-goog-upload-status"] == "active"
    url = started.headers["x-goog-upload-url"]
    assert url.startswith("http://gateway/upload/v1beta/files?upload_id=")
    for offset, piece in ((0, data[:12]), (12, data[12:25])):
        answer = await send(client, url, piece, offset)
        assert (answer.status_code, answer.headers["x-goog-upload-status"]) == (200, "active")
    final = await send(client, url, data[25:], 25, "upload, finalize")
    assert final.headers["x-goog-upload-status"] == "final"
    file = final.json()["file"]
    file_id = file["name"].removeprefix("files/")
    assert file["uri"] == f"http://gateway/v1beta/files/{file_id}"
    assert (file["displayName"], file["mimeType"], file["sizeBytes"], file["state"],
            file["source"]) == ("notes.txt", "text/plain", str(len(data)), "ACTIVE", "UPLOADED")
    assert file["sha256Hash"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    created = datetime.fromisoformat(file["createTime"])
    assert datetime.fromisoformat(file["expirationTime"]) - created == timedelta(hours=48)
    assert (await client.get(f"/v1beta/files/{file_id}")).json() == file
    download = await client.get(f"/download/v1beta/files/{file_id}:download?alt=media")
    assert (download.content, download.headers["content-type"]) == (data, "text/plain")


async def test_a_wrong_offset_is_refused_and_a_query_says_where_to_resume(
        client: httpx.AsyncClient) -> None:
    url = (await start(client, 10)).headers["x-goog-upload-url"]
    assert (await send(client, url, b"hello", 0)).status_code == 200
    wrong = await send(client, url, b"world", 3)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                      "Invalid upload offset 3: the upload has received 5 "
                                      "bytes. Send a query command and resume from there."}}
    assert wrong.headers["x-goog-upload-status"] == "active"
    assert wrong.headers["x-goog-upload-size-received"] == "5"
    query = await client.post(url, headers={"X-Goog-Upload-Command": "query"})
    assert (query.status_code, query.headers["x-goog-upload-status"],
            query.headers["x-goog-upload-size-received"]) == (200, "active", "5")
    final = await send(client, url, b"world", 5, "upload, finalize")
    file_id = final.json()["file"]["name"].removeprefix("files/")
    download = await client.get(f"/v1beta/files/{file_id}:download?alt=media")
    assert download.content == b"helloworld"
    again = await client.post(url, headers={"X-Goog-Upload-Command": "query"})
    assert again.headers["x-goog-upload-status"] == "final"
    assert again.json()["file"]["name"] == f"files/{file_id}"
    late = await send(client, url, b"more", 10)
    assert (late.status_code, late.headers["x-goog-upload-status"]) == (400, "final")
    assert late.json()["error"]["message"] == ("The upload is already finalized; it takes no "
                                               "more data.")


async def test_finalizing_early_or_sending_past_the_declared_size_is_refused(
        client: httpx.AsyncClient) -> None:
    url = (await start(client, 4)).headers["x-goog-upload-url"]
    early = await send(client, url, b"ab", 0, "upload, finalize")
    assert early.status_code == 400
    assert early.json()["error"]["message"] == (
        "The upload declared 4 bytes and has received 2; send the rest before finalizing.")
    over = await send(client, url, b"abcdef", 2)
    assert over.status_code == 413
    assert over.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert over.headers["x-goog-upload-status"] == "active"
    missing = await client.post("/upload/v1beta/files?upload_id=nothing-here",
                                headers={"X-Goog-Upload-Command": "query"})
    assert (missing.status_code, missing.headers["x-goog-upload-status"]) == (404, "final")
    assert missing.json()["error"]["status"] == "NOT_FOUND"


async def test_a_cancelled_upload_is_gone(client: httpx.AsyncClient) -> None:
    url = (await start(client, 4)).headers["x-goog-upload-url"]
    cancelled = await client.post(url, headers={"X-Goog-Upload-Command": "cancel"})
    assert (cancelled.status_code, cancelled.headers["x-goog-upload-status"]) == (
        200, "cancelled")
    assert (await send(client, url, b"abcd", 0)).status_code == 404


async def test_multipart_upload_in_one_request(client: httpx.AsyncClient) -> None:
    body = (b"--b0\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            b'{"file": {"displayName": "one shot"}}\r\n'
            b"--b0\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n\r\n--b0--\r\n")
    answer = await client.post("/upload/v1beta/files?uploadType=multipart", content=body,
                                headers={"content-type": "multipart/related; boundary=b0"})
    assert answer.status_code == 200, answer.text
    file = answer.json()["file"]
    assert (file["displayName"], file["mimeType"], file["sizeBytes"]) == (
        "one shot", "text/csv", "8")
    download = await client.get(f"/v1beta/{file['name']}:download?alt=media")
    assert download.content == b"a,b\n1,2\n"


async def test_listing_is_paged_newest_first(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1beta/files")).json() == {}
    names = [(await upload(client, f"file {i}".encode()))["name"] for i in range(3)]
    first = (await client.get("/v1beta/files", params={"pageSize": 2})).json()
    assert [f["name"] for f in first["files"]] == names[::-1][:2]
    second = (await client.get("/v1beta/files", params={
        "pageSize": 2, "pageToken": first["nextPageToken"]})).json()
    assert [f["name"] for f in second["files"]] == names[:1]
    assert "nextPageToken" not in second
    bad = await client.get("/v1beta/files", params={"pageToken": "not a token"})
    assert bad.status_code == 400
    assert bad.json() == {"error": {"code": 400, "message": "Invalid page token.",
                                    "status": "INVALID_ARGUMENT"}}


async def test_another_key_cannot_see_read_or_delete_a_file(
        client: httpx.AsyncClient, settings: Settings) -> None:
    file = await upload(client, b"private words")
    file_id = file["name"].removeprefix("files/")
    other = {"x-goog-api-key": await create_key(settings, "other")}
    for answer in (await client.get(f"/v1beta/files/{file_id}", headers=other),
                   await client.delete(f"/v1beta/files/{file_id}", headers=other),
                   await client.get(f"/download/v1beta/files/{file_id}:download?alt=media",
                                    headers=other)):
        assert answer.status_code == 403
        assert answer.json() == forbidden(file_id)
    assert (await client.get("/v1beta/files", headers=other)).json() == {}
    assert (await client.get(f"/v1beta/files/{file_id}")).status_code == 200


async def test_deleted_and_missing_files_are_the_same_refusal(
        client: httpx.AsyncClient) -> None:
    file_id = (await upload(client, b"short-lived"))["name"].removeprefix("files/")
    assert (await client.delete(f"/v1beta/files/{file_id}")).json() == {}
    for path in (f"/v1beta/files/{file_id}", "/v1beta/files/neverwas"):
        answer = await client.get(path)
        assert answer.status_code == 403
        assert answer.json() == forbidden(path.rpartition("/")[2])
    assert (await client.delete(f"/v1beta/files/{file_id}")).status_code == 403


async def test_a_file_without_a_key_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1beta/files", headers={"x-goog-api-key": ""})
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


async def test_an_expired_file_is_gone_and_swept(
        tmp_path: Path, open_gateway: Any) -> None:
    settings = settings_with(tmp_path, {"store": "data_dir"})
    async for http, app in open_gateway(settings):
        file_id = (await upload(http, b"ephemeral"))["name"].removeprefix("files/")
        blob = settings.data_dir / "files" / file_id
        assert blob.read_bytes() == b"ephemeral"
        store: FileStore = app.state.files
        async with store._engine.begin() as conn:
            await conn.execute(update(gemini_files).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert (await http.get(f"/v1beta/files/{file_id}")).json() == forbidden(file_id)
        assert (await http.get("/v1beta/files")).json() == {}
        assert await store.purge_expired() == 1
        assert not blob.exists()


async def test_sizes_over_the_file_and_key_limits_are_refused(
        tmp_path: Path, open_gateway: Any) -> None:
    settings = settings_with(tmp_path, {"max_file_bytes": 100, "max_key_bytes": 150})
    async for http, _ in open_gateway(settings):
        big = await start(http, 101)
        assert big.status_code == 400
        assert big.json() == {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                        "The file is 101 bytes; a file may have at most 100 "
                                        "bytes."}}
        await upload(http, b"x" * 100)
        full = await start(http, 51)
        assert full.status_code == 429
        assert full.json() == {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                         "message": "The key's files would take 151 bytes; it "
                                         "may keep at most 150 bytes. Delete files or wait for "
                                         "them to expire."}}
        assert (await start(http, 50)).status_code == 200


@pytest.mark.parametrize(("body", "headers", "message"), [
    (b"{not json", {}, "Invalid JSON payload received. The upload's metadata is not JSON."),
    (b'{"file": {"colour": "red"}}', {}, 'Invalid JSON payload received. Unknown name '
     '"colour" at \'file\': Cannot find field.'),
    (b'{"files": {}}', {}, 'Invalid JSON payload received. Unknown name "files": Cannot find '
     'field.'),
    (b'{"file": {"displayName": 5}}', {}, "Invalid value at 'file.display_name' "
     "(TYPE_STRING), b'5'"),
    (b'{"file": {"name": "files/Bad_Name"}}', {}, "* File.name: 'files/Bad_Name' is not a "
     "valid file name: the id after 'files/' has up to 40 lowercase letters, digits or "
     "dashes, and neither starts nor ends with a dash."),
    (b'{"file": {}}', {"X-Goog-Upload-Header-Content-Length": None}, "The upload's size is "
     "missing: send X-Goog-Upload-Header-Content-Length with the start command."),
    (b'{"file": {}}', {"X-Goog-Upload-Header-Content-Type": None}, "The file's MIME type is "
     "missing: set file.mimeType or send X-Goog-Upload-Header-Content-Type."),
    (b'{"file": {}}', {"X-Goog-Upload-Command": "upload"}, "Uploads take "
     "X-Goog-Upload-Protocol: resumable with X-Goog-Upload-Command: start, or "
     "uploadType=multipart."),
])
async def test_bad_metadata_is_refused(client: httpx.AsyncClient, body: bytes,
                                       headers: dict[str, str | None], message: str) -> None:
    sent = {**START, "X-Goog-Upload-Header-Content-Length": "3",
            "X-Goog-Upload-Header-Content-Type": "text/plain", **headers}
    answer = await client.post("/upload/v1beta/files", content=body,
                               headers={k: v for k, v in sent.items() if v is not None})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == message
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_a_chosen_name_is_kept_and_cannot_be_taken_twice(
        client: httpx.AsyncClient) -> None:
    first = await start(client, 1, file={"name": "files/my-notes"})
    assert first.status_code == 200
    done = await send(client, first.headers["x-goog-upload-url"], b"x", 0, "upload, finalize")
    assert done.json()["file"]["name"] == "files/my-notes"
    taken = await start(client, 1, file={"name": "my-notes"})
    assert taken.status_code == 409
    assert taken.json() == {"error": {"code": 409, "status": "ALREADY_EXISTS", "message":
                                      "A file named files/my-notes already exists."}}


async def test_the_v1_paths_serve_the_same_files(client: httpx.AsyncClient) -> None:
    started = await client.post(
        "/upload/v1/files", json={"file": {"displayName": "v1"}},
        headers={**START, "X-Goog-Upload-Header-Content-Length": "2",
                 "X-Goog-Upload-Header-Content-Type": "text/plain"})
    url = started.headers["x-goog-upload-url"]
    assert url.startswith("http://gateway/upload/v1/files?upload_id=")
    name = (await send(client, url, b"ok", 0, "upload, finalize")).json()["file"]["name"]
    assert (await client.get(f"/v1/{name}")).json()["displayName"] == "v1"
    assert [f["name"] for f in (await client.get("/v1/files")).json()["files"]] == [name]
    assert (await client.get(f"/download/v1/{name}:download?alt=media")).content == b"ok"
    assert (await client.delete(f"/v1/{name}")).status_code == 200


async def test_an_openai_caller_still_hears_openai_s_404_on_v1_files(
        client: httpx.AsyncClient, api_key: str) -> None:
    request = client.build_request("GET", "/v1/files",
                                   headers={"authorization": f"Bearer {api_key}"})
    del request.headers["x-goog-api-key"]  # the OpenAI SDK sends the Bearer key alone
    answer = await client.send(request)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "Invalid URL (GET /v1/files)"


async def test_a_key_held_to_other_ips_cannot_use_the_files_api(
        client: httpx.AsyncClient, settings: Settings) -> None:
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create("elsewhere", allowed_ips=["10.0.0.0/8"])
    for answer in (await client.get("/v1beta/files", headers={"x-goog-api-key": key}),
                   await client.post("/upload/v1beta/files", headers={
                       **START, "x-goog-api-key": key,
                       "X-Goog-Upload-Header-Content-Length": "1",
                       "X-Goog-Upload-Header-Content-Type": "text/plain"})):
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == (
            "Requests from IP address 127.0.0.1 are not allowed for this API key.")


@pytest.mark.parametrize(("content_type", "body", "message"), [
    ("application/json", b"{}", "A multipart upload needs a multipart/related body with a "
     "boundary."),
    ("multipart/related; boundary=b0", b"--b0\r\n\r\n{}\r\n--b0--", "A multipart upload "
     "has two parts: the metadata, then the media."),
    ("multipart/related; boundary=b0", b"--b0\r\nContent-Type: application/json\r\n\r\n"
     b'{"file": {"sizeBytes": "x"}}\r\n--b0\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b0--',
     "Invalid value at 'file.size_bytes' (TYPE_INT64), \"x\""),
    ("multipart/related; boundary=b0", b"--b0\r\nContent-Type: application/json\r\n\r\n"
     b"{}\r\n--b0\r\nno blank line\r\n--b0--", "A part of the multipart body has no blank "
     "line after its headers."),
])
async def test_a_bad_multipart_body_is_refused(
        client: httpx.AsyncClient, content_type: str, body: bytes, message: str) -> None:
    answer = await client.post("/upload/v1beta/files?uploadType=multipart", content=body,
                               headers={"content-type": content_type})
    assert answer.status_code == 400
    assert answer.json() == {"error": {"code": 400, "message": message,
                                       "status": "INVALID_ARGUMENT"}}
