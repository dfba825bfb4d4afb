"""An HTTP/1.1 client for one job: POST a body to an upstream and hand back the response as
its bytes arrive, over a keep-alive pool of `asyncio.Protocol` connections per origin, with
responses parsed by httptools (llhttp, in C).

Failures are raised as the gateway's own errors: nothing could be reached or the connection
broke before the response headers → UpstreamUnavailable; a connection lost or garbled
mid-body → a transient UpstreamError (503); connecting too slowly → UpstreamTimeout. Every
other wait is bounded by the caller (providers/transport.py).

Invariants:
- at most `max_connections` connections per origin (scheme, host, port) are open or opening;
- a connection goes back to the pool only after its response was parsed to the end and the
  server did not ask to close it; anything else (a half-read response closed early, a parse
  error, a body framed by the end of the connection) closes it;
- each piece of body is delivered as soon as it is read from the socket; reading pauses when
  more than BUFFER_LIMIT bytes wait for the consumer.
"""

from cometgate.providers.http1.client import Http1Client
from cometgate.providers.http1.pool import IDLE_EXPIRY
from cometgate.providers.http1.response import BUFFER_LIMIT, Http1Response

__all__ = ["BUFFER_LIMIT", "IDLE_EXPIRY", "Http1Client", "Http1Response"]
