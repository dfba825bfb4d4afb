"""Versioned prices: parsing from the config, lookup by time, and the cost arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from cometgate.canonical import ModelInfo, Usage
from cometgate.pricing import PriceBook, Units
from cometgate.settings import (
    CandidateSettings,
    ConfigError,
    ModelSettings,
    PriceVersion,
    load_settings,
)
from cometgate.settings.sections.core import model as parse_model

JAN = datetime(2025, 1, 1, tzinfo=UTC)
JUN = datetime(2025, 6, 1, tzinfo=UTC)


def _model(model_id: str, prices: tuple[PriceVersion, ...]) -> ModelSettings:
    info = ModelInfo(id=model_id, display_name=model_id, description="", version="1",
                     base_model_id=model_id, input_token_limit=1000, output_token_limit=100)
    return ModelSettings(info=info, candidates=(CandidateSettings("local", model_id),),
                         prices=prices)


def _parsed(prices_yaml: str) -> tuple[PriceVersion, ...]:
    data: dict[str, Any] = {"provider": "local", "input_token_limit": 10, "output_token_limit": 10,
                            "prices": yaml.safe_load(prices_yaml)}
    return parse_model("m", data).prices


def _d(text: str) -> Decimal:
    return Decimal(text)


# Prices (USD per million): before June input 1, output 4, thinking 8, cached 0.25; from June
# input 2, output 3 (thinking and cached unset: output and input apply).
BOOK = PriceBook([
    _model("flash", (
        PriceVersion(input=_d("1"), output=_d("4"), thinking=_d("8"), cached_input=_d("0.25"),
                     effective=JAN),
        PriceVersion(input=_d("2"), output=_d("3"), effective=JUN),
    )),
    _model("forever", (PriceVersion(input=_d("0.3"), output=_d("2.5")),)),
    _model("free", ()),
])


@pytest.mark.parametrize(
    ("model", "usage", "at", "expected"),
    [
        # 1000 uncached at 1 + 0 + 100 out at 4 + 10 thoughts at 8 = 1000+400+80 per million
        ("flash", Usage(1000, 100, 10, 0), JAN, "0.001480000"),
        # 200 of the 1000 prompt tokens cached: 800*1 + 200*0.25 + 100*4 = 1250
        ("flash", Usage(1000, 100, 0, 200), JAN + timedelta(days=30), "0.001250000"),
        # the instant June starts, the new version applies: 800*2 + 200*2 (cached at input)
        # + 100*3 + 10*3 (thoughts at output) = 2330
        ("flash", Usage(1000, 100, 10, 200), JUN, "0.002330000"),
        ("flash", Usage(1000, 100, 10, 200), JUN - timedelta(microseconds=1), "0.001330000"),
        # before the first version there is no price
        ("flash", Usage(1000, 100, 10, 200), JAN - timedelta(seconds=1), "0"),
        # an undated version holds since forever
        ("forever", Usage(1_000_000, 1_000_000), datetime(1990, 1, 1, tzinfo=UTC), "2.8"),
        ("free", Usage(5000, 5000), JUN, "0"),
        ("unknown-model", Usage(5000, 5000), JUN, "0"),
        # a billionth-of-a-dollar resolution: 3 tokens at 0.3 = 0.0000009
        ("forever", Usage(3, 0), JUN, "0.000000900"),
        ("flash", Usage(0, 0, 0, 0), JUN, "0"),
        # more cached than prompt tokens (a misreporting upstream): billed as all cached
        ("flash", Usage(100, 0, 0, 500), JAN, "0.000025000"),
    ],
)
def test_cost(model: str, usage: Usage, at: datetime, expected: str) -> None:
    cost = BOOK.cost(model, usage, at)
    assert cost == Decimal(expected)
    assert cost.as_tuple().exponent == -9


def test_cost_rounds_half_to_even_at_the_billionth() -> None:
    book = PriceBook([_model("m", (PriceVersion(input=_d("0.0005"), output=_d("0.0015")),))])
    assert book.cost("m", Usage(1, 0), JAN) == Decimal("0")  # 0.5e-9 -> even (0)
    assert book.cost("m", Usage(0, 1), JAN) == Decimal("0.000000002")  # 1.5e-9 -> 2e-9


def test_cost_uses_the_price_in_force_in_any_time_zone() -> None:
    # 01:00 on June 1st in UTC+02:00 is still May 31st in UTC: the old version applies
    at = datetime(2025, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert BOOK.price_at("flash", at) == BOOK.price_at("flash", JUN - timedelta(hours=1))
    assert BOOK.price_at("flash", at) != BOOK.price_at("flash", JUN)


@pytest.mark.parametrize(
    ("model", "prompt", "max_output", "at", "expected"),
    [
        # all output at the dearer of output (4) and thinking (8): 1000*1 + 100*8
        ("flash", 1000, 100, JAN, "0.001800000"),
        # June: thinking unset, so output (3) is the dearest: 1000*2 + 100*3
        ("flash", 1000, 100, JUN, "0.002300000"),
        ("forever", 0, 1_000_000, JAN, "2.5"),
        ("free", 10**9, 10**9, JAN, "0"),
    ],
)
def test_worst_case(model: str, prompt: int, max_output: int, at: datetime,
                    expected: str) -> None:
    assert BOOK.worst_case(model, prompt, max_output, at) == Decimal(expected)


def test_worst_case_rounds_up_and_bounds_every_real_cost() -> None:
    book = PriceBook([_model("m", (PriceVersion(input=_d("0.0001"), output=_d("0.0001")),))])
    assert book.worst_case("m", 1, 0, JAN) == Decimal("0.000000001")  # 1e-10 rounds up
    for usage in (Usage(1000, 60, 40, 300), Usage(1000, 100, 0, 0), Usage(1000, 0, 100, 0)):
        assert BOOK.cost("flash", usage, JAN) <= BOOK.worst_case("flash", 1000, 100, JAN)


def test_lookups_refuse_naive_times_and_negative_counts() -> None:
    with pytest.raises(ValueError, match="naive"):
        BOOK.price_at("flash", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        BOOK.cost("flash", Usage(-1, 0), JAN)
    with pytest.raises(ValueError, match="negative"):
        BOOK.worst_case("flash", 10, -1, JAN)


def test_a_single_mapping_is_one_version_since_forever() -> None:
    (version,) = _parsed("{input: 0.30, output: 2.50, cached_input: 0.03}")
    assert version == PriceVersion(input=_d("0.30"), output=_d("2.50"), thinking=None,
                                   cached_input=_d("0.03"), effective=None)
    assert version.input == _d("0.3") and str(version.cached_input) == "0.03"


def test_a_list_of_versions_is_sorted_by_effective_date() -> None:
    versions = _parsed("""
