"""The one rule for whether a key may make a call: authentication, admission, token counts,
stored responses and the models listing all ask here, so no path is laxer than another.

    check_key     the key can be used at all: not revoked (the invalid-key refusal, as for an
                  unknown key), not expired (Google's "API key expired")
    check_origin  check_key, then the client address against `allowed_ips` (an address the
                  gateway cannot tell is outside every range): the rules that hold whatever
                  the key is used for, also for calls that name no model (the Files API)
    check_access  check_origin, then the model against `allowed_models` (names or glob
                  patterns; the same test the models listing uses, so a key never sees a
                  model it may not call)

The billable-field rules (translation policy, `allowed_passthrough`) are billable_policy's.
"""

from __future__ import annotations

from datetime import datetime

from cometgate.errors import ApiKeyExpired, ApiKeyInvalid, PermissionDenied
from cometgate.storage.keys import KeyRecord


def check_key(key: KeyRecord, now: datetime) -> None:
    if key.revoked:
        raise ApiKeyInvalid()
    if key.expired(now):
        raise ApiKeyExpired()


def check_origin(key: KeyRecord, client_ip: str | None, now: datetime) -> None:
    check_key(key, now)
    if not key.allows_address(client_ip):
        raise PermissionDenied(
            f"Requests from IP address {client_ip or 'unknown'} are not allowed for this API key."
        )


def check_access(key: KeyRecord, model: str, client_ip: str | None, now: datetime) -> None:
    check_origin(key, client_ip, now)
    if not key.allows_model(model):
        raise PermissionDenied(f"This API key is not allowed to use models/{model}.")
