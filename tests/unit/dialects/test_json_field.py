"""A JSON string field replaced in place: only that value's bytes change, and only the value at
the exact path — never a same-named key deeper down, inside a string, or in a weird key."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.dialects.json_field import JsonPath, replaced_string, with_top_level_string


@pytest.mark.parametrize(("body", "path", "expected"), [
    (b'{"model":"a","x":1}', ("model",), b'{"model":"B","x":1}'),
    # Spacing, order and escapes elsewhere are kept as written.
    (b'{ "x" : 1.50 ,\n  "model" :  "a" }', ("model",), b'{ "x" : 1.50 ,\n  "model" :  "B" }'),
    (b'{"t":"caf\\u00e9","model":"a"}', ("model",), b'{"t":"caf\\u00e9","model":"B"}'),
    # A nested key of the same name is not the top-level one.
    (b'{"input":{"model":"a"},"model":"a"}', ("model",), b'{"input":{"model":"a"},"model":"B"}'),
    (b'{"list":[{"model":"a"}],"model":"a"}', ("model",), b'{"list":[{"model":"a"}],"model":"B"}'),
    # The name inside a string, or at the end of another key, is not the key.
    (b'{"text":"\\"model\\": \\"a\\"","model":"a"}', ("model",),
     b'{"text":"\\"model\\": \\"a\\"","model":"B"}'),
    (b'{"x\\"model":"a","model":"a"}', ("model",), b'{"x\\"model":"a","model":"B"}'),
    # A key spelled with an escape is still that key.
    (b'{"mod\\u0065l":"a"}', ("model",), b'{"mod\\u0065l":"B"}'),
    # A nested path, inside an SSE event's bytes.
    (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"a",'
     b'"content":[]}}\n\n', ("message", "model"),
     b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"B",'
     b'"content":[]}}\n\n'),
    # Last, with a brace in a string after it: found by the scan.
    (b'{"c":[1],"model":"g","id":"a}b"}', ("model",), b'{"c":[1],"model":"B","id":"a}b"}'),
    # Nested path whose objects hold braces in strings before it.
    (b'{"type":"{","message":{"id":"}","model":"a"}}', ("message", "model"),
     b'{"type":"{","message":{"id":"}","model":"B"}}'),
    (b'{"message":{"model":"a"},"other":{"model":"a"}}', ("other", "model"),
     b'{"message":{"model":"a"},"other":{"model":"B"}}'),
    (b'{"candidates":[{"content":{"parts":[{"text":"x"}]}}],"modelVersion":"g"}',
     ("modelVersion",),
     b'{"candidates":[{"content":{"parts":[{"text":"x"}]}}],"modelVersion":"B"}'),
])
def test_replaced_at_the_path(body: bytes, path: tuple[str, ...], expected: bytes) -> None:
    assert replaced_string(body, JsonPath(path), "B") == expected


def test_the_new_value_is_escaped() -> None:
    replaced = replaced_string(b'{"model":"a"}', JsonPath(("model",)), 'say "hi"\n')
    assert replaced == b'{"model":"say \\"hi\\"\\n"}'
    assert orjson.loads(replaced or b"") == {"model": 'say "hi"\n'}


@pytest.mark.parametrize(("body", "path"), [
    (b'{"model":3}', ("model",)),  # not a string
    (b'{"model":null}', ("model",)),
    (b'{"x":{"model":"a"}}', ("model",)),  # only deeper
    (b'{"message":{"other":"a"},"model":"a"}', ("message", "model")),
    (b"data: [DONE]\n\n", ("model",)),
    (b"not json", ("model",)),
    (b"", ("model",)),
    # Last in the document, but not at the top: nested, or the tail of another key.
    (b'{"c":[1],"x":{"model":"a"}}', ("model",)),
    (b'{"c":[1],"x\\"model":"a"}', ("model",)),
    (b'{"c":[1],"x":[{"model":"a"}]}', ("model",)),
])
def test_nothing_to_replace(body: bytes, path: tuple[str, ...]) -> None:
    assert replaced_string(body, JsonPath(path), "B") is None


def test_a_path_names_a_key_and_a_top_level_one_only_one() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        JsonPath(())
    with pytest.raises(ValueError, match="not a top-level key"):
        with_top_level_string(b'{"a":{"b":"c"}}', {"a": {"b": "c"}}, JsonPath(("a", "b")), "d")


def top(body: bytes, value: str = "up") -> bytes:
    return with_top_level_string(body, orjson.loads(body), JsonPath(("model",)), value)


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"model":"alias","messages":[]}', b'{"model":"up","messages":[]}'),
    # After nested containers: checked by a parse, not assumed.
    (b'{"messages":[{"input":{"model":"alias"}}],"model" : "alias"}',
     b'{"messages":[{"input":{"model":"alias"}}],"model" : "up"}'),
    (b'{"x\\"model":"alias","model":"alias"}', b'{"x\\"model":"alias","model":"up"}'),
    # Between nested values, after a nested namesake: the parse tells which one is on top.
    (b'{"messages":[{"input":{"model":"alias"}}],"model":"alias","tools":[{}]}',
     b'{"messages":[{"input":{"model":"alias"}}],"model":"up","tools":[{}]}'),
    (b'{"a":{"b":"}"},\n "model":\t"alias"}', b'{"a":{"b":"}"},\n "model":\t"up"}'),
])
def test_top_level_in_place(body: bytes, expected: bytes) -> None:
    assert top(body) == expected


def test_top_level_unchanged_when_already_that_name() -> None:
    body = b'{ "model" : "up" }'
    assert top(body) is body


def test_top_level_spelled_with_an_escape_is_encoded_again() -> None:
    body = b'{"messages":[],"mod\\u0065l":"alias"}'
    assert orjson.loads(top(body)) == {"messages": [], "model": "up"}


def test_top_level_a_large_request_keeps_its_bytes() -> None:
    tools: list[dict[str, Any]] = [
        {"name": f"t{i}", "input_schema": {"properties": {"model": {"type": "string"}}}}
        for i in range(50)]
    history = [{"role": "assistant", "content": [
        {"type": "tool_use", "id": f"u{i}", "name": "t0", "input": {"model": "alias"}}]}
        for i in range(50)]
    body = orjson.dumps({"max_tokens": 5, "messages": history, "tools": tools,
                         "model": "alias"}, option=orjson.OPT_INDENT_2)
    replaced = top(body)
    assert replaced == body[:body.rindex(b'"alias"')] + b'"up"\n}'
