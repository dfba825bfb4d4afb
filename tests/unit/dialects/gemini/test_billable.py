"""What a Gemini request asks for beyond tokens, read from the caller's document, and the
searches a Gemini answer reports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.fakes.gemini_upstream import search_grounding

from cometgate.dialects.billable import MAX_COUNTED_CANDIDATES, Billable, BillableField
from cometgate.dialects.billable import BillableKind as Kind
from cometgate.dialects.gemini.billable import billable, camel_case
from cometgate.dialects.gemini.estimate import admission, estimate
from cometgate.dialects.gemini.upstream_errors import (
    usage_from_event,
    usage_from_response,
    usage_of,
)
from cometgate.storage.key_policy import BILLABLE_FIELDS

CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"contents": CONTENTS}, Billable()),
        ({"tools": [{"functionDeclarations": [{"name": "f"}]},
                    {"function_declarations": [{"name": "g"}]}]}, Billable()),
        ({"tools": [{"googleSearch": {}}, {"codeExecution": {}, "url_context": {}}]},
         # URL context reserves the most pages it may fetch (20, Google's limit).
         Billable(search=True, page_fetches=20, fields=(
             BillableField("tools[0].googleSearch", "googleSearch", Kind.BUILTIN_TOOL),
             BillableField("tools[1].codeExecution", "codeExecution", Kind.BUILTIN_TOOL),
             BillableField("tools[1].url_context", "urlContext", Kind.BUILTIN_TOOL)))),
        ({"tools": [{"google_search_retrieval": {"dynamicRetrievalConfig": {}}}]},
         Billable(search=True, fields=(BillableField(
             "tools[0].google_search_retrieval", "googleSearchRetrieval",
             Kind.BUILTIN_TOOL),))),
        # A tool member set to null is no tool; a tools value that is no list is the decoder's.
        ({"tools": [{"googleSearch": None}, "junk"]}, Billable()),
        ({"tools": {"googleSearch": {}}}, Billable()),
        ({"cached_content": "cachedContents/x"}, Billable(fields=(
            BillableField("cached_content", "cachedContent", Kind.CACHED_CONTENT),))),
        ({"cachedContent": ""}, Billable()),
        ({"generationConfig": {"candidateCount": 4}}, Billable(candidates=4, fields=(
            BillableField("generationConfig.candidateCount", "candidateCount",
                          Kind.CANDIDATES),))),
        ({"generation_config": {"candidate_count": 2.0}}, Billable(candidates=2, fields=(
            BillableField("generation_config.candidate_count", "candidateCount",
                          Kind.CANDIDATES),))),
        ({"generationConfig": {"candidateCount": 1}}, Billable()),
        # Not counts: left to the decoder's refusal; the reservation counts one.
        ({"generationConfig": {"candidateCount": "3"}}, Billable()),
        ({"generationConfig": {"candidateCount": 2.5}}, Billable()),
        ({"generationConfig": {"candidateCount": -3}}, Billable()),
        ({"generationConfig": {"candidateCount": True}}, Billable()),
        # One image reserved per candidate, whatever the case of the modality.
        ({"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, Billable(images=1)),
        ({"generation_config": {"response_modalities": ["image"], "candidate_count": 3}},
         Billable(candidates=3, images=3, fields=(
             BillableField("generation_config.candidate_count", "candidateCount",
                           Kind.CANDIDATES),))),
        ({"generationConfig": {"responseModalities": ["TEXT"]}}, Billable()),
        ({"generationConfig": {"responseModalities": "IMAGE"}}, Billable()),
    ],
)
def test_billable_fields_of_a_gemini_request(
    document: dict[str, Any], expected: Billable
) -> None:
    assert billable(document) == expected


def test_an_absurd_candidate_count_is_counted_up_to_a_bound() -> None:
    found = billable({"generationConfig": {"candidateCount": 1e30}})
    assert found.candidates == MAX_COUNTED_CANDIDATES


def test_every_builtin_tool_name_is_one_an_operator_can_allow() -> None:
    for tool in ("googleSearch", "google_search_retrieval", "url_context", "code_execution",
                 "googleMaps", "file_search", "computerUse", "enterprise_web_search"):
        assert camel_case(tool) in BILLABLE_FIELDS


def test_admission_reads_the_estimate_and_the_billable_fields_from_one_parse() -> None:
    body = orjson.dumps({"contents": CONTENTS, "tools": [{"googleSearch": {}}],
                         "generationConfig": {"maxOutputTokens": 50, "candidateCount": 2}})
    found_estimate, found = admission(body)
    assert found_estimate == estimate(body) == (found_estimate[0], 50)
    assert (found.candidates, found.search) == (2, True)
    assert admission(b"[not json") == (estimate(b"[not json"), Billable())
    assert admission(b"[1, 2]") == (estimate(b"[1, 2]"), Billable())


def _answer(grounding: dict[str, Any] | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}
    if grounding is not None:
        candidate["groundingMetadata"] = grounding
    return {"candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}


@pytest.mark.parametrize(
    ("grounding", "searches"),
    [
        (None, 0),
        (search_grounding("a", "b"), 1),  # billed per grounded answer, not per query
        ({"searchEntryPoint": {"renderedContent": "<div/>"}}, 1),
        ({"webSearchQueries": []}, 0),
        ({"groundingChunks": [{"retrievedContext": {"uri": "gs://x"}}]}, 0),  # no web search
    ],
)
def test_an_answer_reports_whether_a_search_grounded_it(
    grounding: dict[str, Any] | None, searches: int
) -> None:
    answer = _answer(grounding)
    usage = usage_of(answer)
    assert usage is not None and (usage.prompt_tokens, usage.searches) == (4, searches)
    assert usage_from_response(orjson.dumps(answer)) == usage
    assert usage_from_event(b"data: " + orjson.dumps(answer) + b"\r\n\r\n") == usage
