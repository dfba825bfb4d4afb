"""The key form's text → the admin API's arguments; the Usage and Requests query strings; the
sign-in page's `next`; the circuit state the Models page shows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cometgate.console.key_form import arguments_from_form, form_values
from cometgate.console.models_page import circuit_state
from cometgate.console.requests_page import requests_query
from cometgate.console.signin import safe_next
from cometgate.console.usage_query import BadQuery, usage_query
from cometgate.errors import InvalidRequest
from cometgate.routing.health import Health
from cometgate.settings import RoutingSettings
from cometgate.storage.key_records import KeyRecord


def test_a_create_leaves_out_blank_fields_and_splits_lists() -> None:
    arguments = arguments_from_form({"name": "k", "owner": " ", "rpm": "5",
                                     "allowed_ips": "10.0.0.0/8,\n 192.168.0.0/16 ,",
                                     "expires_at": "2030-01-01T00:00"}, partial=False)
    assert arguments == {"name": "k", "rpm": 5, "allowed_ips": ("10.0.0.0/8", "192.168.0.0/16"),
                         "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
                         "store_conversations": False}


def test_an_edit_sends_every_field_so_blank_clears() -> None:
    arguments = arguments_from_form({"name": "k", "store_conversations": "on"}, partial=True)
    assert arguments["owner"] is None and arguments["allowed_models"] is None
    assert arguments["store_conversations"] is True and arguments["name"] == "k"


@pytest.mark.parametrize("field,text,message", [
    ("rpm", "1.5", "rpm must be a whole number, not '1.5'"),
    ("tpm", "9" * 30, "tpm must be a whole number"),
    ("metadata", "{", "metadata must be a JSON object"),
    ("metadata", "3", "metadata must be a JSON object, not int"),
    ("expires_at", "tomorrow", "expires_at must be a date and time, not 'tomorrow'"),
])
def test_bad_text_is_refused_naming_the_field(field: str, text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        arguments_from_form({"name": "k", field: text}, partial=False)
    assert message in refused.value.message
    assert field in refused.value.violations


def test_the_form_shows_a_record_as_it_would_send_it_back() -> None:
    record = KeyRecord(id=1, name="k", prefix="cg-AAAAAAAA", created_at=datetime.now(UTC),
                       revoked_at=None, allowed_models=("a", "b*"), rpm=3,
                       metadata={"x": 1}, store_conversations=False,
                       expires_at=datetime(2030, 5, 6, 7, 8, tzinfo=UTC))
    values = form_values(record)
    assert values["allowed_models"] == "a\nb*" and values["rpm"] == "3"
    assert values["metadata"] == '{"x":1}' and values["store_conversations"] == ""
    assert values["expires_at"] == "2030-05-06T07:08" and values["owner"] == ""
    again = arguments_from_form(values, partial=True)
    assert again["allowed_models"] == ("a", "b*") and again["rpm"] == 3
    assert again["expires_at"] == record.expires_at and again["metadata"] == {"x": 1}


def test_the_usage_window_is_whole_buckets_ending_after_now() -> None:
    now = datetime(2030, 3, 10, 14, 25, tzinfo=UTC)
    day = usage_query({"period": "7d"})
    assert day.bucket == "day"
    assert day.window(now) == (datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 11, tzinfo=UTC))
    hour = usage_query({"period": "24h"})
    assert hour.bucket == "hour"
    assert hour.window(now) == (datetime(2030, 3, 9, 15, tzinfo=UTC),
                                datetime(2030, 3, 10, 15, tzinfo=UTC))


def test_the_usage_link_keeps_the_view_in_the_url() -> None:
    query = usage_query({"period": "30d", "group_by": "provider", "model": "m x",
                         "key_id": "7"})
    assert query.link() == "period=30d&group_by=provider&metric=cost&key_id=7&model=m+x"
    assert query.link(metric="tokens", model=None).endswith("metric=tokens&key_id=7")


@pytest.mark.parametrize("params", [{"before": "-1"}, {"before": "1" * 40},
                                    {"key_id": "x"}, {"status": "fine"}, {"page": "2"}])
def test_a_bad_requests_query_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(BadQuery):
        requests_query(params)


def test_a_requests_query_reads_filters_and_the_page_boundary() -> None:
    filters, before = requests_query({"key_id": "3", "status": "error", "before": "99",
                                      "model": ""})
    assert filters == {"key_id": 3, "model": None, "provider": None, "status": "error"}
    assert before == 99


@pytest.mark.parametrize("target,expected", [
    (None, "/console/keys"), ("/console/usage?x=1", "/console/usage?x=1"),
    ("//evil/console/", "/console/keys"), ("/console/\n", "/console/keys"),
    ("javascript:alert(1)", "/console/keys"), ("/consoleevil", "/console/keys"),
])
def test_next_is_only_ever_a_console_path(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_circuit_state_follows_the_breaker() -> None:
    now = [0.0]
    health = Health(RoutingSettings(breaker_failures=2, breaker_open_seconds=30),
                    clock=lambda: now[0])
    assert circuit_state(health, "p/m") == "closed"
    health.failed("p/m")
    assert circuit_state(health, "p/m") == "closed"
    health.failed("p/m")
    assert circuit_state(health, "p/m") == "open"
    now[0] = 31.0
    assert circuit_state(health, "p/m") == "half-open"
    health.succeeded("p/m")
    assert circuit_state(health, "p/m") == "closed"
