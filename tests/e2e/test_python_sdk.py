"""google-genai (sync) against the live gateway and the real local model, under both API versions
the SDK uses: v1beta when asked, v1 by default in google-genai 3.x.

The model's wording is never asserted; structure, finish reasons, schema validity and usage
arithmetic are. Outputs compared with each other come from a fixed seed.
"""

from __future__ import annotations

import enum
import importlib.resources
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pydantic
import pytest
import yaml
from google import genai
from google.genai import errors, types

from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = pytest.mark.model

SHORT = 16  # max_output_tokens for anything that only needs some text back


@pytest.fixture(scope="module", params=["v1beta", "v1"])
def client(request: pytest.FixtureRequest, gateway: LiveGateway) -> Iterator[genai.Client]:
    # With api_version unset the SDK's own default (v1 in google-genai 3.x) is exercised.
    version = "v1beta" if request.param == "v1beta" else None
    options = types.HttpOptions(base_url=gateway.base_url, api_version=version)
    with genai.Client(api_key=gateway.key, http_options=options) as sdk:
        yield sdk


def fixed(**settings: Any) -> types.GenerateContentConfig:
    """A reproducible config: temperature 0, a fixed seed, a small output budget."""
    return types.GenerateContentConfig(
        **{"temperature": 0.0, "seed": 7, "max_output_tokens": SHORT, **settings}
    )


def assert_usage_adds_up(usage: types.GenerateContentResponseUsageMetadata | None) -> None:
    assert usage is not None
    assert usage.prompt_token_count and usage.prompt_token_count > 0
    assert usage.candidates_token_count and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count


def test_readme_generate_content(gateway: LiveGateway) -> None:
    client = genai.Client(api_key=gateway.key, http_options={"api_version": "v1beta",
                                                             "base_url": gateway.base_url})
    response = client.models.generate_content(model="smollm2-135m-instruct",
                                              contents="Explain how AI works in a few words")
    assert response.text and response.text.strip()
    assert response.candidates and len(response.candidates) == 1
    assert response.candidates[0].finish_reason in {types.FinishReason.STOP,
                                                   types.FinishReason.MAX_TOKENS}
    assert response.model_version == MODEL
    assert_usage_adds_up(response.usage_metadata)


def test_readme_stream(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model="smollm2-135m-instruct",
                                                        contents="Write a haiku about stars"))
    assert len(chunks) > 1
    assert "".join(chunk.text or "" for chunk in chunks).strip()
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason in {
        types.FinishReason.STOP, types.FinishReason.MAX_TOKENS}
    assert_usage_adds_up(last.usage_metadata)
    for chunk in chunks[:-1]:
        assert chunk.candidates and chunk.candidates[0].finish_reason is None


def test_stream_usage_counts_streamed_tokens(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="Count from one to fifty in words.",
        config=fixed(max_output_tokens=8)))
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert last.usage_metadata and last.usage_metadata.candidates_token_count == 8


def test_count_tokens_equals_generation_prompt_count(client: genai.Client) -> None:
    contents = "Explain how AI works in a few words"
    counted = client.models.count_tokens(model=MODEL, contents=contents)
    generated = client.models.generate_content(model=MODEL, contents=contents,
                                               config=fixed(max_output_tokens=2))
    assert generated.usage_metadata is not None
    assert counted.total_tokens == generated.usage_metadata.prompt_token_count
    assert counted.total_tokens is not None and counted.total_tokens > 0


def embedded_model_defaults() -> dict[str, Any]:
    text = importlib.resources.files("cometgate").joinpath("defaults.yaml").read_text("utf-8")
    models: dict[str, Any] = yaml.safe_load(text)["models"]
    return dict(models[MODEL])


def assert_model_matches_defaults(model: types.Model) -> None:
    expected = embedded_model_defaults()
    assert model.name == f"models/{MODEL}"
    assert model.display_name == expected["display_name"]
    assert model.version == expected["version"]
    assert model.input_token_limit == expected["input_token_limit"]
    assert model.output_token_limit == expected["output_token_limit"]
    assert model.temperature == expected["temperature"]
    assert model.max_temperature == expected["max_temperature"]
    assert model.top_p == expected["top_p"]
    assert model.top_k == expected["top_k"]
    assert model.thinking is False
    assert model.supported_actions and "generateContent" in model.supported_actions
    assert "countTokens" in model.supported_actions


EMBEDDING_MODEL = "all-minilm-l6-v2"


