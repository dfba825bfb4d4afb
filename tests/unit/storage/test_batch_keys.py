"""The key a batch's workers charge: found while active; once revoked or deleted, nothing — or
Google's PERMISSION_DENIED with the same words on every batch path."""

from __future__ import annotations

import pytest

from cometgate.api.batch_keys import KEY_GONE, batch_key, batch_key_or_none
from cometgate.errors import PermissionDenied
from cometgate.storage.database import Database
from cometgate.storage.keys import KeyRepository


async def test_an_active_key_is_found_and_a_gone_one_is_refused(database: Database) -> None:
    keys = KeyRepository(database)
    active, _ = await keys.create("runs")
    revoked, _ = await keys.create("revoked")
    await keys.revoke(str(revoked.id))
    deleted, _ = await keys.create("deleted")
    await keys.delete(str(deleted.id))

    assert (await batch_key(keys, active.id)).id == active.id
    for gone in (revoked.id, deleted.id):
        assert await batch_key_or_none(keys, gone) is None
        with pytest.raises(PermissionDenied) as refused:
            await batch_key(keys, gone)
        assert refused.value.message == KEY_GONE
