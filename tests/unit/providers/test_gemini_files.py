"""Copying a file to a Gemini upstream's Files API: Google's resumable protocol, in pieces no
larger than the SDKs' 8 MiB, the last one finalizing; the fake upstream keeps what arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
from tests.fakes.gemini_upstream import FakeGeminiUpstream

from cometgate.providers.base import Target, UploadsFiles
from cometgate.providers.gemini import GeminiProvider
from cometgate.providers.gemini_files import PIECE_BYTES
from cometgate.providers.timeouts import Timeouts

TARGET = Target(upstream_model="gemini-up", model_version="alias", credential="cred-1")


def provider(fake: FakeGeminiUpstream) -> GeminiProvider:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    return GeminiProvider("gemini", base_url="http://upstream", api_key="gw-key",
                          timeouts=Timeouts(), client=client)


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_file_goes_up_in_pieces_and_its_uri_comes_back() -> None:
    fake = FakeGeminiUpstream()
    upstream = provider(fake)
    assert isinstance(upstream, UploadsFiles)
    data = bytes(range(256)) * (PIECE_BYTES // 256) + b"tail!"
    uploaded = await upstream.upload_file(
        pieces(data[:1000], data[1000:PIECE_BYTES + 2], data[PIECE_BYTES + 2:]), size=len(data),
        mime_type="application/pdf", display_name="report", target=TARGET)
    copy = fake.files["up1"]
    assert bytes(copy.data) == data and copy.pieces == [PIECE_BYTES, 5]
    assert (copy.mime_type, copy.display_name, copy.size) == ("application/pdf", "report",
                                                              len(data))
    assert uploaded.uri == "http://upstream/v1beta/files/up1"
    assert uploaded.expires_at == datetime(2099, 1, 3, 0, 0, 0, 123456, tzinfo=UTC)
    start, *rest = fake.file_requests
    assert start.headers["x-goog-api-key"] == "cred-1"
    assert start.headers["x-goog-upload-command"] == "start"
    assert [r.headers["x-goog-upload-command"] for r in rest] == ["upload", "upload, finalize"]
    assert [r.headers["x-goog-upload-offset"] for r in rest] == ["0", str(PIECE_BYTES)]
    await upstream.aclose()


async def test_an_empty_file_is_one_finalizing_piece() -> None:
    fake = FakeGeminiUpstream()
    upstream = provider(fake)
    await upstream.upload_file(pieces(), size=0, mime_type="text/plain", display_name="",
                               target=TARGET)
    assert fake.files["up1"].pieces == [0]
    await upstream.aclose()
