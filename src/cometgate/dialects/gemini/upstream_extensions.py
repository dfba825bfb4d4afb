"""A Gemini caller's fields with no canonical meaning, put back where they came from when its
request reaches a Gemini upstream by translation rather than by pass-through.

The inbound decoder keeps them in `extensions["gemini"]`: "untranslated" maps the caller-facing
camelCase path of each field ("generationConfig.speechConfig",
"contents[2].parts[0].videoMetadata") to its JSON, and "tools" lists the built-in tools, each
its own `Tool` element. The paths index the caller's own request:

- contents[i] is canonical message i: the decoder keeps one message per content.
- contents[i].parts[j] counts every part the caller sent, including the parts with no canonical
  form (executableCode, toolCall, …), whose whole JSON is kept. Inserted at their indices in
  ascending order, those interleave with the canonical parts exactly as the caller sent them.
- tools[i].functionDeclarations[j] names a declaration inside the caller's i-th Tool element,
  while canonical tools are one flat list. A hint there (response, responseJsonSchema,
  behavior) is placed on flat declaration j when every Tool element before i holds a built-in
  tool: the layout the Gemini SDKs send (all declarations in one element, each built-in tool in
  its own). Anywhere else it cannot be placed for sure, and it is reported as dropped rather
  than put on the wrong function.

Whatever has no place is reported ("path: reason"), never dropped in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cometgate.canonical import JSON
from cometgate.dialects.gemini.schema import message_type

_PART_FIELD = re.compile(r"contents\[(\d+)\]\.parts\[(\d+)\]\.(\w+)(?:\.(\w+))?")
_DECLARATION_FIELD = re.compile(r"tools\[(\d+)\]\.functionDeclarations\[(\d+)\]\.(\w+)")
_TOOL_FIELD = re.compile(r"tools\[(\d+)\]\.\w+")
_SECTIONS = ("generationConfig", "toolConfig")
# The members of a Part's `data` oneof: a path that ends in one of them holds the whole part.
_PART_DATA = frozenset(spec.json_name for spec in message_type("Part").oneof_members("data"))
_NO_PART = "the part it belongs to is no longer in the request"
_NO_FIELD = "a generateContent request has no such field"
_NO_FUNCTION = "the function it belongs to cannot be told apart in the flat list of declarations"


@dataclass(frozen=True, slots=True)
class _PartField:
    index: int  # the part's position among the parts the caller sent
    name: str  # a Part member ("videoMetadata", "executableCode", "functionResponse")
    inner: str | None  # a member of that member ("functionResponse.willContinue")
    value: Any
    path: str

    @property
    def is_whole_part(self) -> bool:
        return self.inner is None and self.name in _PART_DATA


@dataclass(frozen=True, slots=True)
class _Hint:
    element: int  # the caller's Tool element
    index: int  # the declaration's position inside that element
    name: str
    value: Any
    path: str


@dataclass(slots=True)
class GeminiExtras:
    """The kept fields sorted by where they go. `sections` holds the members of
    generationConfig and toolConfig; `unplaced` reports the paths that fit nowhere."""

    builtin_tools: list[Any] = field(default_factory=list)
    top_level: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {name: {} for name in _SECTIONS})
    unplaced: list[str] = field(default_factory=list)
    _parts: dict[int, list[_PartField]] = field(default_factory=dict)
    _hints: list[_Hint] = field(default_factory=list)
    _builtin_elements: set[int] = field(default_factory=set)

    def restore_parts(self, message: int, parts: list[dict[str, Any]],
                      dropped: list[str]) -> list[dict[str, Any]]:
        """The parts of message `message` as the caller sent them; mutates and returns
        `parts`, the encoded canonical parts."""
        fields = self._parts.get(message, [])
        for whole in sorted((f for f in fields if f.is_whole_part), key=lambda f: f.index):
            if whole.index > len(parts) or not isinstance(whole.value, dict):
                dropped.append(f"{whole.path}: {_NO_PART}")
            else:
                parts.insert(whole.index, dict(whole.value))
        for member in fields:
            if not member.is_whole_part:
                _set_member(parts, member, dropped)
        return parts

    def orphans(self, messages: int) -> list[str]:
        """Reports for the kept part fields of messages beyond the first `messages`."""
        return [f"{member.path}: {_NO_PART}" for message, members in self._parts.items()
                if message >= messages for member in members]

    def restore_hints(self, declarations: list[dict[str, Any]], dropped: list[str]) -> None:
        """Puts the declaration hints on `declarations`, the flat list of encoded tools."""
        for hint in self._hints:
            before = range(hint.element)
            if hint.index < len(declarations) and all(
                    element in self._builtin_elements for element in before):
                declarations[hint.index][hint.name] = hint.value
            else:
                dropped.append(f"{hint.path}: {_NO_FUNCTION}")

    def _place(self, path: str, value: Any) -> None:
        section, _, name = path.partition(".")
        if part := _PART_FIELD.fullmatch(path):
            member = _PartField(int(part[2]), part[3], part[4], value, path)
            self._parts.setdefault(int(part[1]), []).append(member)
        elif hint := _DECLARATION_FIELD.fullmatch(path):
            self._hints.append(_Hint(int(hint[1]), int(hint[2]), hint[3], value, path))
        elif tool := _TOOL_FIELD.fullmatch(path):
            self._builtin_elements.add(int(tool[1]))  # the tool itself comes with "tools"
        elif section in _SECTIONS and name.isidentifier():
            self.sections[section][name] = value
        elif path.isidentifier():
            self.top_level[path] = value
        else:
            self.unplaced.append(f"{path}: {_NO_FIELD}")


def read_extras(extensions: Mapping[str, Mapping[str, JSON]]) -> GeminiExtras:
    """What a Gemini caller's request kept for a Gemini upstream; empty for other callers."""
    gemini = extensions.get("gemini") or {}
    tools, untranslated = gemini.get("tools"), gemini.get("untranslated")
    extras = GeminiExtras(builtin_tools=list(tools) if isinstance(tools, list) else [])
    if isinstance(untranslated, dict):
        for path, value in untranslated.items():
            extras._place(path, value)
    return extras


def _set_member(parts: list[dict[str, Any]], member: _PartField, dropped: list[str]) -> None:
    target: Any = parts[member.index] if member.index < len(parts) else None
    if member.inner is not None and isinstance(target, dict):
        target = target.get(member.name)
    if not isinstance(target, dict):
        dropped.append(f"{member.path}: {_NO_PART}")
        return
    target[member.inner or member.name] = member.value