def test_models_list_and_get_report_the_embedded_defaults(client: genai.Client) -> None:
    listed = list(client.models.list())
    assert [m.name for m in listed] == [f"models/{MODEL}", f"models/{EMBEDDING_MODEL}"]
    assert_model_matches_defaults(listed[0])
    embedder = listed[1]
    assert embedder.supported_actions == ["embedContent", "batchEmbedContents"]
    assert embedder.input_token_limit == 256
    assert_model_matches_defaults(client.models.get(model=MODEL))
    assert_model_matches_defaults(client.models.get(model=f"models/{MODEL}"))


def test_chat_sends_the_history(client: genai.Client) -> None:
    chat = client.chats.create(model=MODEL, config=fixed())
    first = chat.send_message("My name is Ada. Say hello.")
    assert first.text
    earlier = list(chat.get_history())  # the SDK appends to the list it returns
    second = chat.send_message("What is my name?")
    assert second.text
    history = chat.get_history()
    assert [c.role for c in history] == ["user", "model", "user", "model"]
    assert history[0].parts and history[0].parts[0].text == "My name is Ada. Say hello."
    # The second prompt is exactly the first turn plus the new message: the gateway received
    # the whole history, counted with the same tokenizer and chat template.
    new_turn = types.Content(role="user", parts=[types.Part(text="What is my name?")])
    counted = client.models.count_tokens(model=MODEL, contents=[*earlier, new_turn])
    assert second.usage_metadata and first.usage_metadata
    assert counted.total_tokens == second.usage_metadata.prompt_token_count


class City(pydantic.BaseModel):
    city: str
    population: int


def test_json_output_with_a_pydantic_schema(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Give a city and its population as JSON.",
        config=fixed(max_output_tokens=48, response_mime_type="application/json",
                     response_schema=City))
    assert isinstance(response.parsed, City)
    assert response.text is not None
    assert City.model_validate_json(response.text) == response.parsed


class Sky(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


def test_enum_output(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="What colour is the sky on a clear day?",
        config=fixed(response_mime_type="text/x.enum", response_schema=Sky))
    assert isinstance(response.parsed, Sky)
    assert response.text in {member.value for member in Sky}


ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "certainty": {"type": "string", "enum": ["low", "medium", "high"]},
        "sources": {"type": "integer"},
    },
    "required": ["answer", "certainty", "sources"],
    "additionalProperties": False,
}


def test_response_json_schema(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Is water wet? Answer as JSON.",
        config=fixed(max_output_tokens=96, response_mime_type="application/json",
                     response_json_schema=ANSWER_SCHEMA))
    assert response.text is not None
    jsonschema.validate(orjson.loads(response.text), ANSWER_SCHEMA)


WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Returns the current weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING),
                    "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"])},
        required=["city", "unit"],
    ),
)
WEATHER_JSON_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}


def calling(mode: str) -> types.GenerateContentConfig:
    return fixed(
        max_output_tokens=40,
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode(mode))),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


@pytest.mark.parametrize("answer_mode", ["AUTO", "NONE"])
def test_function_call_answered_manually(client: genai.Client, answer_mode: str) -> None:
    question = types.Part(text="What is the weather in Paris?")
    contents = [types.Content(role="user", parts=[question])]
    response = client.models.generate_content(model=MODEL, contents=contents,
                                              config=calling("ANY"))
    assert response.function_calls and len(response.function_calls) >= 1
    call = response.function_calls[0]
    assert call.name == "get_weather"
    jsonschema.validate(call.args, WEATHER_JSON_SCHEMA)
    assert response.candidates and response.candidates[0].content
    result = types.Part.from_function_response(name="get_weather",
                                               response={"temperature": 21, "sky": "clear"})
    contents += [response.candidates[0].content, types.Content(role="user", parts=[result])]
    answer = client.models.generate_content(model=MODEL, contents=contents,
                                            config=calling(answer_mode))
    assert answer.function_calls is None
    assert answer.text and answer.text.strip()


def test_automatic_function_calling(client: genai.Client) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> dict[str, object]:
        """Returns the current weather in a city."""
        seen.append(city)
        return {"city": city, "temperature": 21, "sky": "clear"}

    # Mode ANY makes the small model call the function; two remote calls let the SDK run it
    # once and send its result back.
    response = client.models.generate_content(
        model=MODEL, contents="What is the weather in Paris?",
        config=fixed(max_output_tokens=40, tools=[get_weather],
                     tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                         mode=types.FunctionCallingConfigMode.ANY)),
                     automatic_function_calling=types.AutomaticFunctionCallingConfig(
                         maximum_remote_calls=2)))
    history = response.automatic_function_calling_history
    assert history is not None and [c.role for c in history] == ["user", "model", "user"]
    calls = [part.function_call for part in history[1].parts or []]
    answers = [part.function_response for part in history[2].parts or []]
    # The model may call it more than once in one turn; each call ran and was answered.
    assert seen and len(calls) == len(answers) == len(seen)
    for call, answer, city in zip(calls, answers, seen, strict=True):
        assert call and call.name == "get_weather" and call.args == {"city": city}
        assert answer and answer.name == "get_weather"
        assert answer.response == {"result": {"city": city, "temperature": 21, "sky": "clear"}}
    assert response.candidates and response.candidates[0].content


