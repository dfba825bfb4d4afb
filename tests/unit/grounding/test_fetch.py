"""The page fetcher against a real server on a loopback port: what it reads and how it is
bounded (bytes, time, types), and the address guard — every refused URL is proven never
connected to (the server counts its connections; a transport standing in for the internet
records every request that reaches it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from tests.fakes.page_server import ARTICLE_FACT, ARTICLE_TITLE, NOTES, PageServer

from cometgate.canonical import UrlRetrieval
from cometgate.grounding.address_guard import IPAddress
from cometgate.grounding.fetch import FetchedPage, FetchFailure, PageFetcher, Resolve
from cometgate.settings import FetchSettings

PUBLIC = "93.184.216.34"  # what the stand-in resolver gives public-looking names


@pytest.fixture
async def server() -> AsyncIterator[PageServer]:
    server = PageServer()
    await server.start()
    yield server
    await server.aclose()


def names(table: dict[str, list[str]]) -> Resolve:
    """A resolver seam: host name → the addresses the test says it has."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise OSError(f"no such name: {host}")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


def open_fetcher(server: PageServer, **settings: object) -> PageFetcher:
    """Private addresses allowed unless a test says otherwise; the server's port allowed
    either way, so that a refusal is the address guard's, not the port rule's."""
    base = FetchSettings(allow_private=True, ports=(80, 443, server.port), timeout=5.0)
    return PageFetcher(replace(base, **settings),  # type: ignore[arg-type]
                       resolve=names({"pages.test": ["127.0.0.1"],
                                      "innocent.example": ["127.0.0.1"],
                                      "mixed.example": [PUBLIC, "10.0.0.7"],
                                      "v6.example": ["::1"]}))


async def fetched(fetcher: PageFetcher, url: str) -> FetchedPage | FetchFailure:
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def test_an_html_page_is_read_as_its_title_and_visible_text(server: PageServer) -> None:
    page = await fetched(open_fetcher(server), server.url("/article"))
    assert isinstance(page, FetchedPage), page
    assert page.title == ARTICLE_TITLE and page.content_type == "text/html"
    assert ARTICLE_FACT in page.text and "Comets" in page.text
    assert "SECRET_SCRIPT" not in page.text and "color" not in page.text
    assert "enable scripts" not in page.text and not page.truncated


async def test_a_name_is_resolved_once_and_the_connection_goes_to_that_address(
    server: PageServer,
) -> None:
    # pages.test exists only in the test's resolver: the request reaching the server proves
    # the fetcher connected to the address it resolved, and kept the name for Host.
    page = await fetched(open_fetcher(server), f"http://pages.test:{server.port}/notes.txt")
    assert isinstance(page, FetchedPage) and page.text == NOTES
    assert server.requests == [("/notes.txt", f"pages.test:{server.port}")]


async def test_redirects_are_followed_and_checked(server: PageServer) -> None:
    page = await fetched(open_fetcher(server), server.url("/redirect?to=/article"))
    assert isinstance(page, FetchedPage) and page.title == ARTICLE_TITLE
    assert page.final_url == server.url("/article")
    loop = await fetched(open_fetcher(server, max_redirects=2), server.url("/redirect?to=" +
                         server.url("/redirect?to=/redirect")))
    assert isinstance(loop, FetchFailure) and loop.status is UrlRetrieval.ERROR
    assert loop.reason == "more than 2 redirects"


async def test_an_oversize_page_is_cut_at_max_bytes(server: PageServer) -> None:
    page = await fetched(open_fetcher(server, max_bytes=1000), server.url("/big"))
    assert isinstance(page, FetchedPage) and page.truncated
    assert 0 < len(page.text) <= 1000


async def test_the_text_given_to_the_model_is_cut_at_max_page_chars(server: PageServer) -> None:
    page = await fetched(open_fetcher(server, max_page_chars=10), server.url("/notes.txt"))
    assert isinstance(page, FetchedPage) and page.text == NOTES[:10] and page.truncated


