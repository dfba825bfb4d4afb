"""A Gemini upstream's answer on its way back to a Gemini caller: the upstream's bytes, but for
`modelVersion`, which names the model as the caller asked for it — in a whole answer, in each
SSE event and in each element of a JSON-array stream."""

from __future__ import annotations

from cometgate.dialects.gemini.upstream_errors import JsonArrayElements
from cometgate.dialects.json_field import JsonPath, replaced_string

_FIELD = JsonPath(("modelVersion",))


def renamed(data: bytes, model: str) -> bytes:
    """A GenerateContentResponse (or one SSE event holding one) naming `model`; anything
    else (an error, a token count) unchanged."""
    if b'"modelVersion"' not in data:
        return data
    return replaced_string(data, _FIELD, model) or data


class ArrayPieces:
    """A JSON-array stream cut after each complete element, byte-exact but for each element's
    modelVersion: the pieces joined are the upstream's body. The brackets, commas and spacing
    before an element go out with it; whatever follows the last one, at `close`."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._elements = JsonArrayElements()
        self._pending = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """(piece for the caller, the upstream's element it ends with), one per element."""
        self._pending += chunk
        pieces: list[tuple[bytes, bytes]] = []
        for element in self._elements.feed(chunk):
            # Only separators ("[", ",", spacing) come before the element, so its first
            # occurrence is the element itself.
            end = self._pending.index(element) + len(element)
            before = self._pending[:end - len(element)]
            pieces.append((before + renamed(element, self._model), element))
            self._pending = self._pending[end:]
        return pieces

    @property
    def pending(self) -> bytes:
        """What has arrived since the last complete element."""
        return self._pending

    def close(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest
