"""The four scenarios and, for each, the request every system receives.

`direct` is the request the gateway itself sends upstream (the Gemini body to the mock's Gemini
route, or the equivalent OpenAI chat body to its OpenAI route), so system - direct is the cost
of going through the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from bench.proxy.open_loop import Target
from bench.proxy.services import MOCK_MODEL, MOCK_OPENAI_MODEL

PROMPT = ("You are reviewing a short design note about an API gateway. Summarise, in two "
          "sentences, why forwarding each streamed event as soon as it arrives matters to an "
          "interactive client, and name one way a gateway could get this wrong.")
SYSTEM = "Answer briefly and precisely."

GEMINI_BODY = orjson.dumps({
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "generationConfig": {"temperature": 0.7, "topP": 0.95, "maxOutputTokens": 256},
})


def openai_body(stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": MOCK_OPENAI_MODEL,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "temperature": 0.7, "top_p": 0.95, "max_tokens": 256,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(body)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    stream: bool
    translate: bool

    def method(self) -> str:
        return "streamGenerateContent?alt=sse" if self.stream else "generateContent"

    def direct(self, port: int) -> Target:
        if self.translate:
            return Target("127.0.0.1", port, "/v1/chat/completions", openai_body(self.stream),
                          (("authorization", "Bearer mock-upstream-key"),))
        return Target("127.0.0.1", port, f"/v1beta/models/{MOCK_MODEL}:{self.method()}",
                      GEMINI_BODY, (("x-goog-api-key", "mock-upstream-key"),))

    def cometgate(self, port: int, key: str) -> Target:
        model = "oai" if self.translate else "gem"
        return Target("127.0.0.1", port, f"/v1beta/models/{model}:{self.method()}",
                      GEMINI_BODY, (("x-goog-api-key", key),))

    def floor(self, port: int) -> Target:
        """The floor apps (`floor_app.py`): cometgate's request, Gemini pass-through only; the
        key is not checked but sent, as long as cometgate's (46 characters), so the request
        has the same shape and size."""
        if self.translate:
            raise ValueError(f"the floor apps only pass Gemini through, not {self.name}")
        return Target("127.0.0.1", port, f"/v1beta/models/gem:{self.method()}", GEMINI_BODY,
                      (("x-goog-api-key", "cg-" + "f" * 43),))

    def litellm(self, port: int, key: str) -> Target:
        # Pass-through: its Google AI Studio route; translation: its google-genai route to the
        # `openai/` model. Both take the same Gemini body as cometgate.
        path = (f"/v1beta/models/oai:{self.method()}" if self.translate
                else f"/gemini/v1beta/models/{MOCK_MODEL}:{self.method()}")
        return Target("127.0.0.1", port, path, GEMINI_BODY, (("x-goog-api-key", key),))


SCENARIOS = (
    Scenario("passthrough", "Gemini generateContent, pass-through", stream=False,
             translate=False),
    Scenario("translate", "Gemini → OpenAI generateContent, translated", stream=False,
             translate=True),
    Scenario("stream", "Gemini 20-chunk SSE stream, pass-through", stream=True, translate=False),
    Scenario("stream-translate", "Gemini ← OpenAI 20-chunk stream, translated", stream=True,
             translate=True),
)
