"""`fileData.fileUri` naming a gateway file (`files/{id}`, or the `…/v1beta/files/{id}` URI the
Files API handed out) in a Gemini caller's generateContent, stream or countTokens.

The referenced files are checked before admission, with the caller's key: another key's file,
a missing or an expired one is Google's 403 and nothing is recorded. Then, per attempt:
- a translating upstream gets the bytes inline (a text file as text, anything else as a blob
  the upstream's codec sends as it sends inline data), up to storage.files.max_inline_bytes;
- a Gemini upstream gets its own copy, uploaded to its Files API once per provider and
  credential (remembered until that copy expires), and the URI rewritten to the copy's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from cometgate.api.file_objects import file_not_found
from cometgate.canonical import BlobPart, FileRefPart, GenerateRequest, Part, TextPart
from cometgate.errors import FailedPrecondition, InvalidRequest
from cometgate.providers.base import RawCall, Target, UploadsFiles
from cometgate.storage.file_store import ACTIVE, FileMissing, FileStore, StoredFile

_NAME = re.compile(r"files/([a-z0-9-]{1,40})")
_URL_PATH = re.compile(r"/(?:v1beta|v1)/files/([a-z0-9-]{1,40})")
# An upstream's copy is used only while it has this much life left, so that it cannot expire
# between the rewrite and the upstream reading it.
_COPY_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class FileLinker:
    store: FileStore
    max_inline_bytes: int

    async def bind(self, key_id: int, body: bytes, base_url: Callable[[], str], *,
                   inline: Callable[[], bool]) -> BoundFiles | None:
        """The gateway files `body` refers to, checked; None when it refers to none. Their
        bytes are read only if `inline()` (some upstream of the model translates); the
        gateway's root as the caller reached it (`base_url()`) is built only for a body that
        names a file."""
        if b"fileUri" not in body and b"file_uri" not in body:
            return None  # the hot path parses nothing
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # the decoder refuses it in Google's words
        host = urlsplit(base_url()).netloc
        ids = {uri: file_id for uri in set(_file_uris(document))
               if (file_id := gateway_file_id(uri, host)) is not None}
        if not ids:
            return None
        files = {uri: await self._usable(key_id, file_id) for uri, file_id in ids.items()}
        unique = {file.id: file for file in files.values()}
        data: dict[str, bytes] = {}
        if inline() and sum(f.size_bytes for f in unique.values()) <= self.max_inline_bytes:
            data = {file_id: await self.store.read_bytes(key_id, file_id) for file_id in unique}
        return BoundFiles(self.store, key_id, files, data, self.max_inline_bytes)

    async def _usable(self, key_id: int, file_id: str) -> StoredFile:
        try:
            file = await self.store.get(key_id, file_id)
        except FileMissing:
            raise file_not_found(file_id) from None
        if file.state != ACTIVE:  # Google's answer for a file still processing
            raise FailedPrecondition(f"The File {file_id} is not in an ACTIVE state and usage "
                                     "is not allowed.")
        return file


@dataclass(frozen=True, slots=True)
class BoundFiles:
    store: FileStore
    key_id: int
    files: dict[str, StoredFile]  # by the URI as the caller wrote it
    data: dict[str, bytes]  # by file id; empty when they are too large to inline
    max_inline_bytes: int

    def inline(self, request: GenerateRequest) -> GenerateRequest:
        """The request with each gateway file's bytes in place of its reference."""
        messages = tuple(replace(m, parts=self._parts(m.parts)) for m in request.messages)
        return replace(request, messages=messages, system=self._parts(request.system))

    def _parts(self, parts: tuple[Part, ...]) -> tuple[Part, ...]:
        return tuple(self._part(part) for part in parts)

    def _part(self, part: Part) -> Part:
        if not isinstance(part, FileRefPart) or part.uri not in self.files:
            return part
        file = self.files[part.uri]
        data = self.data.get(file.id)
        if data is None:
            total = sum(f.size_bytes for f in {f.id: f for f in self.files.values()}.values())
            raise InvalidRequest(
                f"The files this request refers to take {total} bytes; this model's upstream "
                f"receives files inline, at most {self.max_inline_bytes} bytes per request.")
        if file.mime_type.startswith("text/"):
            return TextPart(data.decode("utf-8", "replace"))
        return BlobPart(file.mime_type, data)

    async def prepare_raw(self, raw: RawCall, provider_name: str, provider: object,
                          target: Target) -> RawCall:
        """The caller's bytes with each gateway file replaced by the upstream's copy."""
        if not isinstance(provider, UploadsFiles):
            raise InvalidRequest(f"The upstream {provider_name} cannot receive files.")
        credential = hashlib.sha256((target.credential or "").encode()).hexdigest()
        copies = {uri: await self._copy(file, provider_name, provider, credential, target)
                  for uri, file in self.files.items()}
        document = orjson.loads(raw.body)
        _rewrite(document, copies)
        return replace(raw, body=orjson.dumps(document))

    async def _copy(self, file: StoredFile, provider_name: str, provider: UploadsFiles,
                    credential: str, target: Target) -> str:
        known = await self.store.upstream_copy(file.id, provider_name, credential)
        if known is not None:
            return known
        uploaded = await provider.upload_file(
            self.store.open(self.key_id, file.id), size=file.size_bytes,
            mime_type=file.mime_type, display_name=file.display_name, target=target)
        expires = min(uploaded.expires_at or file.expires_at, file.expires_at) - _COPY_MARGIN
        await self.store.remember_upstream_copy(file.id, provider_name, credential,
                                                uploaded.uri, expires)
        return uploaded.uri


def gateway_file_id(uri: str, host: str) -> str | None:
    """The id of the gateway file `uri` names, if it names one: `files/{id}`, or a URL on this
    gateway's host whose path is `/v1beta/files/{id}` (a URL on another host — Google's own
    file URIs, say — is left as it is)."""
    match = _NAME.fullmatch(uri)
    if match is not None:
        return match.group(1)
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.netloc != host:
        return None
    match = _URL_PATH.search(parts.path)
    return match.group(1) if match is not None and match.end() == len(parts.path) else None


def _file_datas(document: Any) -> Iterator[dict[str, Any]]:
    """Every fileData object in the request, in either spelling, wherever it sits (contents,
    systemInstruction, countTokens' generateContentRequest)."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("fileData", "file_data") and isinstance(value, dict):
                yield value
            else:
                yield from _file_datas(value)
    elif isinstance(document, list):
        for item in document:
            yield from _file_datas(item)


def _file_uris(document: Any) -> Iterator[str]:
    for file_data in _file_datas(document):
        for key in ("fileUri", "file_uri"):
            uri = file_data.get(key)
            if isinstance(uri, str):
                yield uri


def _rewrite(document: Any, copies: dict[str, str]) -> None:
    for file_data in _file_datas(document):
        for key in ("fileUri", "file_uri"):
            uri = file_data.get(key)
            if isinstance(uri, str) and uri in copies:
                file_data[key] = copies[uri]



