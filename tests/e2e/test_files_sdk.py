"""The Files API through the official clients against a live `cometgate serve`: google-genai's
files.upload (a file larger than two of its 8 MiB pieces), get/list/delete, a generate call
naming the file on each upstream kind with the fake upstream's log proving the content arrived;
an upload interrupted mid-piece and resumed after a `query`; @google/genai's files.upload from
Node; and the local model reading a small text file."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from tests.contract.conftest import Fakes
from tests.contract.scenarios import received, script_text
from tests.e2e.conftest import MODEL, LiveGateway, create_key
from tests.e2e.fake_upstreams_live import serve_before_fakes
from tests.e2e.genai_js import run_genai_js

SDK_PIECE = 8 * 1024 * 1024  # google-genai's CHUNK_SIZE; it offers no setting to change it
BIG = 17 * 1000 * 1000  # three pieces


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    clients: list[genai.Client]

    def client(self, key: str | None = None) -> genai.Client:
        client = genai.Client(api_key=key or self.gateway.key, http_options=types.HttpOptions(
            base_url=self.gateway.base_url, api_version="v1beta", timeout=60_000))
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    for running in serve_before_fakes(tmp_path_factory, pytestconfig, "files"):
        yield Live(running.gateway, running.fakes, [])


@pytest.fixture(autouse=True)
def clean_scripts(live: Live) -> None:
    for fake in (live.fakes.openai, live.fakes.anthropic, live.fakes.gemini):
        fake.replies.clear()


def text_file(live: Live, text: str, name: str = "notes.txt") -> types.File:
    return live.client().files.upload(file=io.BytesIO(text.encode()), config=types.UploadFileConfig(
        mime_type="text/plain", display_name=name))


def test_a_file_larger_than_two_pieces_uploads_whole(live: Live) -> None:
    data = bytes(i % 251 for i in range(BIG))
    assert BIG > 2 * SDK_PIECE
    client = live.client()
    file = client.files.upload(file=io.BytesIO(data), config=types.UploadFileConfig(
        mime_type="application/octet-stream", display_name="big.bin"))
    assert file.name and file.state == types.FileState.ACTIVE
    assert (file.size_bytes, file.display_name, file.mime_type) == (
        BIG, "big.bin", "application/octet-stream")
    assert file.sha256_hash == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert file.expiration_time and file.create_time
    got = client.files.get(name=file.name)
    assert (got.name, got.size_bytes, got.uri) == (file.name, BIG, file.uri)
    download = httpx.get(f"{live.gateway.base_url}/download/v1beta/{file.name}:download",
                         params={"alt": "media"}, headers={"x-goog-api-key": live.gateway.key},
                         timeout=60)
    assert download.content == data
    client.files.delete(name=file.name)
    with pytest.raises(errors.ClientError) as gone:
        client.files.get(name=file.name)
    assert gone.value.code == 403


def test_list_pages_through_the_key_s_files(live: Live) -> None:
    names = {text_file(live, f"file {i}", f"f{i}.txt").name for i in range(3)}
    listed = {f.name for f in live.client().files.list(config={"page_size": 2})}
    assert names <= listed


def test_an_interrupted_upload_resumes_after_a_query(live: Live) -> None:
    data = os.urandom(300_000)
    headers = {"x-goog-api-key": live.gateway.key}
    with httpx.Client(base_url=live.gateway.base_url, timeout=30) as http:
        started = http.post("/upload/v1beta/files", json={"file": {"displayName": "r.bin"}},
                            headers={**headers, "X-Goog-Upload-Protocol": "resumable",
                                     "X-Goog-Upload-Command": "start",
                                     "X-Goog-Upload-Header-Content-Length": str(len(data)),
                                     "X-Goog-Upload-Header-Content-Type": "image/png"})
        url = started.headers["x-goog-upload-url"]
        first = http.post(url, content=data[:100_000], headers={
            "X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"})
        assert first.headers["x-goog-upload-status"] == "active"

        def broken() -> Iterator[bytes]:
            yield data[100_000:150_000]
            raise ConnectionError("the network drops mid-piece")

        with pytest.raises(ConnectionError):
            http.post(url, content=broken(), headers={
                "X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "100000",
                "Content-Length": "100000"})
        query = http.post(url, headers={"X-Goog-Upload-Command": "query"})
        assert query.headers["x-goog-upload-status"] == "active"
        resume_at = int(query.headers["x-goog-upload-size-received"])
        assert resume_at == 100_000
        final = http.post(url, content=data[resume_at:], headers={
            "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": str(resume_at)})
        assert final.headers["x-goog-upload-status"] == "final"
        name = final.json()["file"]["name"]
        download = http.get(f"/v1beta/{name}:download", params={"alt": "media"},
                            headers=headers)
    assert download.content == data


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_translated_upstream_receives_the_file_s_text(live: Live, kind: str) -> None:
    file = text_file(live, "The password is tangerine.")
    script_text(kind, live.fakes, "It says tangerine.")
    answer = live.client().models.generate_content(
        model=f"{kind}-text", contents=[file, "What is the password?"])
    assert answer.text == "It says tangerine."
    content = received(kind, live.fakes)["messages"][0]["content"]
    assert {"type": "text", "text": "The password is tangerine."} in content


def test_gemini_pass_through_receives_its_own_copy(live: Live) -> None:
    file = text_file(live, "Copied upstream once.")
    client = live.client()
    for _ in range(2):
        script_text("gemini", live.fakes, "Seen.")
        answer = client.models.generate_content(model="gemini-text",
                                                contents=[file, "Read it."])
        assert answer.text == "Seen."
    fake = live.fakes.gemini
    sent = orjson.loads(fake.requests[-1].body)
    file_data = sent["contents"][0]["parts"][0]["fileData"]
    copy_uri = file_data.get("fileUri") or file_data["file_uri"]  # the SDK sends snake_case
    copy = fake.files[copy_uri.rpartition("/")[2]]
    assert bytes(copy.data) == b"Copied upstream once."
    assert sum(bytes(f.data) == b"Copied upstream once." for f in fake.files.values()) == 1


def test_another_key_s_file_is_refused(live: Live) -> None:
    file = text_file(live, "mine only")
    other = live.client(create_key(live.gateway.data_dir, "files-other"))
    with pytest.raises(errors.ClientError) as refused:
        other.models.generate_content(model="openai-text", contents=[file, "Read it."])
    assert refused.value.code == 403
    assert refused.value.message == (f"You do not have permission to access the File "
                                     f"{file.name.removeprefix('files/')} or it may not exist.")


def test_google_genai_js_uploads_and_uses_a_file(live: Live) -> None:
    script_text("gemini", live.fakes, "Read from JS.")
    seen = run_genai_js("files.mjs", live.gateway.base_url, live.gateway.key, "gemini-text")
    size = seen["uploaded"]["sizeBytes"]
    assert int(size) == seen["size"] > SDK_PIECE  # more than one of the SDK's pieces
    assert seen["uploaded"]["state"] == "ACTIVE"
    assert seen["got"]["name"] == seen["uploaded"]["name"]
    assert seen["uploaded"]["name"] in seen["listed"]
    assert seen["text"] == "Read from JS."
    assert seen["deletedThenGet"] == 403
    copy = max(live.fakes.gemini.files.values(), key=lambda f: f.size)
    assert copy.size == seen["size"] and bytes(copy.data[:9]) == b"JS upload"


@pytest.mark.model
def test_the_local_model_reads_a_small_text_file(gateway: LiveGateway) -> None:
    client = genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
        base_url=gateway.base_url, api_version="v1beta", timeout=120_000))
    file = client.files.upload(file=io.BytesIO(b"Paris is the capital of France."),
                               config=types.UploadFileConfig(mime_type="text/plain"))
    counted = client.models.count_tokens(model=MODEL, contents=[file, "Repeat it."])
    bare = client.models.count_tokens(model=MODEL, contents=["Repeat it."])
    assert counted.total_tokens and bare.total_tokens
    assert counted.total_tokens > bare.total_tokens + 5  # the file's words were counted
    answer = client.models.generate_content(
        model=MODEL, contents=[file, "Repeat the sentence above."],
        config=types.GenerateContentConfig(max_output_tokens=16, temperature=0))
    assert answer.text is not None
