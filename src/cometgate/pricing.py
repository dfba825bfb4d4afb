"""What a request costs, from the versioned prices in the model configuration.

Invariants:
- Money is `Decimal`, never float; every amount returned is quantized to `COST_QUANTUM`
  (a billionth of a dollar, the scale of `usage_records.cost_usd`).
- Prices are looked up at the time of the request, so the cost of any past request can be
  recomputed from its record after the prices change.
- A model with no price in force at that time (unpriced, or before its first version) costs 0.
- `worst_case` never understates (rounded up); `cost` rounds half to even.
- Beyond tokens, a version may price searches (`per_1k_searches`), the gateway's own work
  (`per_1k_page_fetches`, `per_sandbox_second`, `per_image`) and service tiers (a factor on the
  token prices, not on these units); a request that reports none costs its tokens alone. A
  request an upstream's own batch API ran is of the tier "batch": half price unless priced.
- The default decimal context (28 significant digits) computes every product exactly for any
  plausible count (below 10^12 tokens) times a price of up to 15 significant digits.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from cometgate.canonical import Usage
from cometgate.settings import ModelSettings, PriceVersion

COST_QUANTUM = Decimal("1e-9")
TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)  # prices are USD per million tokens
_ZERO = Decimal(0).quantize(COST_QUANTUM)
_SINCE_FOREVER = datetime.min.replace(tzinfo=UTC)


class PriceBook:
    """Every model's price versions, indexed by model id (the alias callers use)."""

    def __init__(self, models: Sequence[ModelSettings]) -> None:
        self._versions: dict[str, tuple[PriceVersion, ...]] = {}
        self._starts: dict[str, list[datetime]] = {}
        for model in models:
            self._versions[model.info.id] = model.prices
            # An undated version is in force since forever: it sorts before every date.
            self._starts[model.info.id] = [v.effective or _SINCE_FOREVER for v in model.prices]

    def price_at(self, model_id: str, at: datetime) -> PriceVersion | None:
        """The version in force at `at`: the last one whose `effective` is at or before it."""
        _require_aware(at)
        versions = self._versions.get(model_id, ())
        index = bisect_right(self._starts.get(model_id, []), at) - 1
        return versions[index] if index >= 0 else None

    def cost(self, model_id: str, usage: Usage, at: datetime) -> Decimal:
        """Cached prompt tokens at the cached price, the rest of the prompt at the input price,
        visible output at the output price, thoughts at the thinking price — all times the
        factor of the service tier that served it — plus the searches that grounded it."""
        _require_counts(usage.prompt_tokens, usage.output_tokens, usage.thoughts_tokens,
                        usage.cached_tokens, usage.searches, usage.fetched_pages, usage.images)
        if usage.sandbox_seconds < 0:
            raise ValueError(f"sandbox seconds must not be negative, got {usage.sandbox_seconds}")
        price = self.price_at(model_id, at)
        if price is None:
            return _ZERO
        # An upstream may report more cached tokens than prompt tokens; never bill beyond the
        # prompt, and never a negative uncached part.
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        amount = (
            (usage.prompt_tokens - cached) * price.input
            + cached * cached_input_price(price)
            + usage.output_tokens * price.output
            + usage.thoughts_tokens * thinking_price(price)
        ) * price.tier_factor(usage.service_tier)
        units = Units(usage.searches, usage.fetched_pages, usage.sandbox_seconds, usage.images)
        return _usd(amount + _units_per_million(price, units), ROUND_HALF_EVEN)

    def storage_cost(self, model_id: str, tokens: int, held: timedelta, at: datetime
                     ) -> Decimal:
        """Keeping a cache of `tokens` for `held`, at the storage price in force at `at` (the
        time it is bought: on creation, and on each extension)."""
        _require_counts(tokens)
        price = self.price_at(model_id, at)
        if price is None or price.cache_storage_per_hour is None or held <= timedelta(0):
            return _ZERO
        hours = Decimal(held.total_seconds()) / Decimal(3600)
        return _usd(tokens * price.cache_storage_per_hour * hours, ROUND_HALF_EVEN)

    def worst_case(
        self,
        model_id: str,
        prompt_tokens: int,
        max_output_tokens: int,
        at: datetime,
        *,
        service_tier: str | None = None,
        searches: int = 0,
        units: Units | None = None,
    ) -> Decimal:
        """The most the request could cost: no prompt token cached, every output token (of
        every candidate: `max_output_tokens` counts them all) billed at the dearer of the
        output and thinking prices, at the factor of the tier asked for, plus the searches
        it may run and the most of the gateway's own work (`units`) it may need."""
        units = units or Units()
        units = Units(searches + units.searches, units.fetched_pages, units.sandbox_seconds,
                      units.images)
        _require_counts(prompt_tokens, max_output_tokens, units.searches, units.fetched_pages,
                        units.images)
        price = self.price_at(model_id, at)
        if price is None:
            return _ZERO
        dearest_output = max(price.output, thinking_price(price))
        amount = (prompt_tokens * price.input + max_output_tokens * dearest_output
                  ) * price.tier_factor(service_tier)
        return _usd(amount + _units_per_million(price, units), ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class Units:
    """Billable units beyond tokens: the upstream's searches and the gateway's own work."""

    searches: int = 0
    fetched_pages: int = 0
    sandbox_seconds: float = 0.0
    images: int = 0


def _units_per_million(price: PriceVersion, units: Units) -> Decimal:
    """The units' price in the unit `_usd` divides: USD times a million tokens."""
    amount = Decimal(0)
    if units.searches and price.per_1k_searches is not None:
        amount += units.searches * price.per_1k_searches / 1000
    if units.fetched_pages and price.per_1k_page_fetches is not None:
        amount += units.fetched_pages * price.per_1k_page_fetches / 1000
    if units.sandbox_seconds and price.per_sandbox_second is not None:
        # float → Decimal through its shortest text, so 1.5 s is exactly 1.5
        amount += Decimal(repr(units.sandbox_seconds)) * price.per_sandbox_second
    if units.images and price.per_image is not None:
        amount += units.images * price.per_image
    return amount * TOKENS_PER_PRICE_UNIT


def thinking_price(price: PriceVersion) -> Decimal:
    return price.output if price.thinking is None else price.thinking


def cached_input_price(price: PriceVersion) -> Decimal:
    return price.input if price.cached_input is None else price.cached_input


def _usd(per_million_sum: Decimal, rounding: str) -> Decimal:
    return (per_million_sum / TOKENS_PER_PRICE_UNIT).quantize(COST_QUANTUM, rounding=rounding)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: prices are looked up by an aware time")


def _require_counts(*counts: int) -> None:
    if any(count < 0 for count in counts):
        raise ValueError(f"token counts must not be negative, got {counts}")
