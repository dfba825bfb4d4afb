"""One page fetch for the model: `PageFetcher.fetch(url) -> FetchedPage | FetchFailure`.

Every fetch is treated as hostile (the URL is the caller's):
- only http and https, no credentials in the URL, only the configured ports;
- the host name is resolved once, every address it resolves to must be public
  (`address_guard`), and the connection goes to that checked address — the URL is rewritten
  to the address, with the name kept for the Host header and TLS (SNI and certificate
  check), so no second resolution can swap in another address;
- redirects are followed by hand, each one checked the same way, at most `max_redirects`;
- the body is read up to `max_bytes` (after decompression, which is itself bounded) and
  the text given to the model up to `max_page_chars`;
- the whole fetch (a wait for one of `max_concurrent` slots, resolution, redirects, body)
  ends within `timeout` seconds.
A fault is a `FetchFailure` with the status Google gives such a URL, never an exception.
`grounding.fetch.allow_private` lifts the address and port checks (tests, intranets).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

from cometgate.canonical import UrlRetrieval
from cometgate.grounding.address_guard import IPAddress, unsafe_address, unsafe_name
from cometgate.grounding.page_text import html_text
from cometgate.settings import FetchSettings

# Resolves a host name to its addresses (the seam tests use to make a name point anywhere).
Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_READABLE = _HTML | {"text/plain", "text/markdown", "text/x-markdown", "application/json",
                     "text/csv"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEADERS = {
    "user-agent": "cometgate-url-context/1",
    "accept": "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,"
              "application/json;q=0.8",
    "accept-encoding": "gzip, deflate",
}


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str  # as asked for
    final_url: str  # after redirects
    content_type: str
    title: str
    text: str
    truncated: bool  # the body or its text was longer than the bounds; this is its start


@dataclass(frozen=True, slots=True)
class FetchFailure:
    url: str
    status: UrlRetrieval  # ERROR, PAYWALL or UNSAFE
    reason: str


@dataclass(frozen=True, slots=True)
class _Target:
    """A checked URL: the address to connect to, and the name the server knows itself by."""

    parts: SplitResult
    host: str  # ASCII (IDNA) host name, or the address text of an IP literal
    port: int
    address: IPAddress


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


class PageFetcher:
    """Fetches pages over one client without keep-alive (a connection is bound to the address
    one name was checked to have, and is never handed to another name)."""

    def __init__(self, settings: FetchSettings, *, resolve: Resolve | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self.max_urls = settings.max_urls
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._resolve = resolve or resolve_host
        self._client = httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_keepalive_connections=0))

    async def fetch(self, url: str) -> FetchedPage | FetchFailure:
        timeout = self._settings.timeout
        try:
            async with asyncio.timeout(timeout), self._slots:
                return await self._follow(url)
        except TimeoutError:
            return FetchFailure(url, UrlRetrieval.ERROR, f"no answer within {timeout:g} s")
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError, zlib.error) as exc:
            return FetchFailure(url, UrlRetrieval.ERROR, f"the fetch failed: {type(exc).__name__}")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _follow(self, url: str) -> FetchedPage | FetchFailure:
        current = url
        for _ in range(self._settings.max_redirects + 1):
            target = await self._checked(current)
            if isinstance(target, FetchFailure):
                return replace(target, url=url)
            result = await self._get(url, current, target)
            if not isinstance(result, _Redirect):
                return result
            current = urljoin(current, result.location)
        return FetchFailure(url, UrlRetrieval.ERROR,
                            f"more than {self._settings.max_redirects} redirects")

    async def _checked(self, url: str) -> _Target | FetchFailure:
        """The URL's address once every rule allows it; a failure says which did not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return FetchFailure(url, UrlRetrieval.ERROR, "not a valid URL")
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            return FetchFailure(url, UrlRetrieval.ERROR, "only http and https URLs are read")
        if parts.username is not None or parts.password is not None:
            return FetchFailure(url, UrlRetrieval.UNSAFE, "the URL carries credentials")
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            return FetchFailure(url, UrlRetrieval.ERROR, "not a valid host name")
        port = port or _DEFAULT_PORTS[parts.scheme]
        guarded = not self._settings.allow_private
        if guarded and port not in self._settings.ports:
            return FetchFailure(url, UrlRetrieval.UNSAFE, f"port {port} is not allowed")
        refused = unsafe_name(host) if guarded else None
        if refused is not None:
            return FetchFailure(url, UrlRetrieval.UNSAFE, refused)
        addresses = await self._addresses(host, port)
        if not addresses:
            return FetchFailure(url, UrlRetrieval.ERROR, f"{host} could not be resolved")
        for address in addresses if guarded else ():
            refused = unsafe_address(address)
            if refused is not None:
                return FetchFailure(url, UrlRetrieval.UNSAFE, refused)
        return _Target(parts, host, port, addresses[0])

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            return await self._resolve(host, port)
        except OSError:
            return []

    async def _get(self, url: str, current: str, target: _Target
                   ) -> FetchedPage | FetchFailure | _Redirect:
        request = self._client.build_request(
            "GET", _pinned_url(target), headers={**_HEADERS, "host": _host_header(target)},
            extensions={"sni_hostname": target.host})
        response = await self._client.send(request, stream=True)
        try:
            return await self._read(url, current, response)
        finally:
            await response.aclose()

    async def _read(self, url: str, current: str, response: httpx.Response
                    ) -> FetchedPage | FetchFailure | _Redirect:
        status = response.status_code
        if status in _REDIRECTS and "location" in response.headers:
            return _Redirect(response.headers["location"])
        if status == 402:
            return FetchFailure(url, UrlRetrieval.PAYWALL, "the site asks for payment (402)")
        if not 200 <= status < 300:
            return FetchFailure(url, UrlRetrieval.ERROR, f"the site answered {status}")
        media_type, charset = _content_type(response.headers.get("content-type", ""))
        if media_type not in _READABLE:
            return FetchFailure(url, UrlRetrieval.ERROR,
                                f"{media_type or 'an unnamed type'} is not a readable page type")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "deflate"):
            return FetchFailure(url, UrlRetrieval.ERROR, f"unknown content encoding {encoding}")
        body, cut = await _bounded_body(response, encoding, self._settings.max_bytes)
        document = body.decode(charset, errors="replace")
        if media_type in _HTML:  # up to a mebibyte of markup: parsed off the event loop
            title, text = await asyncio.to_thread(html_text, document)
        else:
            title, text = "", document.strip()
        limit = self._settings.max_page_chars
        return FetchedPage(url, current, media_type, title, text[:limit],
                           cut or len(text) > limit)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (an IPv6 zone is dropped: the
    address alone decides)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