- {input: 2, output: 3, effective: "2025-06-01"}
- {input: 1, output: 4}
- {input: 5, output: 6, effective: 2025-09-01T12:00:00+02:00}
- {input: 7, output: 8, effective: 2026-01-01}
""")
    assert [v.effective for v in versions] == [
        None, JUN, datetime(2025, 9, 1, 10, 0, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
    assert [v.input for v in versions] == [_d("1"), _d("2"), _d("5"), _d("7")]
    assert all(v.effective is None or v.effective.tzinfo is UTC for v in versions)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ("[]", "non-empty list"),
        ("12", "mapping or a non-empty list"),
        ("{input: -1, output: 1}", "input must be a non-negative number"),
        ("{input: abc, output: 1}", "input must be a number"),
        ("{input: true, output: 1}", "input must be a number"),
        ("{input: .nan, output: 1}", "input must be a non-negative number"),
        ("{input: 1, output: .inf}", "output must be a non-negative number"),
        ("{input: 1, output: [1]}", "output must be a number"),
        ("{input: 1, ouput: 2}", "unknown keys ouput"),
        ("[{input: 1}, {input: 2}]", "two versions are effective since forever"),
        ("[{input: 1, effective: 2025-01-01}, {input: 2, effective: '2025-01-01T00:00:00Z'}]",
         "two versions are effective since 2025-01-01T00:00:00\\+00:00"),
        ("{input: 1, effective: '2025-13-01'}", "YYYY-MM-DD or an RFC 3339"),
        ("{input: 1, effective: 'yesterday'}", "YYYY-MM-DD or an RFC 3339"),
        ("{input: 1, effective: 2025-01-01T10:00:00}", "needs a time zone"),
        ("{input: 1, effective: '2025-01-01T10:00:00'}", "needs a time zone"),
        ("{input: 1, effective: 20250101}", "YYYY-MM-DD or an RFC 3339"),
        ("{input: 1, per_1k_searches: -35}", "per_1k_searches must be a non-negative number"),
        ("{input: 1, per_1k_searches: many}", "per_1k_searches must be a number"),
        ("{input: 1, service_tiers: [priority]}",
         "service_tiers must be a mapping of tier name to price factor"),
        ("{input: 1, service_tiers: {default: 2}}",
         "'default' is not a tier to price apart \\(default and auto always cost"),
        ("{input: 1, service_tiers: {auto: 1}}", "'auto' is not a tier to price apart"),
        ("{input: 1, service_tiers: {'': 2}}", "'' is not a tier to price apart"),
        ("{input: 1, service_tiers: {priority: 0}}",
         "service_tiers.priority must be a factor above 0 and at most 100"),
        ("{input: 1, service_tiers: {priority: 101}}", "must be a factor above 0 and at most"),
        ("{input: 1, service_tiers: {priority: fast}}", "service_tiers.priority must be a number"),
    ],
)
def test_bad_prices_are_refused_with_their_place(prices: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _parsed(prices)
    assert str(caught.value).startswith("models.m.prices")


def test_prices_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cometgate.yaml"
    config.write_text("""
