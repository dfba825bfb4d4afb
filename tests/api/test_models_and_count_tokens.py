"""countTokens, models.list (with pagination) and models.get."""

from __future__ import annotations

import httpx
import pytest

from tests.api.bodies import COUNT, SMOL, error_of, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream

ALL_MODELS = ["smollm2-135m-instruct", "budget-thinker", "level-thinker"]


async def test_count_tokens_with_contents(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(COUNT, json=text_body("count these four words"))
    assert response.status_code == 200
    assert response.json() == {  # the fake upstream counts one token per word
        "totalTokens": 4, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}]}
    (sent,) = upstream.requests
    assert sent == {"model": SMOL,
                    "messages": [{"role": "user", "content": "count these four words"}]}


async def test_count_tokens_with_generate_content_request(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    inner = {"model": f"models/{SMOL}", **text_body("inner words"),
             "systemInstruction": {"parts": [{"text": "be very brief"}]}}
    response = await client.post(COUNT, json={"generateContentRequest": inner})
    assert response.status_code == 200
    assert response.json()["totalTokens"] == 5
    assert upstream.requests[0]["messages"] == [
        {"role": "system", "content": "be very brief"}, {"role": "user", "content": "inner words"}
    ]


@pytest.mark.parametrize(
    "body, words",
    [
        ({**text_body(), "generateContentRequest": text_body()}, "only one of"),
        ({}, "must be specified"),
    ],
)
async def test_count_tokens_needs_exactly_one_form(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, body: dict[str, object],
    words: str,
) -> None:
    response = await client.post(COUNT, json=body)
    assert response.status_code == 400
    error = error_of(response.content)
    assert error["status"] == "INVALID_ARGUMENT" and words in error["message"]
    assert upstream.requests == []


async def test_models_list_shows_every_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1beta/models")
    assert response.status_code == 200
    body = response.json()
    assert [m["name"] for m in body["models"]] == [f"models/{m}" for m in ALL_MODELS]
    assert "nextPageToken" not in body
    smol = body["models"][0]
    assert smol["displayName"] == "SmolLM2 135M Instruct"
    assert smol["inputTokenLimit"] == 8192 and smol["outputTokenLimit"] == 8192
    assert (smol["temperature"], smol["topP"], smol["topK"]) == (0.2, 0.95, 40)
    assert "generateContent" in smol["supportedGenerationMethods"]


async def test_models_list_pages(client: httpx.AsyncClient) -> None:
    names: list[str] = []
    token: str | None = None
    for _ in range(len(ALL_MODELS)):
        params = {"pageSize": "1", **({"pageToken": token} if token else {})}
        page = (await client.get("/v1beta/models", params=params)).json()
        assert len(page["models"]) == 1
        names.append(page["models"][0]["name"])
        token = page.get("nextPageToken")
    assert names == [f"models/{m}" for m in ALL_MODELS]
    assert token is None


@pytest.mark.parametrize("params", [{"pageToken": "not-a-token"}, {"pageSize": "many"},
                                    {"pageSize": "-1"}])
async def test_models_list_refuses_bad_paging(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v1beta/models", params=params)
    assert response.status_code == 400
    assert error_of(response.content)["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("name", [SMOL, f"models/{SMOL}"])
async def test_models_get(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/v1beta/models/{name}")
    assert response.status_code == 200
    assert response.json()["name"] == f"models/{SMOL}"


async def test_models_get_reports_thinking(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1beta/models/budget-thinker")).json()["thinking"] is True
    assert (await client.get(f"/v1beta/models/{SMOL}")).json()["thinking"] is False


async def test_models_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1beta/models/gemini-9-ultra")
    assert response.status_code == 404
    assert error_of(response.content) == {
        "code": 404, "message": "models/gemini-9-ultra is not found.", "status": "NOT_FOUND"
    }


async def test_generate_on_unknown_model_is_404_and_never_reaches_upstream(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post("/v1/models/gemini-9-ultra:generateContent", json=text_body())
    assert response.status_code == 404
    error = error_of(response.content)
    assert error["status"] == "NOT_FOUND"
    assert "models/gemini-9-ultra is not found for API version v1," in error["message"]
    assert upstream.requests == []
