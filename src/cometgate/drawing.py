"""Image output: which models draw, and a generation met by an images endpoint.

A model configured `task: image` answers `responseModalities: ["IMAGE"]` (and `["TEXT",
"IMAGE"]`): by pass-through when its upstream is a Gemini image model, through the Images API
of an OpenAI-compatible upstream otherwise. Through the Images API the answer is one
candidate of inline image parts and no text: the upstream writes none. Its `revised_prompt`
(DALL·E 3's rewrite of the prompt) is not the model's answer, so it is not made into a text
part — a client would show it, and send it back next turn, as words the model said.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

from cometgate.canonical import (
    BlobPart,
    Candidate,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    ModelInfo,
)
from cometgate.canonical.images import ImageRequest, ImageResponse, ImageShape, image_request_of
from cometgate.dialects.upstream_answers import new_response_id
from cometgate.errors import InvalidRequest

Mode = Literal["native", "emulated"] | None
# Dialects whose callers ask for pictures inside a generation; the others have an images
# endpoint of their own (OpenAI's) or no way to ask.
_GENERATION_DIALECTS = ("gemini", "canonical")


def image_output_mode(model: ModelInfo) -> Mode:
    """"native": the model's upstream draws (a Gemini image model, an Images API)."""
    return "native" if "IMAGE" in model.output_modalities else None


def image_request_for(request: GenerateRequest, model: ModelInfo, dialect: str) -> ImageRequest:
    """The images endpoint's request for a generation on an image model, or the refusal of
    what such an endpoint cannot do, in the words of the caller's dialect."""
    if dialect not in _GENERATION_DIALECTS:
        raise InvalidRequest(
            f"models/{model.id} makes images: OpenAI callers reach it at POST "
            "/v1/images/generations (or /v1/images/edits), not through chat.",
            violations={"model": "an image model"})
    if request.tools:
        raise InvalidRequest(
            f"tools: function calling is not supported by models/{model.id}, which makes "
            "images.", violations={"tools": "not supported by an image model"})
    drawn = image_request_of(model.id, request.messages, request.params.candidate_count)
    if not drawn.prompt:
        raise InvalidRequest(
            f"contents: the last user turn holds no text; models/{model.id} draws from a "
            "text prompt.", violations={"contents": "no text prompt"})
    return replace(drawn, size=_size(request.image_shape, model))


# Gemini's aspect ratios, drawn at the Images API size of the same orientation.
_SIZES = {"1:1": "1024x1024", "3:2": "1536x1024", "4:3": "1536x1024", "5:4": "1536x1024",
          "16:9": "1536x1024", "21:9": "1536x1024", "2:3": "1024x1536", "3:4": "1024x1536",
          "4:5": "1024x1536", "9:16": "1024x1536"}
_PATH = "generation_config.image_config"


def _size(shape: ImageShape | None, model: ModelInfo) -> str | None:
    if shape is None:
        return None
    if shape.size not in (None, "1K"):
        raise InvalidRequest(
            f"* GenerateContentRequest.{_PATH}.image_size: {shape.size} is not supported by "
            f"models/{model.id}, which draws pictures of about 1K pixels a side.",
            violations={f"{_PATH}.image_size": "not supported"})
    if shape.aspect_ratio is None:
        return None
    size = _SIZES.get(shape.aspect_ratio)
    if size is None:
        raise InvalidRequest(
            f"* GenerateContentRequest.{_PATH}.aspect_ratio: {shape.aspect_ratio} is not a "
            f"supported aspect ratio; use one of {', '.join(_SIZES)}.",
            violations={f"{_PATH}.aspect_ratio": "not supported"})
    return size


def as_generate_response(drawn: ImageResponse, model_version: str) -> GenerateResponse:
    parts = tuple(BlobPart(image.mime_type, image.data) for image in drawn.images)
    return GenerateResponse(
        model_version=model_version,
        candidates=(Candidate(parts, FinishReason.STOP),),
        usage=drawn.usage,
        response_id=new_response_id(),
        created=drawn.created or time.time(),
    )
