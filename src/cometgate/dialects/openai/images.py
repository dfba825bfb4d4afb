"""OpenAI's Images API both ways: what callers send to `POST /v1/images/generations` and
`/v1/images/edits` (inbound), what an OpenAI-compatible upstream is sent and answers
(outbound), over the canonical `ImageRequest` / `ImageResponse`.

Limits follow OpenAI's reference: `n` from 1 to 10, `size` one of the sizes its models draw
(the union over gpt-image and DALL·E; the upstream refuses a size its own model does not
draw), `response_format` `b64_json` (a `url` would point at storage this gateway does not
keep, so it is refused rather than silently changed). The upstream is asked for `b64_json`,
except gpt-image models, which always answer in base64 and refuse the parameter. Answers:
`{"created", "data": [{"b64_json", "revised_prompt"?}], "usage"?}`, `usage` as gpt-image
reports it (`input_tokens`, `output_tokens`, `total_tokens`,
`input_tokens_details`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import BlobPart, Usage
from cometgate.canonical.images import GeneratedImage, ImageRequest, ImageResponse
from cometgate.errors import FailureClass, InvalidRequest, UpstreamError

MAX_IMAGES = 10
SIZES = ("256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "1792x1024",
         "1024x1792", "auto")
_MIME_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PASSED_ON = ("quality", "background", "user")


def decode_generation_request(body: bytes) -> ImageRequest:
    """`POST /v1/images/generations` (JSON)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("We could not parse the JSON body of your request.")
    return _image_request(document, ())


def decode_edit_request(fields: Mapping[str, str], images: tuple[BlobPart, ...]) -> ImageRequest:
    """`POST /v1/images/edits` (multipart): the form's text fields and its image files."""
    if not images:
        raise InvalidRequest("Missing required parameter: 'image'.",
                             violations={"image": "missing"}, code="missing_required_parameter")
    document: dict[str, Any] = dict(fields)
    if "n" in document:
        document["n"] = _form_integer(document["n"])
    return _image_request(document, images)


def _form_integer(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _image_request(document: Mapping[str, Any], images: tuple[BlobPart, ...]) -> ImageRequest:
    model, prompt = document.get("model"), document.get("prompt")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter",
                             violations={"model": "missing"}, code="missing_required_parameter")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("Missing required parameter: 'prompt'.",
                             violations={"prompt": "missing"}, code="missing_required_parameter")
    size = document.get("size")
    if size is not None and size not in SIZES:
        allowed = ", ".join(f"'{s}'" for s in SIZES[:-1]) + f", and '{SIZES[-1]}'"
        raise InvalidRequest(f"Invalid value: '{size}'. Supported values are: {allowed}.",
                             violations={"size": "invalid"}, code="invalid_value")
    form = document.get("response_format")
    if form not in (None, "b64_json"):
        raise InvalidRequest(
            f"Invalid value: '{form}'. This gateway returns images as 'b64_json' only: it "
            "keeps no storage for image URLs.",
            violations={"response_format": "invalid"}, code="invalid_value")
    passed = {name: document.get(name) for name in _PASSED_ON}
    return ImageRequest(model=model, prompt=prompt, images=images, count=image_count(document),
                        size=size, quality=_text(passed["quality"]),
                        background=_text(passed["background"]), user=_text(passed["user"]))


def image_count(document: Mapping[str, Any]) -> int:
    count = document.get("n", 1)
    if count is None:
        return 1
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidRequest(f"Invalid type for 'n': expected an integer, but got {count!r} "
                             "instead.", violations={"n": "invalid"}, code="invalid_type")
    if count < 1:
        raise InvalidRequest(f"Invalid 'n': integer below minimum value. Expected a value >= "
                             f"1, but got {count} instead.", violations={"n": "invalid"},
                             code="integer_below_min_value")
    if count > MAX_IMAGES:
        raise InvalidRequest(f"Invalid 'n': integer above maximum value. Expected a value <= "
                             f"{MAX_IMAGES}, but got {count} instead.",
                             violations={"n": "invalid"}, code="integer_above_max_value")
    return count


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def encode_images_response(response: ImageResponse) -> bytes:
    data: list[dict[str, Any]] = []
    for image in response.images:
        item: dict[str, Any] = {"b64_json": base64.b64encode(image.data).decode()}
        if image.revised_prompt is not None:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    out: dict[str, Any] = {"created": int(response.created), "data": data}
    out.update(response.extra or {})
    usage = response.usage
    if usage.prompt_tokens or usage.output_tokens:
        out["usage"] = {"input_tokens": usage.prompt_tokens,
                        "output_tokens": usage.output_tokens,
                        "total_tokens": usage.prompt_tokens + usage.output_tokens}
    return orjson.dumps(out)


def upstream_generation_body(request: ImageRequest, upstream_model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": upstream_model, "prompt": request.prompt,
                            "n": request.count, **_b64(upstream_model)}
    body.update(_options(request))
    return body


def _b64(upstream_model: str) -> dict[str, str]:
    # OpenAI's reference: gpt-image models "will always return base64-encoded images" and
    # do not take response_format; DALL·E and compatible servers answer URLs without it.
    return {} if upstream_model.startswith("gpt-image") else {"response_format": "b64_json"}


def upstream_edit_fields(request: ImageRequest, upstream_model: str) -> dict[str, str]:
    """The text fields of the multipart edit form (its files are `request.images`)."""
    fields = {"model": upstream_model, "prompt": request.prompt, "n": str(request.count),
              **_b64(upstream_model)}
    fields.update(_options(request))
    return fields


def upstream_edit_file_field(request: ImageRequest) -> str:
    """One image goes as `image`, as every Images server takes it; several as `image[]`,
    as gpt-image takes them."""
    return "image" if len(request.images) == 1 else "image[]"


def _options(request: ImageRequest) -> dict[str, str]:
    options = {"size": request.size, "quality": request.quality,
               "background": request.background, "user": request.user}
    return {name: value for name, value in options.items() if value is not None}


def decode_upstream_images(body: bytes) -> ImageResponse:
    try:
        document = orjson.loads(body)
        items = document["data"]
        images = tuple(_generated(item, document.get("output_format")) for item in items)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise _malformed(f"the upstream's images answer is malformed: {exc}") from None
    if not images:
        raise _malformed("the upstream's images answer holds no image")
    extra = {name: document[name] for name in ("output_format", "size", "quality", "background")
             if isinstance(document.get(name), str)}
    return ImageResponse(images, float(document.get("created") or 0),
                         _usage(document.get("usage"), len(images)), extra or None)


def _generated(item: Mapping[str, Any], output_format: object) -> GeneratedImage:
    data = base64.b64decode(item["b64_json"], validate=True)
    mime = _MIME_BY_FORMAT.get(output_format, "image/png") if isinstance(output_format, str) \
        else "image/png"
    revised = item.get("revised_prompt")
    return GeneratedImage(data, mime, revised if isinstance(revised, str) else None)


def _usage(usage: object, images: int) -> Usage:
    if not isinstance(usage, Mapping):
        return Usage(images=images)
    return Usage(prompt_tokens=_count(usage.get("input_tokens")),
                 output_tokens=_count(usage.get("output_tokens")), images=images)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _malformed(message: str) -> UpstreamError:
    return UpstreamError(message, failure_class=FailureClass.UNKNOWN, http_status=502)