def _pinned_url(target: _Target) -> str:
    address = str(target.address)
    literal = f"[{address}]" if target.address.version == 6 else address
    path = target.parts.path or "/"
    query = f"?{target.parts.query}" if target.parts.query else ""
    return f"{target.parts.scheme}://{literal}:{target.port}{path}{query}"


def _host_header(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = _DEFAULT_PORTS[target.parts.scheme]
    return host if target.port == default else f"{host}:{target.port}"


def _content_type(header: str) -> tuple[str, str]:
    media_type, _, params = header.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    try:
        "".encode(charset)
    except LookupError:
        charset = "utf-8"
    return media_type.strip().lower(), charset


async def _bounded_body(response: httpx.Response, encoding: str, limit: int
                        ) -> tuple[bytes, bool]:
    """At most `limit` bytes of the decoded body, and whether there was more. Decompression
    never produces more than is still wanted, so a small compressed bomb stays small."""
    inflater = None if encoding == "identity" else zlib.decompressobj(47)  # gzip or zlib
    collected = bytearray()
    async for chunk in response.aiter_raw():
        wanted = limit - len(collected)
        if wanted <= 0:  # full, and more came (0 would mean "no bound" to zlib)
            return bytes(collected), True
        if inflater is None:
            collected += chunk[:wanted]
            if len(chunk) > wanted:
                return bytes(collected), True
            continue
        collected += inflater.decompress(inflater.unconsumed_tail + chunk, wanted)
        if inflater.unconsumed_tail:
            return bytes(collected), True
    return bytes(collected), False
