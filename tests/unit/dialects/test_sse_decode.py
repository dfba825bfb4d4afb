"""The incremental SSE decoder against the parsing rules of the SSE specification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from cometgate.dialects.sse_decode import SSEDecoder, SSEFrame, decode_sse

Decode = Callable[[bytes], list[SSEFrame]]


def decode_whole(body: bytes) -> list[SSEFrame]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


def decode_bytewise(body: bytes) -> list[SSEFrame]:
    decoder = SSEDecoder()
    frames: list[SSEFrame] = []
    for i in range(len(body)):
        frames.extend(decoder.feed(body[i : i + 1]))
    return frames + decoder.close()


@pytest.mark.parametrize("decode", [decode_whole, decode_bytewise])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_gives_the_same_frames(decode: Decode, newline: bytes) -> None:
    body = newline.join([b"data: one", b"", b"data: two", b"data: lines", b"", b""])
    assert decode(body) == [SSEFrame("one"), SSEFrame("two\nlines")]


@pytest.mark.parametrize("decode", [decode_whole, decode_bytewise])
def test_fields_comments_and_ids(decode: Decode) -> None:
    body = (
        b": keep-alive\n"
        b"event: delta\n"
        b"id: 7\n"
        b"retry: 1500\n"
        b"data:no space\n"
        b"data:  two spaces\n"
        b"unknown: ignored\n"
        b"\n"
        b"data\n"  # a field without a colon has an empty value
        b"\n"
        b"id: bad\x00id\n"  # ignored: contains NUL; the last id persists
        b"data: x\n\n"
    )
    assert decode(body) == [
        SSEFrame("no space\n two spaces", event="delta", id="7", retry=1500),
        SSEFrame("", event="message", id="7"),
        SSEFrame("x", id="7"),
    ]


def test_event_without_data_is_not_dispatched_and_resets_the_type() -> None:
    assert decode_whole(b"event: ping\n\ndata: after\n\n") == [SSEFrame("after")]


def test_retry_must_be_digits() -> None:
    assert decode_whole(b"retry: 1.5\ndata: a\n\n") == [SSEFrame("a", retry=None)]


def test_incomplete_event_at_end_is_discarded() -> None:
    assert decode_whole(b"data: complete\n\ndata: never finished\n") == [SSEFrame("complete")]
    assert decode_whole(b"data: no newline at all") == []


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    frames = decoder.feed(b"data: a\r")
    frames += decoder.feed(b"\n\r")
    frames += decoder.feed(b"\n")
    assert frames == [SSEFrame("a")]


def test_multibyte_character_split_across_chunks() -> None:
    body = "data: größe ✓ 😀\n\n".encode()
    assert decode_bytewise(body) == [SSEFrame("größe ✓ 😀")]


def test_byte_order_mark_is_skipped_only_at_the_start() -> None:
    assert decode_bytewise(b"\xef\xbb\xbfdata: a\n\ndata: \xef\xbb\xbfb\n\n") == [
        SSEFrame("a"),
        SSEFrame("\ufeffb"),
    ]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert decode_whole(b"data: \xff\n\n") == [SSEFrame("\ufffd")]


def test_only_cr_and_lf_end_lines() -> None:
    # Python's splitlines would cut at these; the SSE grammar does not.
    assert decode_whole("data: a\u2028b\x0bc\n\n".encode()) == [SSEFrame("a\u2028b\x0bc")]


async def test_decode_sse_over_async_chunks() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b"data: {\"a\"", b":1}\n", b"\ndata: [DONE]\n\n"):
            yield piece

    frames = [frame async for frame in decode_sse(chunks())]
    assert [frame.data for frame in frames] == ['{"a":1}', "[DONE]"]
