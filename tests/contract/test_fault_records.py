"""The usage record of every fault in the contract table: each scenario that makes the
upstream fail is run against every provider kind, and every request it made must have exactly
one record whose status and failure class name what happened — what error dashboards and the
failure-class metrics are built from.

`status` is what the caller was told: the HTTP status, or for a stream that broke after its
200 went out, the code of the error event that ended it."""

from __future__ import annotations

import pytest

from tests.contract.conftest import KINDS, Fakes, Gateway
from tests.contract.scenarios import SCENARIOS

Expected = tuple[int, str | None]
OK: Expected = (200, None)
TRANSIENT: Expected = (503, "transient")

# Scenario → the (status, failure class) of each request it makes, in order.
FAULT_RECORDS: dict[str, list[Expected]] = {
    "upstream_400": [(400, "caller_fault")],
    "upstream_401_cools_the_credential": [(503, "credential"), TRANSIENT],
    "upstream_429_with_retry_after": [(429, "rate_limited")],
    "upstream_500_retried_then_503": [TRANSIENT],
    "upstream_503_retried_then_503": [TRANSIENT],
    "upstream_500_then_success": [OK],
    "first_byte_timeout": [(504, "transient")],
    "reset_before_first_byte": [TRANSIENT, OK],
    "reset_after_first_byte": [TRANSIENT],
    "in_band_error_mid_stream": [TRANSIENT],
    "in_band_error_mid_stream_openai_caller": [TRANSIENT],
    "malformed_answer_fails_over": [OK],
    "malformed_answer_everywhere_is_a_502": [(502, "transient")],
    "malformed_first_event_fails_over": [OK],
    "malformed_first_event_everywhere_is_a_502": [(502, "transient")],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FAULT_RECORDS))
async def test_each_fault_has_one_record_with_its_status_and_class(
    name: str, kind: str, gateway: Gateway, fakes: Fakes
) -> None:
    await SCENARIOS[name](kind, gateway, fakes)
    seen = [await gateway.status_and_class(response) for response in gateway.responses]
    assert seen == FAULT_RECORDS[name]
