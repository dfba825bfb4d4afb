"""Image generation as an optional capability of a provider: an OpenAI-compatible upstream's
Images API (`POST {base}/images/generations`, and `/images/edits` when the request carries
pictures to change). Error answers are classified by the OpenAI dialect's `classify_error`,
exactly as for its generations.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import httpx
import orjson

from cometgate.canonical.images import ImageRequest, ImageResponse
from cometgate.dialects.openai import images as openai_images
from cometgate.dialects.openai.upstream_errors import classify_error
from cometgate.providers.base import Target
from cometgate.providers.transport import Transport


@runtime_checkable
class MakesImages(Protocol):
    async def make_images(self, request: ImageRequest, target: Target) -> ImageResponse: ...


class OpenAIImageMaker:
    """`base_url` includes the version segment (https://api.openai.com/v1). The transport is
    the provider's own connection pool, shared (and closed by the provider)."""

    def __init__(self, base_url: str, api_key: str | None, transport: Transport) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._transport = transport

    async def make_images(self, request: ImageRequest, target: Target) -> ImageResponse:
        if request.images:
            url, body, headers = self._edit(request, target)
        else:
            url = f"{self._base_url}/images/generations"
            body = orjson.dumps(openai_images.upstream_generation_body(
                request, target.upstream_model))
            headers = {"content-type": "application/json"}
        credential = target.credential or self._api_key
        if credential:
            headers["authorization"] = f"Bearer {credential}"
        answer, _ = await self._transport.exchange(url, body, headers, classify_error)
        return openai_images.decode_upstream_images(answer)

    def _edit(self, request: ImageRequest, target: Target) -> tuple[str, bytes, dict[str, str]]:
        """The multipart form, encoded whole (images are bounded by the caller's body size)."""
        url = f"{self._base_url}/images/edits"
        field = openai_images.upstream_edit_file_field(request)
        files = [(field, (f"image-{i}.{_extension(image.mime_type)}", image.data,
                          image.mime_type)) for i, image in enumerate(request.images)]
        form = httpx.Request("POST", url, files=files,
                             data=openai_images.upstream_edit_fields(request,
                                                                     target.upstream_model))
        return url, form.read(), {"content-type": form.headers["content-type"]}


def _extension(mime_type: str) -> str:
    return mime_type.removeprefix("image/").replace("jpeg", "jpg") or "png"
