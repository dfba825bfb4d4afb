"""Grammars: built for a table of schemas, compiled by llama.cpp, and checked to accept valid JSON
and reject invalid JSON with llama.cpp's own grammar engine (vocabulary-only model load)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest

from cometgate.worker.grammar import (
    MAX_PARALLEL_CALLS,
    FunctionSpec,
    json_object_grammar,
    json_schema_grammar,
    tool_call_grammar,
)
from cometgate.worker.schema_grammar import SchemaNotSupported, gbnf_literal

llama_cpp = pytest.importorskip("llama_cpp")


class GrammarChecker:
    """Feeds text token by token through llama.cpp's grammar sampler."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.vocab = llama._model.vocab

    def compiles(self, grammar: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    def accepts(self, grammar: str, text: str) -> bool:
        """True if the grammar allows exactly `text` followed by end of generation."""
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        assert sampler, "grammar does not compile"
        eos = self.llama.token_eos()
        try:
            for token in [*self.llama.tokenize(text.encode(), add_bos=False), eos]:
                if not self._allowed(sampler, token):
                    return False
                if token != eos:
                    llama_cpp.llama_sampler_accept(sampler, token)
            return True
        finally:
            llama_cpp.llama_sampler_free(sampler)

    @staticmethod
    def _allowed(sampler: Any, token: int) -> bool:
        data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        return bool(data[0].logit != float("-inf"))


@pytest.fixture(scope="module")
def checker() -> Iterator[GrammarChecker]:
    from cometgate.bundled_model import BundledModelMissing, bundled_gguf_path

    try:
        path = bundled_gguf_path()
    except BundledModelMissing:
        pytest.skip("bundled GGUF not installed")
    llama = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    yield GrammarChecker(llama)
    llama.close()


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string"},
    },
    "required": ["name", "age"],
}

# (schema, valid instances, invalid instances): every valid one must be accepted, every invalid
# one rejected, and the table itself is checked against jsonschema so it cannot drift.
SCHEMA_CASES: list[tuple[dict[str, Any], list[str], list[str]]] = [
    (PERSON,
     ['{"name": "Ann", "age": 3}', '{"name":"B","age":0,"email":"b@x"}'],
     ['{"age": 3}', '{"name": "Ann"}', '{"name": "", "age": 1}', '{"name":"A","age":-1}',
      '{"name":"A","age":1,"extra":1}']),
    ({"type": "string", "enum": ["red", "green", "blue"]},
     ['"red"', '"blue"'], ['"pink"', "red", '"re"']),
    ({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}},
                                 "required": ["id"]}, "minItems": 1, "maxItems": 3},
     ['[{"id": 1}]', '[{"id": 1}, {"id": -2},{"id":3}]'],
     ["[]", '[{"id": 1},{"id": 2},{"id": 3},{"id": 4}]', '[{"id": "1"}]']),
    ({"type": "object", "properties": {"outer": {"type": "object", "properties": {
        "inner": {"type": "array", "items": {"type": "number"}}}, "required": ["inner"]}},
      "required": ["outer"]},
     ['{"outer": {"inner": [1.5, -2, 3e2]}}', '{"outer":{"inner":[]}}'],
     ['{"outer": {}}', '{"outer": {"inner": ["x"]}}']),
    ({"type": "object", "properties": {"note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
      "required": ["note"]},
     ['{"note": null}', '{"note": "hi"}'], ['{"note": 1}', "{}"]),
    ({"type": "object", "properties": {"when": {"type": "string", "format": "date"},
                                       "id": {"type": "string", "format": "uuid"}},
      "required": ["when", "id"]},
     ['{"when": "2024-02-29", "id": "123e4567-e89b-12d3-a456-426614174000"}'],
     ['{"when": "yesterday", "id": "123e4567-e89b-12d3-a456-426614174000"}']),
    ({"$defs": {"node": {"type": "object", "properties": {
        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["kids"]}},
      "$ref": "#/$defs/node"},
     ['{"kids": [{"kids": []}]}'], ['{"kids": [{}]}']),
    ({"type": ["integer", "boolean"]}, ["7", "true"], ['"7"', "1.5"]),
    ({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"const": "x"}}, "required": ["b"]}]},
     ['{"a": 1, "b": "x"}'], ['{"a": 1}', '{"a": 1, "b": "y"}']),
    ({"type": "object", "additionalProperties": {"type": "integer"}},
     ['{"k": 1, "j": 2}', "{}"], ['{"k": "v"}']),
    ({"type": "integer", "exclusiveMinimum": 0}, ["1", "42"], ["0", "-3"]),
]