def test_max_output_tokens_ends_with_max_tokens(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Write a long story about a dragon.",
        config=fixed(max_output_tokens=3))
    assert response.candidates and response.candidates[0].finish_reason == \
        types.FinishReason.MAX_TOKENS
    assert response.usage_metadata and response.usage_metadata.candidates_token_count == 3
    assert response.text


def test_stop_sequence_cuts_the_output(client: genai.Client) -> None:
    prompt = "List the planets of the solar system, separated by commas."
    free = client.models.generate_content(model=MODEL, contents=prompt, config=fixed(
        max_output_tokens=24))
    assert free.text
    words = free.text.split()
    assert len(words) >= 3, free.text
    stop = words[2]
    cut = client.models.generate_content(model=MODEL, contents=prompt, config=fixed(
        max_output_tokens=24, stop_sequences=[stop]))
    text = cut.text or ""  # the stop word may be the very first thing the model says
    assert stop not in text
    assert free.text.startswith(text.rstrip())
    assert len(text) < len(free.text)
    assert cut.candidates and cut.candidates[0].finish_reason == types.FinishReason.STOP


def test_same_seed_same_output(client: genai.Client) -> None:
    config = types.GenerateContentConfig(temperature=1.0, seed=1234, max_output_tokens=SHORT)
    prompt = "Invent a name for a new colour."
    first = client.models.generate_content(model=MODEL, contents=prompt, config=config)
    second = client.models.generate_content(model=MODEL, contents=prompt, config=config)
    assert first.text and first.text == second.text


def test_two_candidates(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Say hello.", config=types.GenerateContentConfig(
            candidate_count=2, max_output_tokens=8, temperature=0.8, seed=3))
    assert response.candidates and len(response.candidates) == 2
    assert [c.index for c in response.candidates] == [0, 1]
    for candidate in response.candidates:
        assert candidate.content and candidate.content.parts and candidate.content.parts[0].text
        assert candidate.finish_reason in {types.FinishReason.STOP, types.FinishReason.MAX_TOKENS}


# Errors: the SDK raises ClientError with the status and Google's message.

def client_error(call: Any) -> errors.ClientError:
    with pytest.raises(errors.ClientError) as caught:
        call()
    return caught.value


def test_unknown_model_is_404(client: genai.Client) -> None:
    error = client_error(lambda: client.models.generate_content(
        model="no-such-model", contents="Hi", config=fixed()))
    assert error.code == 404
    assert error.status == "NOT_FOUND"
    assert "models/no-such-model is not found" in (error.message or "")


def test_thinking_config_is_refused(client: genai.Client) -> None:
    error = client_error(lambda: client.models.generate_content(
        model=MODEL, contents="Hi",
        config=fixed(thinking_config=types.ThinkingConfig(thinking_budget=256))))
    assert error.code == 400
    assert error.status == "INVALID_ARGUMENT"
    assert error.message == f"Thinking is not enabled for models/{MODEL}"


def test_image_input_is_refused_naming_the_mime_type(client: genai.Client) -> None:
    image = types.Part.from_bytes(data=b"\x89PNG\r\n\x1a\n", mime_type="image/png")
    error = client_error(lambda: client.models.generate_content(
        model=MODEL, contents=[image, "What is in this picture?"], config=fixed()))
    assert error.code == 400
    assert "image/png" in (error.message or "")


def test_bad_key_is_refused(gateway: LiveGateway) -> None:
    bad = genai.Client(api_key="not-a-real-key", http_options={
        "api_version": "v1beta", "base_url": gateway.base_url})
    error = client_error(lambda: bad.models.generate_content(model=MODEL, contents="Hi"))
    assert error.code == 400
    assert error.status == "INVALID_ARGUMENT"
    assert error.message == "API key not valid. Please pass a valid API key."


def test_google_search_tool_is_refused(client: genai.Client) -> None:
    error = client_error(lambda: client.models.generate_content(
        model=MODEL, contents="Who won yesterday?",
        config=fixed(tools=[types.Tool(google_search=types.GoogleSearch())])))
    assert error.code == 400
    assert error.status == "INVALID_ARGUMENT"
    assert "googleSearch" in (error.message or "")