models:
  m:
    provider: local
    input_token_limit: 100
    output_token_limit: 100
    prices:
      - {input: 0.1, output: 0.4}
      - {input: 0.15, output: 0.6, thinking: 3.5, effective: 2025-06-01}
""", encoding="utf-8")
    settings = load_settings(config, env={"HOME": str(tmp_path)})
    spec = settings.model("m")
    assert spec is not None
    book = PriceBook(settings.models)
    usage = Usage(prompt_tokens=1_000_000, output_tokens=1_000_000, thoughts_tokens=1_000_000)
    assert book.cost("m", usage, JAN) == Decimal("0.9")  # 0.1 + 0.4 + 0.4
    assert book.cost("m", usage, JUN) == Decimal("4.25")  # 0.15 + 0.6 + 3.5


# Searches at 35 USD per 1,000 grounded answers; priority at twice and flex at half the
# token prices of input 1 and output 4 (thinking 8) per million.
EXTRAS = PriceBook([_model("grounded", (PriceVersion(
    input=_d("1"), output=_d("4"), thinking=_d("8"), per_1k_searches=_d("35"),
    service_tiers=(("priority", _d("2")), ("flex", _d("0.5")))),))])


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(1000, 100), "0.001400000"),  # 1000*1 + 100*4 per million
        (Usage(1000, 100, searches=1), "0.036400000"),  # + 35/1000
        (Usage(1000, 100, service_tier="priority"), "0.002800000"),
        (Usage(1000, 100, service_tier="flex", searches=1), "0.035700000"),
        (Usage(1000, 100, service_tier="scale"), "0.001400000"),  # not priced apart: 1
        (Usage(0, 0, searches=2), "0.07"),
    ],
)
def test_searches_and_service_tiers_are_priced_beyond_tokens(
    usage: Usage, expected: str
) -> None:
    assert EXTRAS.cost("grounded", usage, JAN) == Decimal(expected)
    # A model without such prices bills the same usage for its tokens alone.
    assert BOOK.cost("forever", usage, JAN) == BOOK.cost(
        "forever", Usage(usage.prompt_tokens, usage.output_tokens), JAN)


def test_the_worst_case_reserves_the_tier_and_the_search_asked_for() -> None:
    plain = EXTRAS.worst_case("grounded", 1000, 100, JAN)
    assert plain == Decimal("0.0018")  # 1000*1 + 100*8
    assert EXTRAS.worst_case("grounded", 1000, 100, JAN, service_tier="priority") == 2 * plain
    assert EXTRAS.worst_case("grounded", 1000, 100, JAN, searches=1) == plain + _d("0.035")
    grounded_priority = Usage(1000, 50, 50, searches=1, service_tier="priority")
    assert EXTRAS.cost("grounded", grounded_priority, JAN) <= EXTRAS.worst_case(
        "grounded", 1000, 100, JAN, service_tier="priority", searches=1)
    with pytest.raises(ValueError, match="negative"):
        EXTRAS.worst_case("grounded", 1, 1, JAN, searches=-1)


def test_prices_beyond_tokens_from_the_config() -> None:
    (version,) = _parsed("{input: 1, output: 2, per_1k_searches: 35.5, "
                         "service_tiers: {priority: 1.8, flex: 0.5}}")
    assert version.per_1k_searches == _d("35.5")
    assert version.service_tiers == (("priority", _d("1.8")), ("flex", _d("0.5")))
    assert (version.tier_factor("priority"), version.tier_factor(None)) == (_d("1.8"), 1)


# The gateway's own work: 2 USD per 1,000 fetched pages, 0.0001 per sandbox second, 0.04 per
# image; the service tier's factor applies to tokens only.
WORK = PriceBook([_model("worker", (PriceVersion(
    input=_d("1"), output=_d("4"), per_1k_page_fetches=_d("2"), per_sandbox_second=_d("0.0001"),
    per_image=_d("0.04"), service_tiers=(("priority", _d("2")),)),))])


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(0, 0, fetched_pages=3), "0.006"),
        (Usage(0, 0, sandbox_seconds=1.5), "0.00015"),
        (Usage(0, 0, images=2), "0.08"),
        (Usage(1000, 100, images=1, service_tier="priority"), "0.0428"),  # 2*0.0014 + 0.04
    ],
)
def test_the_gateways_own_work_is_priced(usage: Usage, expected: str) -> None:
    assert WORK.cost("worker", usage, JAN) == Decimal(expected)
    # Without those prices the same work costs nothing beyond its tokens.
    assert EXTRAS.cost("grounded", Usage(0, 0, fetched_pages=3, sandbox_seconds=2, images=4),
                       JAN) == 0


def test_the_worst_case_reserves_the_gateways_own_work() -> None:
    plain = WORK.worst_case("worker", 1000, 100, JAN)
    work = Units(fetched_pages=20, sandbox_seconds=30.0, images=4)
    assert WORK.worst_case("worker", 1000, 100, JAN, units=work) == plain + _d("0.203")
    with pytest.raises(ValueError, match="negative"):
        WORK.worst_case("worker", 1, 1, JAN, units=Units(images=-1))
    with pytest.raises(ValueError, match="negative"):
        WORK.cost("worker", Usage(0, 0, sandbox_seconds=-1.0), JAN)


def test_prices_of_the_gateways_work_from_the_config() -> None:
    (version,) = _parsed("{input: 1, output: 2, per_1k_page_fetches: 2, "
                         "per_sandbox_second: 0.0001, per_image: 0.04}")
    assert (version.per_1k_page_fetches, version.per_sandbox_second, version.per_image) == (
        _d("2"), _d("0.0001"), _d("0.04"))


def test_cache_storage_is_priced_by_the_hour_and_parsed_from_the_config() -> None:
    prices = _parsed("{input: 1, output: 1, cache_storage_per_hour: 4.5}")
    assert prices[0].cache_storage_per_hour == Decimal("4.5")
    book = PriceBook([_model("m", prices), _model("free", _parsed("{input: 1, output: 1}"))])
    # 2 million tokens kept 90 minutes at 4.5 USD per million per hour.
    assert book.storage_cost("m", 2_000_000, timedelta(minutes=90), JUN) == _d("13.5")
    assert book.storage_cost("m", 2_000_000, timedelta(0), JUN) == 0
    assert book.storage_cost("m", 2_000_000, timedelta(minutes=-5), JUN) == 0
    assert book.storage_cost("free", 2_000_000, timedelta(hours=1), JUN) == 0
    assert book.storage_cost("unpriced", 10, timedelta(hours=1), JUN) == 0


def test_a_models_cache_minimum_is_parsed() -> None:
    data: dict[str, Any] = {"provider": "local", "input_token_limit": 10,
                            "output_token_limit": 10}
    assert parse_model("m", data).info.cache_min_tokens is None
    assert parse_model("m", {**data, "cache_min_tokens": 1024}).info.cache_min_tokens == 1024
    with pytest.raises(ConfigError):
        parse_model("m", {**data, "cache_min_tokens": -1})
