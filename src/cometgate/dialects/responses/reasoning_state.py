"""The upstream's opaque reasoning state in a reasoning item's `encrypted_content`.

Every upstream keeps state a later turn must send back unchanged: Gemini's `thoughtSignature`
(on thoughts, on text, on function calls), Anthropic's signed (or packed, hidden) thinking,
OpenAI's encrypted reasoning. Canonically these are signatures on parts; a Responses caller has
only one place for opaque state, a reasoning item's `encrypted_content`. So a reasoning item
carries, sealed (dialects/sealed_state), the canonical parts it stands for:

    ["r", text, signature]   a reasoning part, exactly (its text may be more than the summary)
    ["t", signature]         an empty text part that only carries a signature
    ["next", signature]      the signature of the part that follows the item (a function call,
                             or the text opening the next message)

Signatures are base64 in the JSON, null when absent. A part with a signature that is not
reasoning gets a reasoning item of its own just before it when no reasoning item precedes it,
so the state comes back in its place. On the way in, the sealed parts replace the item's
summary (they are what the model produced); a token that does not open is a 400.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import Part, ReasoningPart, TextPart
from cometgate.dialects.sealed_state import SealedStateError, StateSeal
from cometgate.errors import InvalidRequest

PURPOSE = "responses.reasoning"
INCLUDE = "reasoning.encrypted_content"

Entry = list[Any]


@dataclass(slots=True)
class StateEntries:
    """The sealed parts of one reasoning item, gathered while its parts arrive."""

    entries: list[Entry] = field(default_factory=list)
    pending: str = ""  # reasoning text not yet closed by a signature (a stream's deltas)

    def reasoning(self, text: str, signature: bytes | None) -> None:
        if signature is None:
            self.pending += text
            return
        self.entries.append(["r", self.pending + text, _b64(signature)])
        self.pending = ""

    def bare_signature(self, signature: bytes) -> None:
        self._close_pending()
        self.entries.append(["t", _b64(signature)])

    def next_signature(self, signature: bytes) -> None:
        self._close_pending()
        self.entries.append(["next", _b64(signature)])

    def sealed(self, seal: StateSeal) -> str:
        self._close_pending()
        return seal.seal(orjson.dumps(self.entries), purpose=PURPOSE)

    def _close_pending(self) -> None:
        if self.pending:
            self.entries.append(["r", self.pending, None])
            self.pending = ""


@dataclass(frozen=True, slots=True)
class OpenedState:
    parts: tuple[Part, ...]
    next_signature: bytes | None  # for the part after the item


def open_state(seal: StateSeal, token: object, where: str) -> OpenedState:
    """The parts sealed in `token`; InvalidRequest naming `where` when it does not open."""
    if not isinstance(token, str):
        raise unverified(where, "expected a string.")
    try:
        entries = orjson.loads(seal.open(token, purpose=PURPOSE))
    except SealedStateError as exc:
        raise unverified(where, f"{exc}.") from None
    return _parts(entries)


def _parts(entries: Sequence[Entry]) -> OpenedState:
    parts: list[Part] = []
    carried: bytes | None = None
    for entry in entries:
        kind = entry[0]
        if kind == "r":
            parts.append(ReasoningPart(entry[1], _bytes(entry[2])))
        elif kind == "t":
            parts.append(TextPart("", _bytes(entry[1])))
        elif kind == "next":
            carried = _bytes(entry[1])
    return OpenedState(tuple(parts), carried)


def shown_item(item: Any, include: Sequence[str]) -> Any:
    """An output item as the caller asked for it: a reasoning item's state only when
    `include` names it (the store keeps it in any case)."""
    if (isinstance(item, dict) and item.get("type") == "reasoning"
            and INCLUDE not in include and item.get("encrypted_content") is not None):
        return {**item, "encrypted_content": None}
    return item


def unverified(where: str, reason: str) -> InvalidRequest:
    message = (f"Invalid '{where}': the encrypted content could not be verified: {reason} "
               "Send it back exactly as this gateway returned it, or leave the item out.")
    return InvalidRequest(message, violations={where: message})


def _b64(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def _bytes(value: object) -> bytes | None:
    return base64.b64decode(value) if isinstance(value, str) else None


def visible(body: Mapping[str, Any], include: Sequence[str]) -> dict[str, Any]:
    """A Response as the caller asked for it: reasoning state only when `include` names it."""
    output = body.get("output")
    if INCLUDE in include or not isinstance(output, list):
        return dict(body)
    return {**body, "output": [shown_item(item, include) for item in output]}