@pytest.mark.parametrize(("schema", "valid", "invalid"), SCHEMA_CASES)
def test_schema_grammar_accepts_exactly_the_valid_instances(
    checker: GrammarChecker, schema: dict[str, Any], valid: list[str], invalid: list[str]
) -> None:
    grammar = json_schema_grammar(schema)
    assert checker.compiles(grammar), grammar
    for text in valid:
        jsonschema.validate(orjson.loads(text), schema)
        assert checker.accepts(grammar, text), text
    for text in invalid:
        assert not checker.accepts(grammar, text), text


def test_json_object_grammar_accepts_objects_only(checker: GrammarChecker) -> None:
    grammar = json_object_grammar()
    assert checker.accepts(grammar, '{"a": [1, {"b": null}], "c": "\\u00e9"}')
    assert checker.accepts(grammar, "{}")
    assert not checker.accepts(grammar, "[1]")
    assert not checker.accepts(grammar, '{"a": 1')


def test_whitespace_is_bounded(checker: GrammarChecker) -> None:
    grammar = json_schema_grammar({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert checker.accepts(grammar, '{ "a": 1}')
    assert not checker.accepts(grammar, '{  "a": 1}')
    assert not checker.accepts(grammar, '{"a":\n\n\n1}')


WEATHER = FunctionSpec("get_weather", {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
})
TIME = FunctionSpec("get_time", {})
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'


def test_forced_tool_call_grammar(checker: GrammarChecker) -> None:
    grammar = tool_call_grammar([WEATHER, TIME], parallel=False, allow_text=False)
    assert checker.compiles(grammar)
    assert checker.accepts(grammar, CALL)
    assert checker.accepts(grammar, '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>')
    assert not checker.accepts(grammar, "Sure, the weather is nice.")
    assert not checker.accepts(grammar, CALL.replace("get_weather", "get_wether"))
    assert not checker.accepts(grammar, CALL.replace('"city"', '"town"'))
    assert not checker.accepts(grammar, CALL + "\n" + CALL)  # not parallel


def test_parallel_tool_calls_are_capped(checker: GrammarChecker) -> None:
    grammar = tool_call_grammar([WEATHER], parallel=True, allow_text=False)
    assert checker.accepts(grammar, "\n".join([CALL] * 2))
    assert checker.accepts(grammar, "\n".join([CALL] * MAX_PARALLEL_CALLS))
    assert not checker.accepts(grammar, "\n".join([CALL] * (MAX_PARALLEL_CALLS + 1)))


def test_auto_tool_grammar_allows_text_not_starting_with_the_tag(checker: GrammarChecker) -> None:
    grammar = tool_call_grammar([WEATHER], parallel=False, allow_text=True)
    assert checker.accepts(grammar, CALL)
    assert checker.accepts(grammar, "It is sunny.")
    assert checker.accepts(grammar, "<b>bold</b> text")
    assert checker.accepts(grammar, "")
    assert not checker.accepts(grammar, "<tool_call>not json</tool_call>")


def test_unsupported_schemas_raise() -> None:
    with pytest.raises(SchemaNotSupported):
        json_schema_grammar({"$ref": "#/$defs/missing"})
    with pytest.raises(SchemaNotSupported):
        json_schema_grammar({"$ref": "https://example.com/schema.json"})
    with pytest.raises(SchemaNotSupported):
        json_schema_grammar({"enum": []})
    with pytest.raises(SchemaNotSupported):
        json_schema_grammar({"type": "decimal"})
    with pytest.raises(ValueError):
        tool_call_grammar([], parallel=False, allow_text=False)


def test_rule_names_do_not_collide_across_tools() -> None:
    same_shape = {"type": "object", "properties": {"q": {"type": "string"}}}
    grammar = tool_call_grammar(
        [FunctionSpec("a", same_shape), FunctionSpec("b", same_shape)],
        parallel=False, allow_text=False,
    )
    names = [line.split(" ::= ")[0] for line in grammar.splitlines()]
    assert len(names) == len(set(names))


def test_gbnf_literal_escapes() -> None:
    assert gbnf_literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'
