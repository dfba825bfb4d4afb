"""The Gemini Files API: upload (resumable and multipart), get, list, delete, download.

Files belong to the key that uploaded them (another key hears Google's 403 for a file it may
not see). The upload URL handed out at `start` is itself the upload's credential, as Google's
is: the SDKs send the pieces to it without their key.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cometgate.api import upload_protocol as protocol
from cometgate.api.body import read_body
from cometgate.api.caller_dialect import sniffed_dialect
from cometgate.api.entrance import Entrance, client_ip
from cometgate.api.error_handlers import render
from cometgate.api.file_objects import file_resource, refusal
from cometgate.errors import GatewayError, InvalidRequest, NotFound
from cometgate.key_access import check_origin
from cometgate.storage.file_store import (
    ACTIVE,
    UPLOADING,
    FileStore,
    FileStoreError,
    OffsetMismatch,
    StoredFile,
    UploadFinished,
)
from cometgate.storage.keys import KeyRecord

JSON_TYPE = "application/json; charset=UTF-8"
# One upload request holds at most this much in memory; the SDKs send 8 MiB pieces.
MAX_CHUNK_BYTES = 64 * 1024 * 1024
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 10, 100  # Google's for files.list
STATUS, SIZE_RECEIVED = "X-Goog-Upload-Status", "X-Goog-Upload-Size-Received"


@dataclass(frozen=True, slots=True)
class FilesApi:
    entrance: Entrance
    store: FileStore

    def routes(self) -> list[BaseRoute]:
        # @google/genai (3.x) calls the v1 paths by default, google-genai the v1beta ones.
        # OpenAI's clients have a /v1/files of their own: a caller that looks like one
        # (a Bearer key alone) still hears OpenAI's 404 there, as before these routes.
        return [route for version in ("v1beta", "v1") for route in (
            Route(f"/upload/{version}/files", self.upload, methods=["POST"]),
            Route(f"/{version}/files", _google_only(self.list_files), methods=["GET"]),
            Route(f"/{version}/files/{{name}}", _google_only(self.file),
                  methods=["GET", "DELETE"]),
            Route(f"/download/{version}/files/{{name}}", self.download, methods=["GET"]),
        )]

    async def _caller(self, request: Request) -> KeyRecord:
        """The key, held to its allowed IPs as on the model routes."""
        key = await self.entrance.caller(request)
        check_origin(key, client_ip(request), datetime.now(UTC))
        return key

    # -- upload ------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        upload_id = request.query_params.get("upload_id")
        if upload_id is not None:
            return await self._upload_step(request, upload_id)
        key = await self._caller(request)
        protocol_name = request.headers.get("x-goog-upload-protocol", "").strip().lower()
        if (request.query_params.get("uploadType") == "multipart"
                or protocol_name == "multipart"):
            return await self._multipart(request, key.id)
        if protocol_name != "resumable" or protocol.commands(
                request.headers.get("x-goog-upload-command")) != {"start"}:
            raise InvalidRequest(
                "Uploads take X-Goog-Upload-Protocol: resumable with X-Goog-Upload-Command: "
                "start, or uploadType=multipart.")
        metadata = protocol.parse_metadata(await self.entrance.body(request))
        size = protocol.declared_size(
            request.headers.get("x-goog-upload-header-content-length"), metadata)
        mime = protocol.declared_type(
            request.headers.get("x-goog-upload-header-content-type"), metadata)
        try:
            file = await self.store.begin_upload(key.id, metadata.display_name, mime, size,
                                                 file_id=metadata.file_id)
        except FileStoreError as exc:
            raise refusal(exc) from None
        version = request.url.path.split("/")[2]  # the upload URL keeps the caller's version
        url = (f"{_base_url(request)}/upload/{version}/files?upload_id={file.upload_id}"
               "&upload_protocol=resumable")
        return Response(b"", headers={"X-Goog-Upload-URL": url, STATUS: "active",
                                      "X-GUploader-UploadID": file.upload_id or ""})

    async def _upload_step(self, request: Request, upload_id: str) -> Response:
        """One command on an upload URL. Every answer, refusals too, carries
        X-Goog-Upload-Status: the SDKs retry an answer without it as a lost one."""
        try:
            return await self._command(request, upload_id)
        except FileStoreError as exc:
            return self._upload_refusal(request, refusal(exc), exc)
        except GatewayError as exc:
            return self._upload_refusal(request, exc, None)

    async def _command(self, request: Request, upload_id: str) -> Response:
        words = protocol.commands(request.headers.get("x-goog-upload-command"))
        if words == {"query"}:
            return self._standing(request, await self.store.upload(upload_id))
        if words == {"cancel"}:
            await self.store.cancel_upload(upload_id)
            return Response(b"", headers={STATUS: "cancelled"})
        if not words or not words <= {"upload", "finalize"}:
            raise InvalidRequest("X-Goog-Upload-Command must be upload, finalize, "
                                 "'upload, finalize', query or cancel.")
        file = await self.store.upload(upload_id)
        if "upload" in words:
            at = protocol.offset(request.headers.get("x-goog-upload-offset"))
            if file.state != UPLOADING:
                raise UploadFinished(file)
            if at != file.received_bytes:
                raise OffsetMismatch(file.received_bytes, at)
            room = min(file.size_bytes - at, MAX_CHUNK_BYTES)
            data = await read_body(request, room, self.entrance.body_pace)
            file = await self.store.append(upload_id, at, data)
        if "finalize" in words:
            file = await self.store.finalize(upload_id)
            return self._final(request, file)
        return Response(b"", headers={STATUS: "active"})

    def _standing(self, request: Request, file: StoredFile) -> Response:
        if file.state == ACTIVE:
            response = self._final(request, file)
            response.headers[SIZE_RECEIVED] = str(file.received_bytes)
            return response
        return Response(b"", headers={STATUS: "active",
                                      SIZE_RECEIVED: str(file.received_bytes)})

    def _final(self, request: Request, file: StoredFile) -> Response:
        body = orjson.dumps({"file": file_resource(file, _base_url(request))})
        return Response(body, media_type=JSON_TYPE, headers={STATUS: "final"})

    def _upload_refusal(self, request: Request, error: GatewayError,
                        cause: FileStoreError | None) -> Response:
        """Modelled on Google's resumable upload protocol as its public guides describe it
        (the same X-Goog-Upload-* headers in the Photos Library and Gemini uploads): a piece
        that does not start where the upload stands is refused with 400 INVALID_ARGUMENT in
        Google's error envelope while the upload stays `active`, and the client learns where
        to resume from a `query` (X-Goog-Upload-Size-Received, sent here on the refusal too);
        an upload that is finalized, cancelled or unknown answers `final`. The message text
        is ours: Google's exact wording for this case was not available to copy."""
        response = render(error, request)
        if isinstance(cause, OffsetMismatch):
            response.headers[STATUS] = "active"
            response.headers[SIZE_RECEIVED] = str(cause.received)
        elif isinstance(cause, UploadFinished) or error.http_status == 404:
            response.headers[STATUS] = "final"
        else:
            response.headers[STATUS] = "active"
        return response

    async def _multipart(self, request: Request, key_id: int) -> Response:
        body = await read_body(request, self.entrance.max_body_bytes, self.entrance.body_pace)
        metadata, media_type, media = protocol.multipart_parts(
            request.headers.get("content-type", ""), body)
        mime = protocol.declared_type(media_type, metadata)
        try:
            file = await self.store.create(key_id, metadata.display_name, mime, media,
                                           file_id=metadata.file_id)
        except FileStoreError as exc:
            raise refusal(exc) from None
        return Response(orjson.dumps({"file": file_resource(file, _base_url(request))}),
                        media_type=JSON_TYPE)

    # -- files -------------------------------------------------------------------------------

    async def list_files(self, request: Request) -> Response:
        key = await self._caller(request)
        size = _page_size(request.query_params.get("pageSize"))
        after = _page_anchor(request.query_params.get("pageToken"))
        page = await self.store.page(key.id, size, after)
        body: dict[str, object] = {}
        if page.files:
            body["files"] = [file_resource(f, _base_url(request)) for f in page.files]
        if page.next_after is not None:
            body["nextPageToken"] = _page_token(page.next_after)
        return Response(orjson.dumps(body), media_type=JSON_TYPE)

    async def file(self, request: Request) -> Response:
        key = await self._caller(request)
        file_id, _, method = request.path_params["name"].partition(":")
        try:
            if method == "download" and request.method == "GET":
                return await self._download(request, key.id, file_id)
            if method:
                raise NotFound(f"Method not found: {request.method} {request.url.path}")
            if request.method == "DELETE":
                await self.store.delete(key.id, file_id)
                return Response(b"{}", media_type=JSON_TYPE)
            file = await self.store.get(key.id, file_id)
        except FileStoreError as exc:
            raise refusal(exc) from None
        return Response(orjson.dumps(file_resource(file, _base_url(request))),
                        media_type=JSON_TYPE)

    async def download(self, request: Request) -> Response:
        key = await self._caller(request)
        file_id, _, method = request.path_params["name"].partition(":")
        if method != "download":
            raise NotFound(f"Method not found: {request.method} {request.url.path}")
        try:
            return await self._download(request, key.id, file_id)
        except FileStoreError as exc:
            raise refusal(exc) from None

    async def _download(self, request: Request, key_id: int, file_id: str) -> Response:
        file = await self.store.get(key_id, file_id)
        if request.query_params.get("alt") != "media":
            raise InvalidRequest("Downloads take alt=media.")
        pieces = self.store.open(key_id, file.id)
        # The type as stored: Starlette would add a charset to a text/* media_type.
        return StreamingResponse(_pieces(pieces), headers={
            "content-type": file.mime_type, "content-length": str(file.size_bytes)})


def _google_only(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        if request.url.path.startswith("/v1/") and sniffed_dialect(request) == "openai":
            raise HTTPException(404)  # rendered as an unknown route is, in OpenAI's words
        return await handler(request)

    return answer


async def _pieces(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for piece in pieces:
        yield piece


def _base_url(request: Request) -> str:
    """The gateway's root as this caller reached it (its Host header and scheme)."""
    return str(request.base_url).rstrip("/")


def _page_size(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise InvalidRequest(f"Invalid value at 'page_size' (TYPE_INT32), \"{text}\"") from None
    return DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)


def _page_token(after: tuple[datetime, str]) -> str:
    created, file_id = after
    raw = f"{created.isoformat()}|{file_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_anchor(token: str | None) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, file_id = text.split("|")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError(token)
        return moment, file_id
    except ValueError:
        raise InvalidRequest("Invalid page token.") from None
