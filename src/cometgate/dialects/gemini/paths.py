"""Canonical field names as a Gemini caller knows them: for drop reports, and for the
outbound codec that writes a canonical request as a Gemini one."""

from __future__ import annotations

import re

# GenerationParams field → GenerationConfig JSON name.
PARAM_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_output_tokens": "maxOutputTokens",
    "stop_sequences": "stopSequences",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "candidate_count": "candidateCount",
    "response_logprobs": "responseLogprobs",
    "logprobs": "logprobs",
}
# ThinkingConfig field → ThinkingConfig JSON name.
THINKING_FIELDS = {"level": "thinkingLevel", "budget": "thinkingBudget",
                   "include_thoughts": "includeThoughts"}
_PART = re.compile(r"^messages(\[\d+\]\.parts\[\d+\])(\.signature)?$")


def gemini_path(canonical: str) -> str:
    """`params.top_k` → `generationConfig.topK`, `messages[1].parts[0].signature` →
    `contents[1].parts[0].thoughtSignature`; unknown paths are returned unchanged."""
    head, _, rest = canonical.partition(".")
    if head == "params" and rest in PARAM_FIELDS:
        return f"generationConfig.{PARAM_FIELDS[rest]}"
    if head == "thinking" and rest in THINKING_FIELDS:
        return f"generationConfig.thinkingConfig.{THINKING_FIELDS[rest]}"
    part = _PART.match(canonical)
    if part:
        return f"contents{part.group(1)}" + (".thoughtSignature" if part.group(2) else "")
    if canonical.startswith("system"):
        return "systemInstruction" + canonical.removeprefix("system")
    return canonical
