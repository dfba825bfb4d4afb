"""Copying a gateway file to a Gemini upstream's own Files API, with Google's resumable
protocol: `start` with the size and type, then pieces of at most PIECE_BYTES, the last one with
`upload, finalize`, so that a large file never sits whole in memory."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

import orjson

from cometgate.dialects.gemini.upstream_errors import classify_error
from cometgate.dialects.upstream_answers import unreadable
from cometgate.providers.base import UpstreamFile
from cometgate.providers.transport import Transport

PIECE_BYTES = 8 * 1024 * 1024  # the SDKs' own piece size
_RFC3339 = re.compile(r"(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?Z")


async def upload_file(
    transport: Transport, base_url: str, headers: Mapping[str, str],
    pieces: AsyncIterator[bytes], *, size: int, mime_type: str, display_name: str,
) -> UpstreamFile:
    start = {**headers, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
             "X-Goog-Upload-Header-Content-Length": str(size),
             "X-Goog-Upload-Header-Content-Type": mime_type}
    metadata = orjson.dumps({"file": {"displayName": display_name}})
    _, answer = await transport.exchange(f"{base_url}/upload/v1beta/files", metadata, start,
                                         classify_error)
    url = answer.get("x-goog-upload-url")
    if not url:
        raise unreadable("the upload's start answer has no X-Goog-Upload-URL")
    offset, pending = 0, bytearray()
    async for piece in pieces:
        pending += piece
        while len(pending) > PIECE_BYTES:  # the last piece is kept back to finalize with
            await _send(transport, url, headers, bytes(pending[:PIECE_BYTES]), offset, "upload")
            offset += PIECE_BYTES
            del pending[:PIECE_BYTES]
    body = await _send(transport, url, headers, bytes(pending), offset, "upload, finalize")
    return _uploaded(body)


async def _send(transport: Transport, url: str, headers: Mapping[str, str], data: bytes,
                offset: int, command: str) -> bytes:
    piece_headers = {**headers, "content-type": "application/octet-stream",
                     "X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
    body, _ = await transport.exchange(url, data, piece_headers, classify_error)
    return body


def _uploaded(body: bytes) -> UpstreamFile:
    try:
        file = orjson.loads(body)["file"]
        uri = file["uri"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise unreadable("the upload's final answer holds no file") from None
    if not isinstance(uri, str):
        raise unreadable("the uploaded file has no uri")
    return UpstreamFile(uri, _time(file.get("expirationTime")))


def _time(text: object) -> datetime | None:
    """An RFC 3339 time as Google writes it (nanoseconds and a Z); None if it is not one."""
    if not isinstance(text, str):
        return None
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match['seconds']}.{fraction}+00:00")
