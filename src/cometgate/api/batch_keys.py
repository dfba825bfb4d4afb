"""The key that created a batch, as the batch's workers see it when they run or settle it: the
gateway's own workers and the upstream batch jobs alike."""

from __future__ import annotations

from cometgate.errors import PermissionDenied
from cometgate.storage.key_records import KeyNotFoundError
from cometgate.storage.keys import KeyRecord, KeyRepository

KEY_GONE = "The API key that created this batch is no longer valid."


async def batch_key_or_none(keys: KeyRepository, key_id: int) -> KeyRecord | None:
    """The key while it may still be charged: None once it is deleted or revoked."""
    try:
        key = await keys.find(str(key_id))
    except KeyNotFoundError:
        return None
    return None if key.revoked else key


async def batch_key(keys: KeyRepository, key_id: int) -> KeyRecord:
    """The key, or Google's PERMISSION_DENIED for a batch whose key is gone."""
    key = await batch_key_or_none(keys, key_id)
    if key is None:
        raise PermissionDenied(KEY_GONE)
    return key
