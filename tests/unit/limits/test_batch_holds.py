"""BatchHolds: per-key sums of what batches hold, one batch left out on request."""

from __future__ import annotations

from decimal import Decimal

from cometgate.limits.batch_holds import BatchHolds


def test_a_keys_holds_are_summed_and_replaced_whole() -> None:
    holds = BatchHolds()
    holds.hold("a", 1, Decimal("0.5"))
    holds.hold("b", 1, Decimal("0.25"))
    holds.hold("c", 2, Decimal("9"))
    assert holds.of_key(1) == Decimal("0.75")
    assert holds.of_key(1, besides="a") == Decimal("0.25")
    assert holds.of_key(3) == 0
    holds.release("b")
    assert holds.of_key(1) == Decimal("0.5")
    holds.replace_all({"d": (1, Decimal("2"))})
    assert (holds.of_key(1), holds.of_key(2)) == (Decimal("2"), 0)


def test_holding_a_batch_again_replaces_its_amount() -> None:
    holds = BatchHolds()
    holds.hold("a", 1, Decimal("3"))
    holds.hold("a", 1, Decimal("1"))
    assert holds.of_key(1) == Decimal("1")
    assert holds.of_key(2, besides="a") == 0  # another key's batch is not taken off
    holds.release("a")
    holds.release("a")
    assert holds.of_key(1) == 0
