"""The image types the Messages API accepts as base64 sources: a caller's image block of another
type is refused as Anthropic refuses it, and only a canonical image of one of these is sent to
an Anthropic upstream as an image block."""

from __future__ import annotations

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
