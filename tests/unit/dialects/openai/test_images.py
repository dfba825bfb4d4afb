"""OpenAI's Images API wire shapes, both ways."""

from __future__ import annotations

import base64

import orjson
import pytest

from cometgate.canonical import BlobPart, Usage
from cometgate.canonical.images import GeneratedImage, ImageRequest, ImageResponse
from cometgate.dialects.openai import images
from cometgate.errors import InvalidRequest, UpstreamError


def test_a_generation_request_is_read_and_checked() -> None:
    request = images.decode_generation_request(orjson.dumps({
        "model": "pic", "prompt": "a cat", "n": 3, "size": "1536x1024", "quality": "high",
        "response_format": "b64_json", "user": "u1"}))
    assert request == ImageRequest("pic", "a cat", (), 3, "1536x1024", "high", None, "u1")
    with pytest.raises(InvalidRequest) as caught:
        images.decode_generation_request(b'{"model": "pic", "prompt": "x", "n": "2"}')
    assert caught.value.code == "invalid_type" and "n" in caught.value.violations
    with pytest.raises(InvalidRequest, match="could not parse the JSON body"):
        images.decode_generation_request(b"[1]")


def test_an_edit_form_needs_an_image_and_reads_n() -> None:
    picture = BlobPart("image/png", b"\x89PNG")
    request = images.decode_edit_request({"model": "pic", "prompt": "x", "n": "2"}, (picture,))
    assert request.count == 2 and request.images == (picture,)
    with pytest.raises(InvalidRequest, match=r"Missing required parameter: 'image'\."):
        images.decode_edit_request({"model": "pic", "prompt": "x"}, ())


def test_upstream_bodies_ask_for_base64_where_the_model_takes_it() -> None:
    request = ImageRequest("pic", "a dog", count=2, size="1024x1024")
    assert images.upstream_generation_body(request, "dall-e-3") == {
        "model": "dall-e-3", "prompt": "a dog", "n": 2, "response_format": "b64_json",
        "size": "1024x1024"}
    assert "response_format" not in images.upstream_generation_body(request, "gpt-image-1")
    assert images.upstream_edit_fields(request, "dall-e-2")["n"] == "2"
    two = ImageRequest("pic", "x", images=(BlobPart("image/png", b"a"),) * 2)
    assert images.upstream_edit_file_field(two) == "image[]"


def test_an_upstream_answer_is_read_with_its_usage_and_format() -> None:
    answer = {"created": 1700000000, "output_format": "webp", "size": "1024x1024",
              "data": [{"b64_json": base64.b64encode(b"pic").decode(), "revised_prompt": "r"}],
              "usage": {"input_tokens": 9, "output_tokens": 272, "total_tokens": 281}}
    drawn = images.decode_upstream_images(orjson.dumps(answer))
    assert drawn.images == (GeneratedImage(b"pic", "image/webp", "r"),)
    assert drawn.usage == Usage(prompt_tokens=9, output_tokens=272, images=1)
    assert drawn.extra == {"output_format": "webp", "size": "1024x1024"}
    for bad in ({"data": []}, {"data": [{"url": "https://x"}]}, {"data": [{"b64_json": "!"}]}):
        with pytest.raises(UpstreamError):
            images.decode_upstream_images(orjson.dumps(bad))


def test_a_response_is_written_as_openai_writes_it() -> None:
    drawn = ImageResponse((GeneratedImage(b"pic", revised_prompt=None),), 1700000000.5,
                          Usage(prompt_tokens=3, output_tokens=4, images=1))
    assert orjson.loads(images.encode_images_response(drawn)) == {
        "created": 1700000000, "data": [{"b64_json": base64.b64encode(b"pic").decode()}],
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}
