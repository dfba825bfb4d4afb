"""What unfinished batches hold of their keys' budgets, as this process last saw it.

A batch reserves the worst-case cost of its requests when it is created; its requests that
have not started yet hold that reservation here (a running one holds its own lease in the
limiter instead). Admission counts a key's holds against its budgets, so a live call cannot
spend what the key's batches were promised. The batch workers refresh this from the database
every poll (so every replica sees every replica's batches within a poll) and the routes note
a batch created, cancelled or deleted here at once. Reading it costs no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(slots=True)
class BatchHolds:
    _by_batch: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    _by_key: dict[int, Decimal] = field(default_factory=dict)  # sums of _by_batch, per key

    def replace_all(self, held: Mapping[str, tuple[int, Decimal]]) -> None:
        """The holds as the database has them now: batch id → (key id, amount)."""
        by_key: dict[int, Decimal] = {}
        for key_id, amount in held.values():
            by_key[key_id] = by_key.get(key_id, Decimal(0)) + amount
        self._by_batch, self._by_key = dict(held), by_key

    def hold(self, batch_id: str, key_id: int, amount: Decimal) -> None:
        self.release(batch_id)
        self._by_batch[batch_id] = (key_id, amount)
        self._by_key[key_id] = self._by_key.get(key_id, Decimal(0)) + amount

    def release(self, batch_id: str) -> None:
        held = self._by_batch.pop(batch_id, None)
        if held is not None:
            key_id, amount = held
            left = self._by_key.get(key_id, Decimal(0)) - amount
            if left > 0:
                self._by_key[key_id] = left
            else:
                self._by_key.pop(key_id, None)

    def of_key(self, key_id: int, *, besides: str | None = None) -> Decimal:
        """What the key's batches hold, but for batch `besides` (a batch's own request is
        admitted against the rest). Read on every admission: two dictionary lookups."""
        total = self._by_key.get(key_id, Decimal(0))
        own = self._by_batch.get(besides) if besides is not None else None
        if own is not None and own[0] == key_id:
            total -= own[1]
        return total
