"""Pairing tool results with the calls they answer, for dialects that need explicit ids.

Gemini callers often omit ids (google-genai's automatic function calling sends
functionResponse without one), while OpenAI and Anthropic require every result to name its
call. Ids missing on calls are synthesised; each result is paired with the call of the same id,
or else with the earliest unanswered call of the same name in the preceding assistant turn, so
parallel calls to the same function never collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cometgate.canonical import ToolCallPart, ToolResultPart
from cometgate.errors import InvalidRequest


@dataclass(slots=True)
class PendingCall:
    """A call of the latest assistant turn, waiting for its result."""

    id: str
    name: str
    had_id: bool
    answered: bool = False


@dataclass(slots=True)
class CallLedger:
    id_prefix: str  # "call" for OpenAI, "toolu" for Anthropic
    calls: list[PendingCall] = field(default_factory=list)

    def new_turn(self) -> None:
        self.calls = []

    def call(self, part: ToolCallPart, turn: int) -> PendingCall:
        pending = PendingCall(part.call_id or f"{self.id_prefix}_{turn}_{len(self.calls)}",
                              part.name, had_id=part.call_id is not None)
        self.calls.append(pending)
        return pending

    def answer(self, result: ToolResultPart, where: str) -> PendingCall:
        call = self._paired(result)
        if call is None:
            raise InvalidRequest(
                f"{where}: the function response for {result.name!r} answers no function call "
                "of the preceding model turn",
                violations={where: "unpaired function response"},
            )
        call.answered = True
        return call

    def _paired(self, result: ToolResultPart) -> PendingCall | None:
        waiting = [call for call in self.calls if not call.answered]
        if result.call_id is not None:
            for call in waiting:
                if call.id == result.call_id:
                    return call
            # The caller invented an id for a call that came without one: go by the name.
            waiting = [call for call in waiting if not call.had_id]
        return next((call for call in waiting if call.name == result.name), None)
