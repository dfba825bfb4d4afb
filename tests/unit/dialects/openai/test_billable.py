"""What a Chat Completions request asks for beyond tokens, and the tier an answer reports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.canonical import Usage
from cometgate.dialects.billable import Billable, BillableField
from cometgate.dialects.billable import BillableKind as Kind
from cometgate.dialects.openai.billable import billable
from cometgate.dialects.openai.passthrough import ForwardedEvents, usage_of_response
from cometgate.dialects.openai.upstream_response import answer_usage
from cometgate.storage.key_policy import BILLABLE_FIELDS

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, Billable()),
        ({"n": 1}, Billable()),
        ({"n": 3}, Billable(candidates=3, fields=(BillableField("n", "n", Kind.CANDIDATES),))),
        ({"n": "3"}, Billable()),  # the decoder's to refuse
        ({"service_tier": "auto"}, Billable(service_tier="auto")),
        ({"service_tier": "default"}, Billable(service_tier="default")),
        ({"service_tier": "priority"}, Billable(service_tier="priority", fields=(
            BillableField("service_tier", "service_tier", Kind.SERVICE_TIER),))),
        ({"service_tier": None}, Billable()),
        ({"web_search_options": {"search_context_size": "low"}}, Billable(fields=(
            BillableField("web_search_options", "web_search_options", Kind.BUILTIN_TOOL),))),
    ],
)
def test_billable_fields_of_a_chat_request(extra: dict[str, Any], expected: Billable) -> None:
    found = billable({"model": "m", "messages": MESSAGES, **extra})
    assert found == expected
    assert all(field.name in BILLABLE_FIELDS for field in found.fields)


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@pytest.mark.parametrize(
    ("tier", "expected"),
    [("priority", "priority"), ("flex", "flex"), ("default", None), ("auto", None), (None, None),
     (7, None)],
)
def test_the_tier_an_answer_reports_rides_with_its_usage(
    tier: object, expected: str | None
) -> None:
    answer = {"id": "x", "choices": [], "usage": USAGE, "service_tier": tier}
    assert answer_usage(answer) == Usage(3, 2, service_tier=expected)
    assert usage_of_response(orjson.dumps(answer)) == Usage(3, 2, service_tier=expected)
    assert answer_usage({"service_tier": "priority"}) is None  # no usage, nothing to price
    (event,) = ForwardedEvents(caller_wants_usage=True).feed(
        b"data: " + orjson.dumps(answer) + b"\n\n")
    assert event.usage == Usage(3, 2, service_tier=expected)
