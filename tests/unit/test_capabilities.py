"""check_request and with_model_defaults, branch by branch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    GenerateRequest,
    GenerationParams,
    Message,
    ModelInfo,
    TextPart,
    ThinkingConfig,
    ThinkingStyle,
)
from cometgate.capabilities import (
    check_request,
    efforts_as_offered_levels,
    levels_as_budget,
    with_model_defaults,
)
from cometgate.errors import InvalidRequest

PLAIN = ModelInfo(id="plain", display_name="Plain", description="", version="1",
                  base_model_id="plain", input_token_limit=100, output_token_limit=50)
BUDGET = replace(PLAIN, id="budget", thinking=ThinkingStyle.BUDGET, thinking_budget_min=128,
                 thinking_budget_max=1024, thinking_can_disable=False)
LEVELS = replace(PLAIN, id="levels", thinking=ThinkingStyle.LEVELS,
                 thinking_levels=("LOW", "HIGH"), input_mime_types=("text/plain", "image/png"))
HELLO = (Message("user", (TextPart("hello"),)),)


def request(messages: tuple[Message, ...] = HELLO, **fields: Any) -> GenerateRequest:
    return GenerateRequest(model="m", messages=messages, **fields)


def refusal(req: GenerateRequest, model: ModelInfo) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_request(req, model)
    return caught.value


def test_a_plain_request_passes() -> None:
    check_request(request(), PLAIN)


@pytest.mark.parametrize("thinking", [ThinkingConfig(budget=0), ThinkingConfig(level="LOW"),
                                      ThinkingConfig(include_thoughts=False)])
def test_any_thinking_config_is_refused_without_thinking(thinking: ThinkingConfig) -> None:
    error = refusal(request(thinking=thinking), PLAIN)
    assert error.message == "Thinking is not enabled for models/plain"


def test_level_on_a_budget_model() -> None:
    error = refusal(request(thinking=ThinkingConfig(level="LOW")), BUDGET)
    assert error.message == "Thinking level is not supported for this model."


def test_level_outside_the_models_set() -> None:
    error = refusal(request(thinking=ThinkingConfig(level="MEDIUM")), LEVELS)
    assert error.message == "Thinking level MEDIUM is not supported for this model."


@pytest.mark.parametrize("level", ["LOW", "HIGH"])
def test_offered_levels_pass(level: str) -> None:
    check_request(request(thinking=ThinkingConfig(level=level)), LEVELS)


@pytest.mark.parametrize("budget", [None, -1, 128, 500, 1024])
def test_budgets_in_range_or_dynamic_pass(budget: int | None) -> None:
    check_request(request(thinking=ThinkingConfig(budget=budget)), BUDGET)


def test_budget_zero_when_thinking_cannot_be_disabled() -> None:
    error = refusal(request(thinking=ThinkingConfig(budget=0)), BUDGET)
    assert error.message == "Budget 0 is invalid. This model only works in thinking mode."


def test_budget_zero_when_thinking_can_be_disabled() -> None:
    model = replace(BUDGET, thinking_can_disable=True)
    check_request(request(thinking=ThinkingConfig(budget=0)), model)


@pytest.mark.parametrize("budget", [1, 127, 1025, 10**9, -2])
def test_budgets_out_of_range(budget: int) -> None:
    error = refusal(request(thinking=ThinkingConfig(budget=budget)), BUDGET)
    assert error.message == (
        f"The thinking budget ({budget}) is invalid. Valid budgets for models/budget are "
        "128 to 1024, 0 (off) or -1."
    )


def test_level_models_accept_any_budget_as_legacy() -> None:
    check_request(request(thinking=ThinkingConfig(budget=50_000)), LEVELS)


def test_blob_of_an_unaccepted_type() -> None:
    messages = (HELLO[0], Message("user", (TextPart("see"), BlobPart("image/png", b"\x89PNG"))))
    error = refusal(request(messages=messages), PLAIN)
    assert error.message == (
        "Unsupported MIME type: image/png. models/plain accepts only text/plain input "
        "(contents[1].parts[1].inline_data)."
    )
    assert error.violations == {
        "contents[1].parts[1].inline_data.mime_type": "image/png is not supported by models/plain"
    }


def test_file_reference_without_a_type() -> None:
    messages = (Message("user", (FileRefPart("https://example.com/a"),)),)
    error = refusal(request(messages=messages), LEVELS)
    assert "Unsupported MIME type: unknown." in error.message
    assert "(contents[0].parts[0].file_data)" in error.message


def test_accepted_media_pass() -> None:
    messages = (Message("user", (BlobPart("image/png", b"x"),
                                 FileRefPart("https://example.com/a.png", "image/png"))),)
    check_request(request(messages=messages), LEVELS)


def test_temperature_above_the_models_maximum() -> None:
    model = replace(PLAIN, max_temperature=1.0)
    error = refusal(request(params=GenerationParams(temperature=1.01)), model)
    assert error.message == (
        "* GenerateContentRequest.generation_config.temperature: temperature must be between "
        "0 and 1 for models/plain."
    )
    check_request(request(params=GenerationParams(temperature=1.0)), model)


def test_temperature_unbounded_without_a_maximum() -> None:
    check_request(request(params=GenerationParams(temperature=9.0)), PLAIN)


def test_max_output_tokens_above_the_models_limit() -> None:
    error = refusal(request(params=GenerationParams(max_output_tokens=51)), PLAIN)
    assert "max_output_tokens (51) exceeds the limit of models/plain (50)." in error.message
    check_request(request(params=GenerationParams(max_output_tokens=50)), PLAIN)


def test_defaults_fill_only_what_is_missing() -> None:
    model = replace(PLAIN, temperature=0.3, top_p=0.9, top_k=40)
    filled = with_model_defaults(request(params=GenerationParams(top_p=0.5)), model)
    assert (filled.params.temperature, filled.params.top_p, filled.params.top_k) == (
        0.3, 0.5, 40
    )


def test_explicit_zero_is_not_replaced_by_a_default() -> None:
    model = replace(PLAIN, temperature=0.3)
    params = GenerationParams(temperature=0.0)
    assert with_model_defaults(request(params=params), model).params.temperature == 0.0


def test_no_defaults_returns_the_same_request() -> None:
    original = request()
    assert with_model_defaults(original, PLAIN) is original


def test_a_default_output_limit_applies_only_when_the_caller_sets_none() -> None:
    from dataclasses import replace as _replace

    from cometgate.canonical import GenerateRequest, GenerationParams, Message, TextPart
    from cometgate.capabilities import with_model_defaults

    info = _replace(PLAIN, default_max_output_tokens=64)
    base = GenerateRequest("m", (Message("user", (TextPart("hi"),)),))
    assert with_model_defaults(base, info).params.max_output_tokens == 64
    mine = _replace(base, params=GenerationParams(max_output_tokens=5))
    assert with_model_defaults(mine, info).params.max_output_tokens == 5



def test_a_level_becomes_a_budget_within_the_models_range() -> None:
    model = replace(BUDGET, thinking_budget_min=2048, thinking_budget_max=16384)

    def budget_for(level: str) -> int | None:
        thinking = levels_as_budget(request(thinking=ThinkingConfig(level=level)), model).thinking
        assert thinking is not None and thinking.level is None
        return thinking.budget

    assert [budget_for(level) for level in ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")] == [
        2048, 2048, 8192, 16384, 16384]
    both = request(thinking=ThinkingConfig(level="LOW", budget=4096))
    assert levels_as_budget(both, model) is both  # a budget the caller gave stays
    on_levels = request(thinking=ThinkingConfig(level="LOW"))
    assert levels_as_budget(on_levels, LEVELS) is on_levels  # a levels model keeps the level


@pytest.mark.parametrize(("offered", "expected"), [
    # wanted:       MINIMAL    LOW      MEDIUM    HIGH     XHIGH
    (("LOW", "HIGH"), ["LOW", "LOW", "HIGH", "HIGH", "HIGH"]),
    (("MINIMAL", "LOW", "MEDIUM", "HIGH"), ["MINIMAL", "LOW", "MEDIUM", "HIGH", "HIGH"]),
    (("HIGH",), ["HIGH"] * 5),
    (("LOW", "XHIGH"), ["LOW", "LOW", "LOW", "XHIGH", "XHIGH"]),
])
def test_an_effort_becomes_the_nearest_level_the_model_offers(
    offered: tuple[str, ...], expected: list[str]
) -> None:
    model = replace(LEVELS, thinking_levels=offered)

    def level_for(level: str) -> str | None:
        thinking = efforts_as_offered_levels(
            request(thinking=ThinkingConfig(level=level)), model).thinking
        assert thinking is not None
        return thinking.level

    assert [level_for(level) for level in ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")] == (
        expected)
    on_budget = request(thinking=ThinkingConfig(level="MEDIUM"))
    assert efforts_as_offered_levels(on_budget, BUDGET) is on_budget  # budgets: not here
