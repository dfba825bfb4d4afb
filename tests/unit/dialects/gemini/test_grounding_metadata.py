"""Canonical Grounding → Gemini groundingMetadata: Google's key order, UTF-8 byte offsets into
the candidate's text, each page one chunk, one support per cited span, and a search entry
point whose HTML escapes the queries. Read back by the Gemini upstream decoder, it is the same
grounding (the two conversions are inverses)."""

from __future__ import annotations

from cometgate.canonical import Citation, Grounding, Page
from cometgate.dialects.gemini.caller_grounding import grounding_metadata, rendered_content
from cometgate.dialects.gemini.upstream_grounding import grounding_of

TEXT = "Grüße aus Köln. Der Dom ist hoch."
FIRST, SECOND = "Grüße aus Köln.", "Der Dom ist hoch."
A, B = "https://a.example/", "https://b.example/"


def test_offsets_are_bytes_and_a_zero_start_is_left_out() -> None:
    second = TEXT.index(SECOND)
    grounding = Grounding(("köln",), (
        Citation(0, len(FIRST), A, "A"),
        Citation(second, len(TEXT), B, "B", confidence=0.5),
        Citation(second, len(TEXT), A, "A", confidence=0.25),
    ))
    metadata = grounding_metadata(grounding, TEXT)
    assert list(metadata) == ["searchEntryPoint", "groundingChunks", "groundingSupports",
                              "webSearchQueries"]
    assert metadata["groundingChunks"] == [{"web": {"uri": A, "title": "A"}},
                                           {"web": {"uri": B, "title": "B"}}]
    first_bytes = len(FIRST.encode())
    assert first_bytes == len(FIRST) + 3  # ü, ß, ö take two bytes each
    byte_start = len(TEXT[:second].encode())
    assert metadata["groundingSupports"] == [
        {"segment": {"endIndex": first_bytes, "text": FIRST},
         "groundingChunkIndices": [0], "confidenceScores": [1.0]},
        {"segment": {"startIndex": byte_start, "endIndex": len(TEXT.encode()), "text": SECOND},
         "groundingChunkIndices": [1, 0], "confidenceScores": [0.5, 0.25]},
    ]
    assert metadata["webSearchQueries"] == ["köln"]


def test_pages_given_to_the_model_are_chunks_even_uncited() -> None:
    grounding = Grounding(("q",), (Citation(0, 5, B, "B"),), pages=(Page(A, "A"), Page(B, "B")))
    metadata = grounding_metadata(grounding, TEXT)
    assert [c["web"]["uri"] for c in metadata["groundingChunks"]] == [A, B]
    assert metadata["groundingSupports"][0]["groundingChunkIndices"] == [1]


def test_spans_outside_the_text_are_cut_or_left_out() -> None:
    grounding = Grounding((), (Citation(len(TEXT) - 5, len(TEXT) + 50, A), Citation(90, 99, B)))
    metadata = grounding_metadata(grounding, TEXT)
    assert [s["segment"]["text"] for s in metadata["groundingSupports"]] == ["hoch."]
    assert "searchEntryPoint" not in metadata and "webSearchQueries" not in metadata


def test_the_entry_point_escapes_queries() -> None:
    html = rendered_content(("<script>x</script> & more",))
    assert "<script>x" not in html
    assert ">&lt;script&gt;x&lt;/script&gt; &amp; more</a>" in html
    assert 'href="https://www.google.com/search?q=%3Cscript%3Ex%3C%2Fscript%3E+%26+more"' in html


def test_the_gemini_decoder_reads_back_what_was_written() -> None:
    second = TEXT.index(SECOND)
    grounding = Grounding(("köln", "dom"), (Citation(0, len(FIRST), A, "A"),
                                            Citation(second, len(TEXT), B, "B")))
    assert grounding_of(grounding_metadata(grounding, TEXT), TEXT) == grounding
