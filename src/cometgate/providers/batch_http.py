"""HTTP to an upstream's own batch API: a handful of calls per batch (create, poll, fetch the
results, cancel), each bounded by the provider's timeouts, over one pooled client per
provider. Errors are read as the live calls read them: a refused connection or a timeout is
transient; an error answer is classified by the provider's dialect, from its structured
fields."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from cometgate.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Classifier

ERROR_BODY_LIMIT = 64 * 1024


class BatchHttp:
    def __init__(self, headers: Mapping[str, str], timeouts: Timeouts,
                 classify: Classifier, *, client: httpx.AsyncClient | None = None) -> None:
        self._headers = dict(headers)  # the credential's, in the dialect's style
        self._classify = classify
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(
            timeouts.total, connect=timeouts.connect))

    async def call(self, method: str, url: str, *, json: bytes | None = None,
                   files: Mapping[str, tuple[str, bytes, str]] | None = None,
                   data: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> bytes:
        """The whole success body, or the classified error."""
        sent = dict(self._headers)
        if json is not None:
            sent["content-type"] = "application/json"
        elif files is not None:
            sent.pop("content-type", None)  # httpx writes the multipart boundary
        sent.update(headers or {})
        try:
            response = await self._client.request(method, url, content=json, files=files,
                                                  data=data, headers=sent)
        except httpx.TimeoutException:
            raise UpstreamTimeout("the upstream's batch API did not answer in time") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"the upstream's batch API could not be reached ({type(exc).__name__})"
            ) from None
        if response.is_success:
            return response.content
        raise self._failure(response)

    def _failure(self, response: httpx.Response) -> UpstreamError:
        return self._classify(response.status_code, response.headers,
                              response.content[:ERROR_BODY_LIMIT])

    async def aclose(self) -> None:
        await self._client.aclose()
