"""The gateway's own grounding: the query taken from the prompt, the sources given to the
model, and the citations found in its answer (named as [n], or matched by shared words)."""

from __future__ import annotations

from cometgate.canonical import Citation, GenerateRequest, Message, Page, TextPart, WebSearchTool
from cometgate.grounding.emulated_search import (
    MAX_QUERY_CHARS,
    Source,
    answer_grounding,
    numbered,
    prompt_query,
    sentence_spans,
    with_sources,
)
from cometgate.grounding.search_backends import SearchResult

RHINE = SearchResult("https://a.example/rhine", "The Rhine", "The Rhine flows through Cologne "
                     "and Düsseldorf to the North Sea.")
DOM = SearchResult("https://a.example/dom", "Cologne Cathedral", "The cathedral was finished "
                   "in 1880 after six centuries of building.")
SOURCES = (Source(1, RHINE), Source(2, DOM))


def asking(*texts: str) -> GenerateRequest:
    turns = [Message("user" if n % 2 == 0 else "assistant", (TextPart(t),))
             for n, t in enumerate(texts)]
    return GenerateRequest("m", tuple(turns), web_search=WebSearchTool(path="tools[0]"))


def test_the_query_is_the_last_question_on_one_line() -> None:
    assert prompt_query(asking("first", "an answer", "How  long\nis the Rhine? ")) == (
        "How long is the Rhine?")
    assert prompt_query(GenerateRequest("m", ())) is None


def test_a_long_question_is_cut_at_a_word() -> None:
    query = prompt_query(asking("word " * 100))
    assert query is not None and len(query) <= MAX_QUERY_CHARS
    assert query.endswith("word") and query == " ".join(query.split())


def test_the_sources_reach_the_model_numbered_in_a_system_block() -> None:
    request = with_sources(asking("q?"), ["q?"], SOURCES)
    assert request.web_search is None
    (block,) = request.system
    assert isinstance(block, TextPart)
    assert block.text.startswith('Web search results for "q?":\n[1] The Rhine\n'
                                 "URL: https://a.example/rhine\nThe Rhine flows")
    assert "[2] Cologne Cathedral" in block.text and "for example [1]" in block.text


def test_each_page_is_numbered_once() -> None:
    assert numbered([RHINE, DOM, RHINE], 5) == SOURCES
    assert numbered([RHINE, DOM], 1) == (Source(1, RHINE),)


def test_sentences_keep_their_markers_and_lose_surrounding_space() -> None:
    text = "  One [1]. Two?\nThree [2][3]! four"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "One [1].", "Two?", "Three [2][3]!", "four"]


def test_named_sources_are_cited_with_full_confidence() -> None:
    answer = "Köln liegt am Rhein [1]. Der Dom [2][1]. Unbelegt [7]."
    grounding = answer_grounding(answer, ["q"], SOURCES)
    assert grounding.queries == ("q",)
    assert grounding.pages == (Page(RHINE.url, RHINE.title), Page(DOM.url, DOM.title))
    second = answer.index("Der")
    assert grounding.citations == (
        Citation(0, answer.index(" Der"), RHINE.url, RHINE.title),
        Citation(second, second + len("Der Dom [2][1]."), DOM.url, DOM.title),
        Citation(second, second + len("Der Dom [2][1]."), RHINE.url, RHINE.title),
    )


def test_unnamed_sources_are_matched_by_shared_words() -> None:
    answer = ("The Rhine flows through Cologne to the North Sea. "
              "The cathedral was finished in 1880. I like cake.")
    (rhine, dom) = answer_grounding(answer, ["q"], SOURCES).citations
    assert answer[rhine.start:rhine.end] == "The Rhine flows through Cologne to the North Sea."
    assert rhine.url == RHINE.url and rhine.confidence == 1.0
    assert answer[dom.start:dom.end] == "The cathedral was finished in 1880."
    assert dom.url == DOM.url and dom.confidence is not None and 0.35 <= dom.confidence <= 1


def test_a_sentence_sharing_too_little_cites_nothing() -> None:
    assert answer_grounding("The Rhine is long.", ["q"], SOURCES).citations == ()
