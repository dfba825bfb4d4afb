"""Google's upload protocol for the Files API, as the SDKs speak it.

Resumable (google-genai, @google/genai): `POST /upload/v1beta/files` with
`X-Goog-Upload-Protocol: resumable` and `X-Goog-Upload-Command: start`, the file's metadata as
JSON (`{"file": {"displayName", "mimeType", …}}`) and its size and type in
`X-Goog-Upload-Header-Content-Length` / `-Content-Type`; the answer's `X-Goog-Upload-URL` takes
the bytes with `X-Goog-Upload-Command: upload` (`upload, finalize` for the last piece) at
`X-Goog-Upload-Offset`; `query` tells where an interrupted upload stands.

Multipart (`uploadType=multipart`, or `X-Goog-Upload-Protocol: multipart`): one
`multipart/related` body, the JSON metadata first and the media second.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.errors import InvalidRequest

MAX_DISPLAY_NAME = 512  # Google's limit on File.displayName
_FILE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_FILE_FIELDS = {"name": "name", "displayName": "display_name", "display_name": "display_name",
                "mimeType": "mime_type", "mime_type": "mime_type", "sizeBytes": "size_bytes",
                "size_bytes": "size_bytes"}
# Read-only fields of File that clients echo back; Google ignores them on create.
_OUTPUT_FIELDS = {"createTime", "updateTime", "expirationTime", "sha256Hash", "uri", "state",
                  "source", "error", "videoMetadata", "downloadUri", "create_time",
                  "update_time", "expiration_time", "sha256_hash", "download_uri"}


@dataclass(frozen=True, slots=True)
class FileMetadata:
    display_name: str
    mime_type: str | None
    size: int | None
    file_id: str | None  # a name the caller chose


def commands(header: str | None) -> set[str]:
    """`X-Goog-Upload-Command` ("upload, finalize") as a set of lower-case words."""
    return {word.strip().lower() for word in (header or "").split(",") if word.strip()}


def parse_metadata(body: bytes) -> FileMetadata:
    """The start request's JSON: `{"file": File}` or nothing at all."""
    if not body.strip():
        return FileMetadata("", None, None, None)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Invalid JSON payload received. The upload's metadata is not "
                             "JSON.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object with a "
                             "'file' field.")
    unknown = set(document) - {"file"}
    if unknown:
        raise _unknown_name(sorted(unknown)[0], "")
    file = document.get("file") or {}
    if not isinstance(file, dict):
        raise InvalidRequest("Invalid value at 'file' (type.googleapis.com/"
                             "google.ai.generativelanguage.v1beta.File), expected an object.")
    return _file_metadata(file)


def _file_metadata(file: Mapping[str, Any]) -> FileMetadata:
    values: dict[str, Any] = {}
    for field, value in file.items():
        if field in _OUTPUT_FIELDS:
            continue
        if field not in _FILE_FIELDS:
            raise _unknown_name(field, "file")
        values[_FILE_FIELDS[field]] = value
    display_name = _string(values.get("display_name"), "file.display_name") or ""
    if len(display_name) > MAX_DISPLAY_NAME:
        raise InvalidRequest(f"* File.display_name: must be at most {MAX_DISPLAY_NAME} "
                             "characters.")
    mime = _string(values.get("mime_type"), "file.mime_type")
    size = _size(values.get("size_bytes"), "file.size_bytes")
    return FileMetadata(display_name, mime or None, size, _file_id(values.get("name")))


def _file_id(name: Any) -> str | None:
    text = _string(name, "file.name")
    if not text:
        return None
    file_id = text.removeprefix("files/")
    if not _FILE_ID.fullmatch(file_id):
        raise InvalidRequest(
            f"* File.name: '{text}' is not a valid file name: the id after 'files/' has up to "
            "40 lowercase letters, digits or dashes, and neither starts nor ends with a dash.")
    return file_id


def declared_size(header: str | None, metadata: FileMetadata) -> int:
    if header is not None:
        size = _size(header.strip(), "X-Goog-Upload-Header-Content-Length")
        if size is not None:
            return size
    if metadata.size is not None:
        return metadata.size
    raise InvalidRequest("The upload's size is missing: send X-Goog-Upload-Header-Content-"
                         "Length with the start command.")


def declared_type(header: str | None, metadata: FileMetadata) -> str:
    mime = metadata.mime_type or (header or "").strip()
    if not mime:
        raise InvalidRequest("The file's MIME type is missing: set file.mimeType or send "
                             "X-Goog-Upload-Header-Content-Type.")
    if "/" not in mime or len(mime) > 255:
        raise InvalidRequest(f"Invalid MIME type: '{mime[:300]}'.")
    return mime.split(";")[0].strip().lower()


def offset(header: str | None) -> int:
    if header is None or not header.strip().isdigit():
        raise InvalidRequest("X-Goog-Upload-Offset is missing or not a byte offset.")
    return int(header.strip())


def multipart_parts(content_type: str, body: bytes) -> tuple[FileMetadata, str | None, bytes]:
    """The metadata, the media part's own Content-Type, and the media of a multipart/related
    (or multipart/form-data) body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/") or match is None:
        raise InvalidRequest("A multipart upload needs a multipart/related body with a "
                             "boundary.")
    delimiter = b"--" + match.group(1).encode()
    pieces = body.split(delimiter)
    parts = [p for p in pieces[1:] if not p.startswith(b"--")]
    if len(parts) != 2:
        raise InvalidRequest("A multipart upload has two parts: the metadata, then the media.")
    (_, meta), (media_headers, media) = (_part(p) for p in parts)
    return parse_metadata(meta), media_headers.get("content-type"), media


def _part(raw: bytes) -> tuple[dict[str, str], bytes]:
    raw = raw.removeprefix(b"\r\n")
    head, separator, content = raw.partition(b"\r\n\r\n")
    if not separator:
        raise InvalidRequest("A part of the multipart body has no blank line after its "
                             "headers.")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, content.removesuffix(b"\r\n")


def _unknown_name(field: str, where: str) -> InvalidRequest:
    at = f" at '{where}'" if where else ""
    return InvalidRequest(
        f"Invalid JSON payload received. Unknown name \"{field}\"{at}: Cannot find field.",
        violations={f"{where}.{field}" if where else field: f"Unknown name \"{field}\""})


def _string(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"Invalid value at '{where}' (TYPE_STRING), {orjson.dumps(value)!r}")


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidRequest(f"Invalid value at '{where}' (TYPE_INT64), "
                         f"\"{str(value)[:40]}\"")
