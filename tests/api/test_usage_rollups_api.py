"""Through the app: every kind of request leaves a record and rollups that agree with it, and
a record names what translation dropped, as the caller's header did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cometgate.storage.usage_rollups import UsageRollups
from tests.api.bodies import GENERATE, STREAM, text_body
from tests.api.conftest import OpenAppWithRecords
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply


async def test_records_and_rollups_agree_for_answers_streams_and_failures(
    open_app: OpenAppWithRecords, api_key: str, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies = [Reply(), Reply(), Reply(status=400, error_type="invalid_request_error"),
                        Reply(fail_mid_stream=True)]
    async with open_app({"x-goog-api-key": api_key}) as opened:
        assert (await opened.http.post(GENERATE, json=text_body())).status_code == 200
        streamed = await opened.http.post(f"{STREAM}?alt=sse", json=text_body())
        assert streamed.status_code == 200
        assert (await opened.http.post(GENERATE, json=text_body())).status_code == 400
        broken = await opened.http.post(f"{STREAM}?alt=sse", json=text_body())
        assert broken.status_code == 200 and '"error"' in broken.text
        records = await opened.records()
        rollups: UsageRollups = opened.app.state.usage_rollups
        now = datetime.now(UTC)
        points = await rollups.series(start=now - timedelta(days=2), end=now + timedelta(days=1),
                                      bucket="day", group_by="model")
        hourly = await rollups.series(start=now - timedelta(days=1), end=now + timedelta(days=1),
                                      bucket="hour", group_by="provider")
        recent = await rollups.recent(limit=10)
    assert len(records) == 4
    assert sum(r.status >= 400 for r in records) == 2
    for series in (points, hourly):
        assert sum(p.requests for p in series) == 4
        assert sum(p.errors for p in series) == 2
        assert sum(p.prompt_tokens for p in series) == sum(r.prompt_tokens for r in records)
        assert sum(p.output_tokens for p in series) == sum(r.output_tokens for r in records)
        assert sum(p.cost_usd for p in series) == sum(r.cost_usd for r in records)
    assert [r.request_id for r in recent] == [r.request_id for r in reversed(records)]


async def test_a_record_names_what_translation_dropped(
    open_app: OpenAppWithRecords, api_key: str
) -> None:
    body = {**text_body(), "labels": {"team": "a"}}
    async with open_app({"x-goog-api-key": api_key}) as opened:
        answered = await opened.http.post(GENERATE, json=body)
        streamed = await opened.http.post(f"{STREAM}?alt=sse", json=body)
        plain = await opened.http.post(GENERATE, json=text_body())
        records = await opened.records()
    assert answered.headers["x-cometgate-dropped"] == "labels"
    assert streamed.headers["x-cometgate-dropped"] == "labels"
    assert "x-cometgate-dropped" not in plain.headers
    assert [r.dropped for r in records] == ["labels", "labels", None]
