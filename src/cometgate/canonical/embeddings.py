"""A request for embeddings and its answer, as the gateway understands them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EmbedInput:
    """One text to embed. `title` names the document the text comes from (Gemini accepts it
    with the RETRIEVAL_DOCUMENT task type only)."""

    text: str
    title: str | None = None

    @property
    def titled_text(self) -> str:
        """What a model without a title field embeds: the title, a blank line, the text."""
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """`model` is what the caller asked for (an alias), as for a generation. `inputs` is
    never empty and yields one vector each, in order. `task_type` is a Gemini TaskType name
    (RETRIEVAL_QUERY, …) or None; a model without task types ignores it.
    `output_dimensionality`, when set, is positive: vectors are cut to that length."""

    model: str
    inputs: tuple[EmbedInput, ...]
    task_type: str | None = None
    output_dimensionality: int | None = None


@dataclass(frozen=True, slots=True)
class EmbedResponse:
    """One vector per input, in the request's order. `prompt_tokens` counts every input
    (an estimate when the upstream reports no count)."""

    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int
