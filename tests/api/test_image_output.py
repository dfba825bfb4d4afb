"""Image output through an OpenAI-compatible Images API (the fake OpenAI upstream's): Gemini
callers' `responseModalities: ["IMAGE"]` answered with `inlineData` PNG parts, edits when the
prompt carries a picture, OpenAI callers' `/v1/images/generations` and `/v1/images/edits`,
the usage records and their cost, and the refusals of each dialect."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.upstream_fakes import Gateway, running
from tests.fakes import gemini_upstream as gemini
from tests.fakes.openai_images import IMAGE_TOKENS
from tests.fakes.png import png, read_png

GENERATE = "/v1beta/models/openai-image:generateContent"
STREAM = "/v1beta/models/openai-image:streamGenerateContent?alt=sse"


def _body(text: str, modalities: list[str], **config: Any) -> bytes:
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}],
                         "generationConfig": {"responseModalities": modalities, **config}})


async def _gemini(gateway: Gateway, path: str, body: bytes) -> Any:
    return await gateway.http.post(path, content=body, headers={"x-goog-api-key": gateway.key})


async def _openai(gateway: Gateway, path: str, **kwargs: Any) -> Any:
    return await gateway.http.post(path, headers={"authorization": f"Bearer {gateway.key}"},
                                   **kwargs)


def _pictures(answer: dict[str, Any]) -> list[bytes]:
    parts = answer["candidates"][0]["content"]["parts"]
    assert all(set(p) == {"inlineData"} for p in parts), parts
    assert {p["inlineData"]["mimeType"] for p in parts} == {"image/png"}
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts]


@pytest.mark.parametrize("modalities", [["IMAGE"], ["TEXT", "IMAGE"], ["Text", "Image"]])
async def test_gemini_caller_gets_a_png_as_inline_data(
        tmp_path: Path, modalities: list[str]) -> None:
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, GENERATE, _body("a red fox", modalities))
        assert response.status_code == 200, response.text
        answer = response.json()
        (picture,) = _pictures(answer)
        assert read_png(picture).width == 16
        assert answer["candidates"][0]["finishReason"] == "STOP"
        assert answer["usageMetadata"]["candidatesTokenCount"] == IMAGE_TOKENS
        (call,) = gateway.fakes.openai.image_calls
        assert call.path == "/v1/images/generations"
        # gpt-image answers in base64 and takes no response_format.
        assert call.fields == {"model": "gpt-image-up", "prompt": "a red fox", "n": 1}
        (record,) = await gateway.records()
        assert (record.images, record.output_tokens) == (1, IMAGE_TOKENS)
        prompt_tokens = record.prompt_tokens
        expected = (Decimal("0.04") + (prompt_tokens * Decimal(5) + IMAGE_TOKENS * Decimal(40))
                    / 1_000_000)
        assert record.cost_usd == expected.quantize(Decimal("1e-9"))


async def test_candidate_count_asks_for_as_many_pictures(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, GENERATE, _body("two owls", ["IMAGE"],
                                                          candidateCount=2))
        assert response.status_code == 200, response.text
        assert len(_pictures(response.json())) == 2
        assert gateway.fakes.openai.image_calls[0].fields["n"] == 2
        (record,) = await gateway.records()
        assert record.images == 2


async def test_a_stream_carries_the_picture_in_one_chunk(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, STREAM, _body("a blue whale", ["IMAGE"]))
        assert response.status_code == 200, response.text
        events = [orjson.loads(line[6:]) for line in response.text.split("\r\n\r\n")
                  if line.startswith("data: ")]
        with_parts = [e for e in events
                      if e.get("candidates") and "parts" in e["candidates"][0]["content"]]
        assert len(with_parts) == 1
        (picture,) = _pictures(with_parts[0])
        read_png(picture)
        assert events[-1]["candidates"][0]["finishReason"] == "STOP"
        assert events[-1]["usageMetadata"]["candidatesTokenCount"] == IMAGE_TOKENS
        (record,) = await gateway.records()
        assert record.images == 1 and record.stream


async def test_a_picture_in_the_prompt_makes_an_edit(tmp_path: Path) -> None:
    source = png(4, 4, (1, 2, 3))
    body = orjson.dumps({"contents": [{"role": "user", "parts": [
        {"text": "make it green"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(source).decode()}},
    ]}], "generationConfig": {"responseModalities": ["IMAGE"]}})
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, GENERATE, body)
        assert response.status_code == 200, response.text
        read_png(_pictures(response.json())[0])
        (call,) = gateway.fakes.openai.image_calls
        assert call.path == "/v1/images/edits"
        assert call.fields["prompt"] == "make it green" and call.fields["model"] == "gpt-image-up"
        assert call.files == [("image", "image/png", source)]


async def test_image_output_on_a_text_model_is_refused_in_gemini_words(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, "/v1beta/models/anthropic-alias:generateContent",
                                 _body("a cat", ["TEXT", "IMAGE"]))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"].startswith(
            "Model does not support the requested response modalities: image.")
        assert error["message"].endswith(
            "models/anthropic-alias makes no images. Models that have it here: openai-image, "
            "gemini-image.")
        assert gateway.fakes.anthropic.requests == []


async def test_gemini_refusals_before_the_upstream(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        no_text = orjson.dumps({"contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/png",
                            "data": base64.b64encode(png(1, 1, (0, 0, 0))).decode()}}]}],
            "generationConfig": {"responseModalities": ["IMAGE"]}})
        response = await _gemini(gateway, GENERATE, no_text)
        assert response.status_code == 400
        assert "holds no text" in response.json()["error"]["message"]
        response = await _gemini(gateway, GENERATE, _body("x", ["AUDIO"]))
        assert response.status_code == 400
        assert "audio or video" in response.json()["error"]["message"]
        response = await _gemini(gateway, GENERATE, _body("x", ["PICTURE"]))
        assert response.status_code == 400
        assert gateway.fakes.openai.image_calls == []


async def test_openai_caller_generates_and_edits(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _openai(gateway, "/v1/images/generations", json={
            "model": "openai-image", "prompt": "a lighthouse", "n": 2, "size": "1536x1024"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert len(answer["data"]) == 2
        facts = read_png(base64.b64decode(answer["data"][0]["b64_json"]))
        assert (facts.width, facts.height) == (24, 16)
        assert answer["data"][0]["revised_prompt"] == "A picture of a lighthouse"
        assert answer["usage"]["output_tokens"] == 2 * IMAGE_TOKENS
        assert gateway.fakes.openai.image_calls[0].fields["size"] == "1536x1024"
        source = png(2, 2, (9, 9, 9))
        response = await _openai(gateway, "/v1/images/edits",
                                  data={"model": "openai-image", "prompt": "brighter"},
                                  files={"image": ("in.png", source, "image/png")})
        assert response.status_code == 200, response.text
        read_png(base64.b64decode(response.json()["data"][0]["b64_json"]))
        edit = gateway.fakes.openai.image_calls[1]
        assert edit.path == "/v1/images/edits" and edit.files == [("image", "image/png", source)]
        records = sorted(await gateway.records(), key=lambda r: r.created_at)
        assert [(r.dialect, r.images, r.status) for r in records] == [
            ("openai", 2, 200), ("openai", 1, 200)]
        assert records[0].cost_usd > Decimal("0.08")


@pytest.mark.parametrize(("body", "param", "fragment"), [
    ({"model": "openai-image", "prompt": "x", "n": 11}, "n", "Expected a value <= 10"),
    ({"model": "openai-image", "prompt": "x", "n": 0}, "n", "Expected a value >= 1"),
    ({"model": "openai-image", "prompt": "x", "size": "13x13"}, "size",
     "Invalid value: '13x13'. Supported values are:"),
    ({"model": "openai-image", "prompt": "x", "response_format": "url"}, "response_format",
     "'b64_json' only"),
    ({"model": "openai-image"}, "prompt", "Missing required parameter: 'prompt'."),
    ({"model": "openai-alias", "prompt": "x"}, "model", "does not generate images"),
])
async def test_openai_images_refusals(
        tmp_path: Path, body: dict[str, Any], param: str, fragment: str) -> None:
    async with running(tmp_path) as gateway:
        response = await _openai(gateway, "/v1/images/generations", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"
        assert fragment in error["message"]
        assert gateway.fakes.openai.image_calls == []


async def test_openai_images_unknown_model_and_edit_without_image(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _openai(gateway, "/v1/images/generations",
                                 json={"model": "nope", "prompt": "x"})
        assert response.status_code == 404
        assert response.json()["error"]["message"] == (
            "The model `nope` does not exist or you do not have access to it.")
        response = await _openai(gateway, "/v1/images/edits",
                                 data={"model": "openai-image", "prompt": "x"},
                                 files={"mask": ("m.png", b"x", "image/png")})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "image"
        response = await _openai(gateway, "/v1/images/edits",
                                 data={"model": "openai-image", "prompt": "x"},
                                 files={"image": ("a.gif", b"GIF89a", "image/gif")})
        assert response.status_code == 400
        assert "unsupported mimetype ('image/gif')" in response.json()["error"]["message"]


async def test_chat_callers_are_sent_to_the_images_endpoint(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _openai(gateway, "/v1/chat/completions", json={
            "model": "openai-image", "messages": [{"role": "user", "content": "a cat"}]})
        assert response.status_code == 400
        assert "/v1/images/generations" in response.json()["error"]["message"]


async def test_a_gemini_image_model_is_passed_through(tmp_path: Path) -> None:
    picture = base64.b64encode(png(3, 2, (7, 7, 7))).decode()
    google = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Here it is."}, {"inlineData": {"mimeType": "image/png", "data": picture}}]},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1290,
                          "totalTokenCount": 1294}, "modelVersion": "gemini-image-up"}
    body = _body("a small grey square", ["TEXT", "IMAGE"])
    async with running(tmp_path) as gateway:
        gateway.fakes.gemini.replies.append(gemini.Reply(raw_body=orjson.dumps(google)))
        response = await _gemini(gateway, "/v1beta/models/gemini-image:generateContent", body)
        assert response.status_code == 200, response.text
        parts = response.json()["candidates"][0]["content"]["parts"]
        assert parts[0] == {"text": "Here it is."}
        assert read_png(base64.b64decode(parts[1]["inlineData"]["data"])).width == 3
        (seen,) = gateway.fakes.gemini.requests
        assert seen.body == body  # the caller's bytes, modalities and all
        (record,) = await gateway.records()
        assert record.output_tokens == 1290 and gateway.fakes.openai.image_calls == []


async def test_an_aspect_ratio_is_drawn_at_the_matching_size(tmp_path: Path) -> None:
    body = _body("a tall tower", ["IMAGE"], imageConfig={"aspectRatio": "9:16"})
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, GENERATE, body)
        assert response.status_code == 200, response.text
        facts = read_png(_pictures(response.json())[0])
        assert (facts.width, facts.height) == (16, 24)
        assert gateway.fakes.openai.image_calls[0].fields["size"] == "1024x1536"


@pytest.mark.parametrize(("config", "fragment"), [
    ({"imageConfig": {"aspectRatio": "7:5"}},
     "image_config.aspect_ratio: 7:5 is not a supported aspect ratio; use one of 1:1, 3:2"),
    ({"imageConfig": {"imageSize": "4K"}},
     "image_config.image_size: 4K is not supported by models/openai-image"),
    ({"candidateCount": 9}, "candidate_count must be in the range [1, 8]."),
])
async def test_gemini_shape_and_count_refusals(
        tmp_path: Path, config: dict[str, Any], fragment: str) -> None:
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, GENERATE, _body("x", ["IMAGE"], **config))
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]
        assert gateway.fakes.openai.image_calls == []


async def test_image_config_on_a_text_model_is_refused(tmp_path: Path) -> None:
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                         "generationConfig": {"imageConfig": {"aspectRatio": "1:1"}}})
    async with running(tmp_path) as gateway:
        response = await _gemini(gateway, "/v1beta/models/openai-alias:generateContent", body)
        assert response.status_code == 400
        assert "requested response modalities: image" in response.json()["error"]["message"]


async def test_a_budget_reserves_every_picture_asked_for(tmp_path: Path) -> None:
    # The worst case of the tokens is 8,192 output tokens at $40 a million ($0.328); each
    # picture adds $0.04.
    async with running(tmp_path) as gateway:
        async with await open_database(gateway.settings.database_url) as database:
            _, tight = await KeyRepository(database).create(
                "tight", budget_total_usd=Decimal("0.35"))
            _, roomy = await KeyRepository(database).create(
                "roomy", budget_total_usd=Decimal("0.39"))
        for modalities in (["IMAGE"], []):  # an image model draws either way
            response = await gateway.http.post(
                "/v1beta/models/openai-image:generateContent",
                headers={"x-goog-api-key": tight}, content=_body("a kite", modalities))
            assert response.status_code == 429, response.text
            assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        headers = {"authorization": f"Bearer {roomy}"}
        two = {"model": "openai-image", "prompt": "a kite", "n": 2}
        response = await gateway.http.post("/v1/images/generations", json=two,
                                           headers=headers)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["type"] == "insufficient_quota"
        assert gateway.fakes.openai.image_calls == []
        response = await gateway.http.post("/v1/images/generations", json={**two, "n": 1},
                                           headers=headers)
        assert response.status_code == 200, response.text
