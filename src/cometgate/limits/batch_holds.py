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

    def replace_all(self, held: Mapping[str, tuple[int, Decimal]]) -> None:
        """The holds as the database has them now: batch id → (key id, amount)."""
        self._by_batch = dict(held)

    def hold(self, batch_id: str, key_id: int, amount: Decimal) -> None:
        self._by_batch[batch_id] = (key_id, amount)

    def release(self, batch_id: str) -> None:
        self._by_batch.pop(batch_id, None)

    def of_key(self, key_id: int, *, besides: str | None = None) -> Decimal:
        """What the key's batches hold, but for batch `besides` (a batch's own request is
        admitted against the rest)."""
        return sum((amount for batch, (key, amount) in self._by_batch.items()
                    if key == key_id and batch != besides), Decimal(0))
