"""A candidate's `urlContextMetadata`, as Google writes it: one `urlMetadata` entry per URL
the prompt named, `{retrievedUrl, urlRetrievalStatus}`, in the prompt's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cometgate.canonical import UrlMetadata, UrlRetrieval

_STATUS = {
    UrlRetrieval.SUCCESS: "URL_RETRIEVAL_STATUS_SUCCESS",
    UrlRetrieval.ERROR: "URL_RETRIEVAL_STATUS_ERROR",
    UrlRetrieval.PAYWALL: "URL_RETRIEVAL_STATUS_PAYWALL",
    UrlRetrieval.UNSAFE: "URL_RETRIEVAL_STATUS_UNSAFE",
}


def url_context_metadata(entries: Sequence[UrlMetadata]) -> dict[str, Any]:
    return {"urlMetadata": [{"retrievedUrl": entry.url, "urlRetrievalStatus": _STATUS[entry.status]}
                            for entry in entries]}
