"""The one Retry-After reader every dialect uses: delta-seconds, HTTP-date, retry-after-ms,
and nothing that cannot be a wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from cometgate.dialects.retry_after import (
    MAX_WAIT_SECONDS,
    delay_seconds,
    duration_seconds,
    header_wait,
    retry_after,
    wait_until,
)

NOW = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5), ("007", 7.0),
    ("nan", None), ("NaN", None), ("inf", None), ("-inf", None), ("infinity", None),
    ("-3", None), ("+3", None), ("1e3", None), ("1_000", None), ("", None), ("3s", None),
    ("9" * 400, None),  # finite only: this would read as infinity
    ("86400", 86400.0), ("86400.5", None), ("31536000", None), ("1" + "0" * 30, None),
])
def test_delay_seconds(text: str, seconds: float | None) -> None:
    assert delay_seconds(text) == seconds


def test_http_dates_count_from_now_and_a_past_one_is_no_wait() -> None:
    later = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert retry_after(later, now=NOW) == 90.0
    earlier = format_datetime(datetime.fromtimestamp(NOW, UTC) - timedelta(days=1), usegmt=True)
    assert retry_after(earlier, now=NOW) == 0.0
    # RFC 9110 obsolete forms a recipient must still accept
    assert retry_after("Monday, 07-Dec-26 18:00:30 GMT", now=NOW) == 30.0
    assert retry_after("Mon Dec  7 18:00:45 2026", now=NOW) == 45.0


@pytest.mark.parametrize("text", ["soon", "Mon, 99 Foo 2026 25:61:00 GMT", "nan", "-1", "inf"])
def test_what_is_neither_form_is_no_wait(text: str) -> None:
    assert retry_after(text, now=NOW) is None


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "20"}, 20.0),
    ({"retry-after-ms": "250", "retry-after": "20"}, 0.25),  # the finer one wins
    ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),  # unreadable: the other one
    ({"retry-after-ms": "-5"}, None),
    ({"RETRY-AFTER": "inf"}, None),
    ({"retry-after-ms": "90000"}, 90.0),  # a wait in ms is bounded in seconds, not in ms
    ({"retry-after-ms": "1" + "0" * 12, "retry-after": "3"}, 3.0),
    ({"retry-after": "99999999999"}, None),
    ({}, None),
])
def test_header_wait(headers: dict[str, str], seconds: float | None) -> None:
    assert header_wait(headers, now=NOW) == seconds


def test_an_http_date_further_off_than_any_wait_is_no_wait() -> None:
    at_most = format_datetime(datetime.fromtimestamp(NOW + MAX_WAIT_SECONDS, UTC), usegmt=True)
    assert retry_after(at_most, now=NOW) == MAX_WAIT_SECONDS
    beyond = format_datetime(datetime.fromtimestamp(NOW + MAX_WAIT_SECONDS + 1, UTC),
                             usegmt=True)
    assert retry_after(beyond, now=NOW) is None
    assert retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) is None


@pytest.mark.parametrize(("value", "seconds"), [
    ("43s", 43.0), ("1.5s", 1.5), ("0s", 0.0), ("0.000000001s", 1e-9),
    ("nans", None), ("infs", None), ("-3s", None), ("1e3s", None), ("3", None), ("s", None),
    ("1.5ms", None), ("999999999s", None), (43, None), (None, None), ({"seconds": 4}, None),
])
def test_google_duration(value: object, seconds: float | None) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize(("moment", "seconds"), [
    (NOW + 30, 30.0), (NOW - 30, 0.0), (NOW + MAX_WAIT_SECONDS + 1, None),
    (float("nan"), None), (float("inf"), None),
])
def test_wait_until(moment: float, seconds: float | None) -> None:
    assert wait_until(moment, now=NOW) == seconds
