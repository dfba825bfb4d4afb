"""Google's semantic-validation errors: `* GenerateContentRequest.<path>: <text>` lines.

They differ from the JSON-parsing errors of protojson (which name the offending value); several
are joined with newlines into one 400, as Google does.
"""

from __future__ import annotations

from cometgate.errors import InvalidRequest


class Violations:
    def __init__(self, message_name: str = "GenerateContentRequest") -> None:
        self._message_name = message_name
        self._items: list[tuple[str, str]] = []

    def add(self, path: str, text: str) -> None:
        self._items.append((path, f"* {self._message_name}.{path}: {text}"))

    def add_plain(self, path: str, message: str) -> None:
        """A message Google words without the `* Request.path:` prefix."""
        self._items.append((path, message))

    def raise_if_any(self) -> None:
        if not self._items:
            return
        violations: dict[str, str] = {}
        for path, message in self._items:
            violations[path] = f"{violations[path]}\n{message}" if path in violations else message
        raise InvalidRequest(
            "\n".join(message for _, message in self._items), violations=violations
        )