async def test_compressed_pages_are_read_and_a_compression_bomb_stays_bounded(
    server: PageServer,
) -> None:
    page = await fetched(open_fetcher(server), server.url("/gzip"))
    assert isinstance(page, FetchedPage) and page.title == ARTICLE_TITLE
    bomb = await fetched(open_fetcher(server, max_bytes=4096), server.url("/bomb"))
    assert isinstance(bomb, FetchedPage) and bomb.truncated  # 64 MiB inflated to 4 KiB


async def test_a_slow_page_times_out_as_an_error(server: PageServer) -> None:
    failure = await fetched(open_fetcher(server, timeout=0.3), server.url("/slow"))
    assert failure == FetchFailure(server.url("/slow"), UrlRetrieval.ERROR,
                                   "no answer within 0.3 s")


@pytest.mark.parametrize(("path", "status", "reason"), [
    ("/doc.pdf", UrlRetrieval.ERROR, "application/pdf is not a readable page type"),
    ("/paywall", UrlRetrieval.PAYWALL, "the site asks for payment (402)"),
    ("/missing", UrlRetrieval.ERROR, "the site answered 404"),
])
async def test_unreadable_answers(server: PageServer, path: str, status: UrlRetrieval,
                                  reason: str) -> None:
    assert await fetched(open_fetcher(server), server.url(path)) == \
        FetchFailure(server.url(path), status, reason)


async def test_an_unresolvable_name_is_an_error(server: PageServer) -> None:
    failure = await fetched(open_fetcher(server), "http://nowhere.test/")
    assert failure == FetchFailure("http://nowhere.test/", UrlRetrieval.ERROR,
                                   "nowhere.test could not be resolved")


