from __future__ import annotations

import orjson
import pytest

from cometgate.api.json_depth import MAX_JSON_DEPTH, nesting_exceeds


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("make", [nested, nested_objects])
def test_the_limit_is_exact(make: object) -> None:
    assert callable(make)
    assert not nesting_exceeds(make(MAX_JSON_DEPTH))
    assert nesting_exceeds(make(MAX_JSON_DEPTH + 1))
    assert nesting_exceeds(make(1000))


def test_mixed_containers_count_level_by_level() -> None:
    body = b'{"a":[{"b":[' * 20 + b"1" + b"]}]}" * 20  # 80 levels, alternating kinds
    assert nesting_exceeds(body)
    assert not nesting_exceeds(body, limit=80)


def test_brackets_inside_strings_do_not_nest() -> None:
    body = orjson.dumps({"text": "[" * 5000 + '\\"{' * 100})
    assert not nesting_exceeds(body)


def test_a_wide_shallow_body_is_within_the_limit() -> None:
    body = orjson.dumps({"contents": [{"parts": [{"text": "x"}, [[[1]]]]}] * 20_000})
    assert not nesting_exceeds(body)
    assert not nesting_exceeds(b"[" + b"[]," * 100_000 + b"[]]")


def test_a_deep_branch_among_shallow_ones_is_found() -> None:
    body = b"[" + b"[1]," * 1000 + nested(MAX_JSON_DEPTH) + b"]"
    assert nesting_exceeds(body)
