"""The one account of a stream's usage: each report replaces the last (upstreams report
running totals), a piece without one keeps what came before."""

from __future__ import annotations

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    StreamStarted,
    StreamUsage,
    Usage,
    UsageReported,
)


def test_a_report_replaces_the_last_and_none_keeps_it() -> None:
    usage = StreamUsage()
    assert usage.usage is None
    usage.saw(None)
    assert usage.usage is None
    usage.saw(Usage(prompt_tokens=4, output_tokens=1))
    usage.saw(Usage(prompt_tokens=4, output_tokens=9))
    usage.saw(None)
    assert usage.usage == Usage(prompt_tokens=4, output_tokens=9)


def test_only_usage_events_count() -> None:
    usage = StreamUsage()
    usage.saw_event(StreamStarted("m", "rid", 0.0))
    assert usage.usage is None
    usage.saw_event(UsageReported(Usage(prompt_tokens=2)))
    usage.saw_event(CandidateFinished(FinishReason.STOP))
    assert usage.usage == Usage(prompt_tokens=2)
