"""google-genai's `response_modalities=["IMAGE"]` and the openai SDK's `images.generate` /
`images.edit` against a live gateway whose `openai-image` model is drawn by the OpenAI fake's
Images API: real PNG files come back, usage records count the images and their cost, and
refusals reach each SDK as its own error."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.conftest import LiveGateway
from tests.e2e.fake_upstreams_live import FakesGateway, serve_before_fakes, usage_rows
from tests.fakes.png import png, read_png

MODEL = "openai-image"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "image-sdk", images=True)


def gemini(gateway: LiveGateway) -> genai.Client:
    return genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
        base_url=gateway.base_url, api_version="v1beta", timeout=30_000))


def openai_client(gateway: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gateway.key, base_url=f"{gateway.base_url}/v1", max_retries=0)


def _image_rows(gateway: LiveGateway, count: int) -> list[dict[str, str]]:
    """The image model's records, once `count` of them are committed (written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        rows = [row for row in usage_rows(gateway) if row["model"] == MODEL]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.parametrize("modalities", [["IMAGE"], ["TEXT", "IMAGE"]])
def test_google_genai_gets_inline_png(live: FakesGateway, modalities: list[str]) -> None:
    client = gemini(live.gateway)
    before = len(_image_rows(live.gateway, 0))
    answer = client.models.generate_content(
        model=MODEL, contents="a lighthouse at dusk",
        config=types.GenerateContentConfig(response_modalities=modalities))
    parts = answer.candidates[0].content.parts if answer.candidates else None
    assert parts and parts[0].inline_data is not None
    assert parts[0].inline_data.mime_type == "image/png"
    facts = read_png(parts[0].inline_data.data or b"")
    assert (facts.width, facts.height) == (16, 16)
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    rows = _image_rows(live.gateway, before + 1)
    assert rows[-1]["images"] == "1" and Decimal(rows[-1]["cost_usd"]) > Decimal("0.04")


def test_google_genai_streams_the_picture(live: FakesGateway) -> None:
    client = gemini(live.gateway)
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="a fern",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"])))
    pictures = [part.inline_data.data for chunk in chunks for c in chunk.candidates or []
                for part in (c.content.parts if c.content and c.content.parts else [])
                if part.inline_data is not None]
    assert len(pictures) == 1
    read_png(pictures[0] or b"")


def test_google_genai_edit_reaches_the_edits_endpoint(live: FakesGateway) -> None:
    source = png(5, 5, (200, 10, 10))
    client = gemini(live.gateway)
    answer = client.models.generate_content(
        model=MODEL,
        contents=["make it blue", types.Part.from_bytes(data=source, mime_type="image/png")],
        config=types.GenerateContentConfig(response_modalities=["IMAGE"]))
    parts = answer.candidates[0].content.parts if answer.candidates else None
    assert parts and parts[0].inline_data is not None
    read_png(parts[0].inline_data.data or b"")
    call = live.fakes.openai.image_calls[-1]
    assert call.path == "/v1/images/edits"
    assert call.files == [("image", "image/png", source)]


def test_google_genai_text_model_refuses_images(live: FakesGateway) -> None:
    client = gemini(live.gateway)
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(
            model="openai-text", contents="a cat",
            config=types.GenerateContentConfig(response_modalities=["IMAGE"]))
    assert caught.value.code == 400
    assert "Models that have it here: openai-image." in str(caught.value.message)


def test_openai_sdk_generates_and_edits(live: FakesGateway) -> None:
    client = openai_client(live.gateway)
    answer = client.images.generate(model=MODEL, prompt="a red kite", n=2, size="1024x1536")
    assert answer.data is not None and len(answer.data) == 2
    facts = read_png(base64.b64decode(answer.data[0].b64_json or ""))
    assert (facts.width, facts.height) == (16, 24)
    assert answer.usage is not None and answer.usage.output_tokens > 0
    edited = client.images.edit(model=MODEL, prompt="add a moon",
                                image=("in.png", png(3, 3, (1, 1, 1)), "image/png"))
    assert edited.data is not None
    read_png(base64.b64decode(edited.data[0].b64_json or ""))
    assert live.fakes.openai.image_calls[-1].path == "/v1/images/edits"


def test_openai_sdk_refusals(live: FakesGateway) -> None:
    client = openai_client(live.gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=MODEL, prompt="x", n=11)
    assert caught.value.code == "integer_above_max_value"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=MODEL, prompt="x", size="13x13")  # type: ignore[arg-type]
    assert caught.value.param == "size"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="openai-text", prompt="x")
    assert "does not generate images" in caught.value.message