def refused_urls(port: int) -> list[tuple[str, str]]:
    return [
        (f"http://127.0.0.1:{port}/article", "127.0.0.1 is a loopback address"),
        (f"http://127.9.9.9:{port}/article", "127.9.9.9 is a loopback address"),
        (f"http://[::1]:{port}/article", "::1 is a loopback address"),
        (f"http://[::ffff:127.0.0.1]:{port}/article", "127.0.0.1 is a loopback address"),
        (f"http://10.1.2.3:{port}/", "10.1.2.3 is not a public address"),
        (f"http://172.16.5.4:{port}/", "172.16.5.4 is not a public address"),
        (f"http://192.168.1.1:{port}/", "192.168.1.1 is not a public address"),
        (f"http://100.64.1.1:{port}/", "100.64.1.1 is in the shared address space "
                                       "(100.64.0.0/10)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        (f"http://[fe80::1]:{port}/", "fe80::1 is a link-local address"),
        (f"http://[fd00::1]:{port}/", "fd00::1 is not a public address"),
        (f"http://0.0.0.0:{port}/", "0.0.0.0 is the unspecified address"),
        (f"http://224.0.0.1:{port}/", "224.0.0.1 is a multicast address"),
        (f"http://240.0.0.1:{port}/", "240.0.0.1 is not a public address"),
        ("http://metadata.google.internal/computeMetadata/v1/",
         "metadata.google.internal is a cloud metadata service"),
        (f"http://localhost:{port}/article", "localhost is a loopback name"),
        (f"http://api.localhost:{port}/article", "api.localhost is a loopback name"),
        # Names the (stand-in) DNS resolves to loopback, or to a public and a private address.
        (f"http://innocent.example:{port}/article", "127.0.0.1 is a loopback address"),
        (f"http://mixed.example:{port}/", "10.0.0.7 is not a public address"),
        (f"http://v6.example:{port}/", "::1 is a loopback address"),
        (f"http://user:secret@{PUBLIC}/", "the URL carries credentials"),
        (f"http://{PUBLIC}:22/", "port 22 is not allowed"),
    ]


@pytest.mark.parametrize("case", range(len(refused_urls(1))))
async def test_the_guard_refuses_without_connecting(server: PageServer, case: int) -> None:
    url, reason = refused_urls(server.port)[case]
    failure = await fetched(open_fetcher(server, allow_private=False), url)
    assert failure == FetchFailure(url, UrlRetrieval.UNSAFE, reason)
    assert server.connections == 0


async def test_only_http_and_https_are_read(server: PageServer) -> None:
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://x/"):
        failure = await fetched(open_fetcher(server, allow_private=False), url)
        assert failure == FetchFailure(url, UrlRetrieval.ERROR,
                                       "only http and https URLs are read")


class Internet:
    """Stands in for the public internet: a transport that answers the pinned address of
    public.example with a redirect, and records every request that reaches it."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.seen: list[tuple[str, str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        sni = str(request.extensions.get("sni_hostname"))
        self.seen.append((str(request.url), request.headers["host"], sni))
        return httpx.Response(302, headers={"location": self.location})


@pytest.mark.parametrize("into", ["http://127.0.0.1:{port}/article",
                                  "http://innocent.example:{port}/article",
                                  "http://169.254.169.254/latest/meta-data/",
                                  "http://[::1]:{port}/article"])
async def test_a_public_page_that_redirects_inward_is_refused_at_the_redirect(
    server: PageServer, into: str,
) -> None:
    internet = Internet(into.format(port=server.port))
    fetcher = PageFetcher(
        FetchSettings(ports=(80, 443, server.port)),
        resolve=names({"public.example": [PUBLIC], "innocent.example": ["127.0.0.1"]}),
        transport=httpx.MockTransport(internet.handle))
    failure = await fetched(fetcher, "https://public.example/start")
    assert isinstance(failure, FetchFailure) and failure.status is UrlRetrieval.UNSAFE
    assert failure.url == "https://public.example/start"
    # One request, to the address the name was checked to have, named for TLS and Host.
    assert internet.seen == [(f"https://{PUBLIC}/start", "public.example", "public.example")]
    assert server.connections == 0


def certificate_for(name: str, tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for `name`, client context trusting only it)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


async def test_https_to_the_pinned_address_checks_the_certificate_against_the_name(
    tmp_path: Path,
) -> None:
    server_context, client_context = certificate_for("pages.test", tmp_path)
    server = PageServer()
    await server.start(server_context)
    try:
        def fetcher() -> PageFetcher:
            return PageFetcher(
                FetchSettings(allow_private=True),
                resolve=names({"pages.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}),
                transport=httpx.AsyncHTTPTransport(verify=client_context))

        page = await fetched(fetcher(), f"https://pages.test:{server.port}/article")
        assert isinstance(page, FetchedPage) and page.title == ARTICLE_TITLE
        assert server.requests == [("/article", f"pages.test:{server.port}")]
        # The same address under a name the certificate does not have: refused by TLS.
        wrong = await fetched(fetcher(), f"https://other.test:{server.port}/article")
        assert isinstance(wrong, FetchFailure) and wrong.status is UrlRetrieval.ERROR
        assert wrong.reason == "the fetch failed: ConnectError"
        assert len(server.requests) == 1
    finally:
        await server.aclose()


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "LOCALHOST.",
                                  "[::ffff:7f00:1]"])
async def test_other_spellings_of_loopback_are_refused_by_the_system_resolver_too(
    server: PageServer, host: str,
) -> None:
    """The system resolver reads 127.1 and 2130706433 as 127.0.0.1: the check is on what a
    name resolves to, so every spelling meets it."""
    fetcher = PageFetcher(FetchSettings(ports=(80, 443, server.port)))
    failure = await fetched(fetcher, f"http://{host}:{server.port}/article")
    assert isinstance(failure, FetchFailure) and failure.status is UrlRetrieval.UNSAFE
    assert server.connections == 0


async def test_fetches_beyond_max_concurrent_wait_for_a_slot(server: PageServer) -> None:
    fetcher = open_fetcher(server, max_concurrent=1)
    try:
        slow = asyncio.create_task(fetcher.fetch(server.url("/slow")))
        await server.requested.wait()  # the slow page holds the one slot
        queued = asyncio.create_task(fetcher.fetch(server.url("/notes.txt")))
        for _ in range(10):
            await asyncio.sleep(0.01)
        assert not queued.done() and len(server.requests) == 1  # waiting, not connected
        slow.cancel()  # the slot is freed
        with contextlib.suppress(asyncio.CancelledError):
            await slow
        page = await queued
        assert isinstance(page, FetchedPage) and page.text == NOTES
        assert [path for path, _ in server.requests] == ["/slow", "/notes.txt"]
    finally:
        await fetcher.aclose()
