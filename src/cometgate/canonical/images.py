"""Image generation as the gateway understands it: a prompt (and, for an edit, the images to
change) in, pictures out.

A generation that asks for image output (Gemini's `responseModalities: ["IMAGE"]`) on a model
served by an images endpoint becomes an `ImageRequest`: the prompt is the text of the last
user turn (the earlier turns are context an images endpoint cannot take), and the images of
that turn make it an edit. The pictures come back as inline image parts of one candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from cometgate.canonical.messages import BlobPart, Message, TextPart
from cometgate.canonical.response import Usage

DEFAULT_IMAGE_MIME = "image/png"


@dataclass(frozen=True, slots=True)
class ImageShape:
    """The picture a generation asks for (Gemini's imageConfig): "16:9", "1K"; None: the
    model's default."""

    aspect_ratio: str | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRequest:
    model: str
    prompt: str
    images: tuple[BlobPart, ...] = ()  # the pictures to edit; none: a new picture
    count: int = 1
    size: str | None = None  # "1024x1024", "auto", …; None: the upstream's default
    quality: str | None = None
    background: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    mime_type: str = DEFAULT_IMAGE_MIME
    # The prompt as the upstream rewrote it before drawing (DALL·E 3), when it says.
    revised_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class ImageResponse:
    images: tuple[GeneratedImage, ...]
    created: float  # unix seconds
    usage: Usage  # tokens when the upstream reports them (gpt-image does), and `images`
    extra: dict[str, str] | None = None  # output_format, size, quality… as the upstream said


def last_user_turn(messages: tuple[Message, ...]) -> Message | None:
    for message in reversed(messages):
        if message.role == "user":
            return message
    return None


def image_request_of(model: str, messages: tuple[Message, ...], count: int) -> ImageRequest:
    """The prompt and input images of a conversation's last user turn. Empty when it has no
    text: the caller's dialect refuses that (an images endpoint needs a prompt)."""
    turn = last_user_turn(messages)
    parts = turn.parts if turn is not None else ()
    prompt = "\n".join(p.text for p in parts if isinstance(p, TextPart)).strip()
    images = tuple(p for p in parts if isinstance(p, BlobPart) and p.mime_type.startswith(
        "image/"))
    return ImageRequest(model=model, prompt=prompt, images=images, count=count)
