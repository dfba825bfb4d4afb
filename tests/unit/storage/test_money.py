"""The one way an amount of USD is written, and the usage totals every surface shows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cometgate.console.usage_pages import points_csv
from cometgate.storage.money import money_text
from cometgate.storage.usage import UsageTotals
from cometgate.storage.usage_rollups import UsagePoint


@pytest.mark.parametrize(("amount", "text"), [
    (Decimal("0.250000000"), "0.25"),
    (Decimal("0E-9"), "0"),
    (Decimal("0.000000001"), "0.000000001"),
    (Decimal("1E+1"), "10"),
    (Decimal("100.500000"), "100.5"),
    (Decimal(7), "7"),
    (Decimal("9999999.999999990"), "9999999.99999999"),
    (Decimal("120.000"), "120"),
])
def test_money_text(amount: Decimal, text: str) -> None:
    assert money_text(amount) == text
    assert Decimal(text) == amount  # exact: nothing rounded away


def test_totals_counts_are_the_one_rendering() -> None:
    totals = UsageTotals(requests=2, prompt_tokens=10, output_tokens=5, thoughts_tokens=1,
                         cached_tokens=4, cost_usd=Decimal("0.250000000"), key_id=3)
    assert totals.counts() == {
        "requests": 2, "prompt_tokens": 10, "output_tokens": 5, "thoughts_tokens": 1,
        "cached_tokens": 4, "total_tokens": 16, "cost_usd": "0.25",
    }


def test_the_consoles_csv_writes_money_the_one_way() -> None:
    point = UsagePoint(bucket_start=datetime(2030, 1, 1, tzinfo=UTC), group="k", requests=1,
                       errors=0, prompt_tokens=1, output_tokens=1,
                       cost_usd=Decimal("0.250000000"))
    assert points_csv([point]).splitlines()[1].endswith(",0.25")
