"""What one decode collects besides the canonical fields: violations, untranslated fields and
the raw Gemini JSON of those fields (for a same-dialect upstream).

Paths come in two spellings: violations use Google's snake_case paths, `Untranslated` paths use
the caller-facing camelCase JSON names. A context made for a nested request (countTokens'
`generateContentRequest`) prefixes both.
"""

from __future__ import annotations

from typing import Any

from cometgate.canonical import Untranslated, WebSearchTool
from cometgate.dialects.gemini.violations import Violations


class DecodeContext:
    def __init__(
        self, violations: Violations, snake_prefix: str = "", camel_prefix: str = ""
    ) -> None:
        self.violations = violations
        self._snake_prefix = snake_prefix
        self._camel_prefix = camel_prefix
        self.untranslated: list[Untranslated] = []
        self.raw: dict[str, Any] = {}  # camelCase path → the field's canonical Gemini JSON
        self.builtin_tools: list[Any] = []
        self.web_search: WebSearchTool | None = None  # googleSearch or googleSearchRetrieval
        self.canonical_tools: set[str] = set()  # tools.CANONICAL_TOOLS the request offers
        self.code_execution = False  # a codeExecution tool is offered

    def violation(self, snake_path: str, text: str) -> None:
        self.violations.add(self._snake_prefix + snake_path, text)

    def plain_violation(self, snake_path: str, message: str) -> None:
        self.violations.add_plain(self._snake_prefix + snake_path, message)

    def untranslated_field(
        self, camel_path: str, reason: str, raw: Any, *, droppable: bool
    ) -> None:
        path = self._camel_prefix + camel_path
        self.untranslated.append(Untranslated(path=path, reason=reason, droppable=droppable))
        self.raw[path] = raw

    def kept_field(self, camel_path: str, raw: Any) -> None:
        """A field with a canonical meaning whose Gemini JSON a Gemini upstream still gets as
        the caller wrote it (it also marks where it stood among the caller's tools)."""
        self.raw[self._camel_prefix + camel_path] = raw
