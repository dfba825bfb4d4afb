"""OpenAI's Images API for OpenAI callers (`client.images.generate`, `client.images.edit`):
`POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart, with the image
files), on a model configured `task: image`. Same key, limits and usage records as every
other route; the budget reservation covers every image asked for (`n`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance
from cometgate.canonical import BlobPart
from cometgate.canonical.images import ImageRequest
from cometgate.dialects.billable import Billable
from cometgate.dialects.estimate import CHARS_PER_TOKEN
from cometgate.dialects.openai.images import (
    MAX_IMAGES,
    decode_edit_request,
    decode_generation_request,
    encode_images_response,
)
from cometgate.errors import InvalidRequest, NotFound
from cometgate.storage.keys import KeyRecord

JSON_TYPE = "application/json"
_IMAGE_FIELDS = ("image", "image[]")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


@dataclass(frozen=True, slots=True)
class OpenAIImagesApi:
    entrance: Entrance

    def routes(self) -> list[BaseRoute]:
        return [
            route
            for prefix in ("/v1", "")
            for route in (
                Route(f"{prefix}/images/generations", self.generations, methods=["POST"]),
                Route(f"{prefix}/images/edits", self.edits, methods=["POST"]),
            )
        ]

    async def generations(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        drawing = decode_generation_request(await self.entrance.body(request))
        return await self._answer(request, key, drawing)

    async def edits(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        body = await self.entrance.body(request)
        fields, images = await _form(request, body)
        return await self._answer(request, key, decode_edit_request(fields, images))

    async def _answer(self, request: Request, key: KeyRecord, drawing: ImageRequest) -> Response:
        entrance = self.entrance
        name = drawing.model
        request.scope["state"]["model"] = name
        info = entrance.model(name)
        if info is None:
            raise NotFound(f"The model `{name}` does not exist.")
        prompt_tokens = len(drawing.prompt) // CHARS_PER_TOKEN + 1
        ticket = await entrance.admit(request, key, info, estimate=(prompt_tokens, None),
                                      dialect="openai", stream=False,
                                      billable=Billable(images=drawing.count))

        async def answer() -> Response:
            outcome = await entrance.gateway.images(drawing)
            await entrance.finish(ticket, outcome.response.usage, outcome.served_by)
            headers = await entrance.answer_headers(ticket, outcome.served_by)
            return Response(encode_images_response(outcome.response), media_type=JSON_TYPE,
                            headers=headers)

        return await entrance.metered(request, ticket, answer)


async def _form(request: Request, body: bytes) -> tuple[dict[str, str], tuple[BlobPart, ...]]:
    """The multipart form of an edit, read from the body already read within the size bound:
    its text fields, and its image files in order."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Images edits take multipart/form-data, with the image as a file.",
                             violations={"image": "not multipart"})

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=MAX_IMAGES * 2,
                                     max_fields=32).parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The multipart form could not be read: {exc.message}") from None
    fields: dict[str, str] = {}
    images: list[BlobPart] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name in _IMAGE_FIELDS:
                    images.append(await _image(value))
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields, tuple(images)


async def _image(upload: UploadFile) -> BlobPart:
    mime = (upload.content_type or "").split(";")[0].strip().lower()
    if mime not in _IMAGE_TYPES:
        raise InvalidRequest(
            f"Invalid file '{upload.filename}': unsupported mimetype ('{mime}'). Supported file "
            "formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            violations={"image": "unsupported mimetype"}, code="unsupported_file")
    return BlobPart(mime, await upload.read())
