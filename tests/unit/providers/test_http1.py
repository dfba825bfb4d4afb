"""The HTTP/1.1 upstream client over real loopback sockets, against servers that write every
byte themselves."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.providers.raw_upstream import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    Peer,
    answer,
    chunk,
    keep_answering,
    raw_upstream,
)

from cometgate.errors import FailureClass, UpstreamError, UpstreamUnavailable
from cometgate.providers.http1 import BUFFER_LIMIT, Http1Client, Http1Response


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client(connect_timeout=5, max_connections=4)
    yield http
    await http.aclose()


async def body_of(response: Http1Response) -> bytes:
    received = bytearray()
    while piece := await response.next_chunk():
        received += piece
    return bytes(received)


async def post_and_read(client: Http1Client, url: str, body: bytes = b"{}") -> bytes:
    response = await client.post(url, body, {"content-type": "application/json"})
    try:
        return await body_of(response)
    finally:
        await response.aclose()


async def test_a_content_length_body_with_status_and_lowercased_headers(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer(b'{"ok":1}', "Content-Type: application/json",
                               "X-Multi: a", "X-Multi: b", status="429 Too Many Requests"))

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        assert response.status_code == 429 and not response.is_success
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-multi"] == "a, b"
        assert await body_of(response) == b'{"ok":1}'
        await response.aclose()


async def test_the_request_carries_host_length_and_the_given_headers_only(
    client: Http1Client,
) -> None:
    async with raw_upstream(keep_answering) as upstream:
        url = upstream.url("/v1beta/models/m:generateContent?alt=sse")
        headers = {"x-goog-api-key": "k", "Content-Length": "999", "expect": "100-continue"}
        response = await client.post(url, b'{"a":1}', headers)
        await body_of(response)
    (request,) = upstream.requests
    assert request.line == "POST /v1beta/models/m:generateContent?alt=sse HTTP/1.1"
    assert request.header("host") == [f"127.0.0.1:{upstream.port}"]
    assert request.header("content-length") == ["7"]
    assert request.header("x-goog-api-key") == ["k"]
    assert request.header("expect") == []
    assert request.body == b'{"a":1}'


async def test_a_path_with_spaces_is_percent_encoded(client: Http1Client) -> None:
    async with raw_upstream(keep_answering) as upstream:
        assert await post_and_read(client, upstream.url("/models/a b:x")) == (
            b"POST /models/a%20b:x HTTP/1.1")


async def test_a_header_with_a_line_break_is_refused_before_sending(
    client: Http1Client,
) -> None:
    async with raw_upstream(keep_answering) as upstream:
        with pytest.raises(ValueError, match="line break"):
            await client.post(upstream.url(), b"", {"x-key": "a\r\nx-injected: 1"})
        assert await post_and_read(client, upstream.url()) == b"POST /v1/x HTTP/1.1"


async def test_a_chunked_body_is_decoded(client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"hello") + chunk(b", world") + LAST_CHUNK)

    async with raw_upstream(handler) as upstream:
        assert await post_and_read(client, upstream.url()) == b"hello, world"


async def test_each_piece_arrives_before_the_server_sends_the_next(client: Http1Client) -> None:
    go_on = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await go_on.wait()
        await peer.send(chunk(b"data: two\n\n") + LAST_CHUNK)

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        assert await response.next_chunk() == b"data: one\n\n"
        assert not go_on.is_set()  # the first piece came on its own
        go_on.set()
        assert await response.next_chunk() == b"data: two\n\n"
        assert await response.next_chunk() == b""
        await response.aclose()


async def test_an_interim_103_answer_is_skipped(client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + answer(b"real"))

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        assert response.status_code == 200 and "link" not in response.headers
        assert await body_of(response) == b"real"


async def test_keep_alive_carries_many_requests_on_one_connection(client: Http1Client) -> None:
    async with raw_upstream(keep_answering) as upstream:
        for _ in range(5):
            assert await post_and_read(client, upstream.url()) == b"POST /v1/x HTTP/1.1"
    assert len(upstream.peers) == 1 and len(upstream.requests) == 5


async def test_connection_close_is_honoured_even_if_the_server_keeps_the_socket(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(answer(b"bye", "Connection: close"))

    async with raw_upstream(handler) as upstream:
        for _ in range(3):
            assert await post_and_read(client, upstream.url()) == b"bye"
    assert [len(peer.requests) for peer in upstream.peers] == [1, 1, 1]


async def test_a_body_ended_by_the_close_is_complete_and_never_reused(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        peer.writer.close()

    async with raw_upstream(handler) as upstream:
        assert await post_and_read(client, upstream.url()) == b"until the end"
        assert await post_and_read(client, upstream.url()) == b"until the end"
    assert len(upstream.peers) == 2


async def test_an_idle_connection_the_server_closed_is_replaced(client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer(b"first"))
        peer.writer.close()  # the server's keep-alive timeout ran out

    async with raw_upstream(handler) as upstream:
        assert await post_and_read(client, upstream.url()) == b"first"
        await upstream.peers[0].writer.wait_closed()
        assert await post_and_read(client, upstream.url()) == b"first"
    assert len(upstream.peers) == 2


async def test_a_request_racing_the_servers_idle_close_is_sent_again_on_a_new_connection(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer(b"answered"))
        if peer.index == 0 and await peer.read_request() is not None:
            peer.writer.close()  # closed as our request arrived: not a byte of an answer

    async with raw_upstream(handler) as upstream:
        assert await post_and_read(client, upstream.url()) == b"answered"
        assert await post_and_read(client, upstream.url(), b'{"n":2}') == b"answered"
    assert [len(peer.requests) for peer in upstream.peers] == [2, 1]
    assert upstream.peers[1].requests[0].body == b'{"n":2}'


async def test_a_reused_connection_reset_twice_is_not_tried_a_third_time(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        if peer.index == 0:
            await peer.send(answer(b"ok"))
            await peer.read_request()
        peer.reset()

    async with raw_upstream(handler) as upstream:
        assert await post_and_read(client, upstream.url()) == b"ok"
        with pytest.raises(UpstreamUnavailable):
            await post_and_read(client, upstream.url())
    assert len(upstream.peers) == 2


async def test_a_reset_before_any_byte_is_unavailable_and_not_retried(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        peer.reset()

    async with raw_upstream(handler) as upstream:
        with pytest.raises(UpstreamUnavailable):
            await client.post(upstream.url(), b"{}", {})
    assert len(upstream.peers) == 1


async def test_a_reset_mid_body_is_a_transient_error_after_what_came(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await peer.read_request()  # until the client gives up: never
        peer.reset()

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        assert await response.next_chunk() == b"data: one\n\n"
        upstream.peers[0].reset()
        with pytest.raises(UpstreamError) as caught:
            await response.next_chunk()
        await response.aclose()
    error = caught.value
    assert not isinstance(error, UpstreamUnavailable)
    assert error.failure_class is FailureClass.TRANSIENT and error.http_status == 503


async def test_a_truncated_content_length_body_is_an_error_not_a_short_answer(
    client: Http1Client,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        peer.writer.close()

    async with raw_upstream(handler) as upstream:
        with pytest.raises(UpstreamError, match="lost mid-response"):
            await post_and_read(client, upstream.url())


async def test_garbage_instead_of_a_status_line_is_unavailable(client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    async with raw_upstream(handler) as upstream:
        with pytest.raises(UpstreamUnavailable, match="unreadable"):
            await client.post(upstream.url(), b"{}", {})


async def test_a_refused_port_is_unavailable(client: Http1Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamUnavailable, match="cannot reach"):
        await client.post(f"http://127.0.0.1:{port}/x", b"{}", {})


async def test_the_pool_limit_holds_under_concurrency() -> None:
    client = Http1Client(connect_timeout=5, max_connections=2)
    release = asyncio.Event()
    waiting = 0
    two_waiting = asyncio.Event()

    async def handler(peer: Peer) -> None:
        nonlocal waiting
        while (request := await peer.read_request()) is not None:
            waiting += 1
            if waiting == 2:
                two_waiting.set()
            await release.wait()
            await peer.send(answer(request.body))

    async with raw_upstream(handler) as upstream:
        calls = [asyncio.create_task(post_and_read(client, upstream.url(), str(n).encode()))
                 for n in range(6)]
        await two_waiting.wait()
        for _ in range(20):  # give the other four every chance to connect, were they allowed
            await asyncio.sleep(0)
        assert len(upstream.peers) == 2 and len(upstream.requests) == 2
        release.set()
        assert await asyncio.gather(*calls) == [str(n).encode() for n in range(6)]
    assert len(upstream.peers) == 2 and len(upstream.requests) == 6
    await client.aclose()


async def test_a_cancelled_wait_for_a_connection_gives_its_turn_away() -> None:
    client = Http1Client(connect_timeout=5, max_connections=1)
    go_on, arrived = asyncio.Event(), asyncio.Event()

    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            arrived.set()
            await go_on.wait()
            await peer.send(answer(request.body))

    async with raw_upstream(handler) as upstream:
        first = asyncio.create_task(post_and_read(client, upstream.url(), b"1"))
        queued = asyncio.create_task(post_and_read(client, upstream.url(), b"2"))
        await arrived.wait()  # the first holds the only connection; the second waits for it
        queued.cancel()
        go_on.set()
        assert await first == b"1"
        assert await post_and_read(client, upstream.url(), b"3") == b"3"
        with pytest.raises(asyncio.CancelledError):
            await queued
    await client.aclose()


async def test_closing_a_half_read_response_never_returns_its_connection(
    client: Http1Client,
) -> None:
    dropped = asyncio.Event()

    async def handler(peer: Peer) -> None:
        if peer.index > 0:
            await keep_answering(peer)
            return
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        assert await peer.read_request() is None  # the client dropped the connection
        dropped.set()

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        assert await response.next_chunk() == b"data: one\n\n"
        await response.aclose()
        assert await post_and_read(client, upstream.url()) == b"POST /v1/x HTTP/1.1"
        await dropped.wait()
    assert len(upstream.peers) == 2


async def test_reading_pauses_while_the_consumer_lags(client: Http1Client) -> None:
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB, far beyond what loopback buffers hold

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer(body))
        await keep_answering(peer)

    async with raw_upstream(handler) as upstream:
        response = await client.post(upstream.url(), b"{}", {})
        for _ in range(200):  # until the server is stuck on what we do not read
            await asyncio.sleep(0.005)
            if upstream.peers[0].writer.transport.get_write_buffer_size() > 0:
                break
        for _ in range(20):
            await asyncio.sleep(0)
        # One socket read (at most 256 KiB in asyncio) may land after the bound is crossed.
        assert response.buffered <= BUFFER_LIMIT + 256 * 1024
        assert upstream.peers[0].writer.transport.get_write_buffer_size() > 0
        assert await body_of(response) == body
        assert await post_and_read(client, upstream.url()) == b"POST /v1/x HTTP/1.1"
    assert len(upstream.peers) == 1  # read to the end, so the connection was reused


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only that server's certificate)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


async def test_https_with_a_trusted_certificate_and_keep_alive(tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path)
    client = Http1Client(connect_timeout=5, ssl_context=client_context)
    async with raw_upstream(keep_answering, ssl_context=server_context) as upstream:
        assert upstream.url().startswith("https://")
        for _ in range(2):
            assert await post_and_read(client, upstream.url()) == b"POST /v1/x HTTP/1.1"
    assert len(upstream.peers) == 1
    await client.aclose()


async def test_https_refuses_a_certificate_it_does_not_trust(tmp_path: Path) -> None:
    server_context, _ = self_signed(tmp_path)
    client = Http1Client(connect_timeout=5)  # the system's trust store
    async with raw_upstream(keep_answering, ssl_context=server_context) as upstream:
        with pytest.raises(UpstreamUnavailable, match="SSLCertVerificationError"):
            await client.post(upstream.url(), b"{}", {})
    await client.aclose()


async def test_only_http_urls_are_accepted(client: Http1Client) -> None:
    with pytest.raises(ValueError, match="not an http"):
        await client.post("ftp://127.0.0.1/x", b"", {})


async def test_a_closed_client_refuses_new_requests() -> None:
    client = Http1Client(connect_timeout=5)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.post("http://127.0.0.1:9/x", b"", {})


async def exercise_the_main_paths() -> None:
    """Keep-alive, a streamed body in pieces, a half-read response closed, the idle-close race
    and back-pressure, on whatever event loop runs it."""
    go_on = asyncio.Event()
    big = b"x" * (4 * BUFFER_LIMIT)

    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            if request.body == b"stream":
                await peer.send(CHUNKED_HEAD + chunk(b"one"))
                await go_on.wait()
                await peer.send(chunk(b"two") + LAST_CHUNK)
            elif request.body == b"half":
                await peer.send(CHUNKED_HEAD + chunk(b"one"))
            elif request.body == b"big":
                await peer.send(answer(big))
            elif request.body == b"close-next":
                await peer.send(answer(b"ok"))
                await peer.read_request()
                return
            else:
                await peer.send(answer(request.body))

    client = Http1Client(connect_timeout=5, max_connections=2)
    async with raw_upstream(handler) as upstream:
        url = upstream.url()
        assert [await post_and_read(client, url, b"%d" % n) for n in range(3)] == [
            b"0", b"1", b"2"]
        assert len(upstream.peers) == 1
        response = await client.post(url, b"stream", {})
        assert await response.next_chunk() == b"one" and not go_on.is_set()
        go_on.set()
        assert await body_of(response) == b"two"
        half = await client.post(url, b"half", {})
        assert await half.next_chunk() == b"one"
        await half.aclose()
        assert await post_and_read(client, url, b"close-next") == b"ok"
        assert await post_and_read(client, url, b"after") == b"after"  # resent once
        assert await post_and_read(client, url, b"big") == big
        assert len(upstream.peers) == 3
    await client.aclose()


def test_the_main_paths_under_uvloop() -> None:
    """uvicorn runs the gateway on uvloop when it is installed, whose transports are not
    asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(exercise_the_main_paths())


async def test_the_main_paths_under_asyncio() -> None:
    await exercise_the_main_paths()
