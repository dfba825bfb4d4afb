"""Gemini's :countTokens as an upstream speaks it, for callers of another dialect."""

from __future__ import annotations

import pytest

from cometgate.canonical import BlobPart, GenerateRequest, Message, TextPart
from cometgate.dialects.gemini.models import encode_count_tokens, prompt_is_text
from cometgate.dialects.gemini.upstream_count import encode_count_request, read_total_tokens
from cometgate.errors import UpstreamError

HELLO = (Message("user", (TextPart("hello"),)),)


@pytest.mark.parametrize(("upstream", "named"), [
    ("gemini-up", "models/gemini-up"), ("models/gemini-up", "models/gemini-up"),
    ("tunedModels/mine", "tunedModels/mine"),
])
def test_the_inner_request_names_its_model(upstream: str, named: str) -> None:
    request = GenerateRequest(model="alias", messages=HELLO, system=(TextPart("be brief"),))
    assert encode_count_request(request, upstream) == {"generateContentRequest": {
        "model": named, "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]}}}


def test_read_total_tokens() -> None:
    assert read_total_tokens(b'{"totalTokens": 31, "cachedContentTokenCount": 0}') == 31
    assert read_total_tokens(b"{}") == 0  # proto3 JSON leaves a zero out


@pytest.mark.parametrize("body", [b'{"totalTokens": "31"}', b'{"totalTokens": -2}',
                                  b"[]", b"<html>"])
def test_an_answer_without_a_count_is_unreadable(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="unreadable upstream response"):
        read_total_tokens(body)


def test_a_count_of_text_alone_gives_its_modality() -> None:
    assert prompt_is_text(GenerateRequest(model="m", messages=HELLO))
    image = Message("user", (TextPart("look"), BlobPart("image/png", b"\x89PNG")))
    assert not prompt_is_text(GenerateRequest(model="m", messages=(image,)))
    assert encode_count_tokens(9, text_only=False) == b'{"totalTokens":9}'
