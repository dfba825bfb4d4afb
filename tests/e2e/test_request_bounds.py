"""The bounds on what a client may send before any route runs, against a live `cometgate serve`
on raw sockets: header size and count (431), the time to send a head or a body (408), and a
half-closed client that still gets every pipelined answer.

The gateway here has short clocks (1 s) so the tests stay short; its model points at a closed
port, since nothing here reaches an upstream.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import LiveGateway, start_gateway

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SLACK = 2.5  # scheduling on a busy 2-core machine
CONFIG = f"""
server:
  max_header_bytes: 32768
  max_headers: 100
  header_timeout: {HEADER_TIMEOUT}
  body_timeout: {BODY_TIMEOUT}
  body_min_rate: 65536
providers:
  nowhere: {{kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models:
  far:
    provider: nowhere
    input_token_limit: 1000
    output_token_limit: 100
"""


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory,
            pytestconfig: pytest.Config) -> Iterator[LiveGateway]:
    yield from start_gateway(tmp_path_factory.mktemp("bounds"), pytestconfig, CONFIG)


def connect(gateway: LiveGateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.settimeout(10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or resets after its answer)."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece


def status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body)


def rss_kib(pid: int) -> int:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_header_that_never_ends_is_refused_431_without_growing(bounded: LiveGateway) -> None:
    before = rss_kib(bounded.pid)
    sock = connect(bounded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-long: ")
    sent = 0
    answered = False
    sock.settimeout(0.05)
    while sent < 64 * 1024 * 1024:  # the gateway must answer long before this
        try:
            sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 65536
        try:
            if sock.recv(1, socket.MSG_PEEK):
                answered = True
                break
        except TimeoutError:
            continue
    sock.settimeout(10)
    answer = read_all(sock)
    sock.close()
    assert answered or answer
    assert sent <= 2 * 1024 * 1024, f"{sent} bytes of one header were accepted"
    status, body = status_and_body(answer)
    assert status == 431
    assert body == {"error": {"code": 431, "message": "Request header fields exceed 32768 bytes.",
                              "status": "INVALID_ARGUMENT"}}
    assert rss_kib(bounded.pid) - before < 16 * 1024


def test_an_8_mib_header_is_refused_431(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"b" * (8 * 1024 * 1024)
    try:
        sock.sendall(request + b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gateway stopped listening once it had answered
    status, body = status_and_body(read_all(sock))
    sock.close()
    assert status == 431
    assert body["error"] == {"code": 431, "status": "INVALID_ARGUMENT",
                             "message": "Request header fields exceed 32768 bytes."}


def test_twenty_thousand_headers_are_refused_431(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(20_000))
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + fields + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _ = status_and_body(read_all(sock))
    sock.close()
    assert status == 431


def test_more_header_fields_than_allowed_are_refused_431(bounded: LiveGateway) -> None:
    """101 small fields: well under the byte limit, over the count."""
    sock = connect(bounded)
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(100))
    sock.sendall(b"GET /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + fields + b"\r\n")
    status, body = status_and_body(read_all(sock))
    sock.close()
    assert status == 431
    # The path names the OpenAI dialect, so the refusal is in its envelope.
    assert body == {"error": {"message": "Request has more than 100 header fields.",
                              "type": "invalid_request_error", "param": None, "code": None}}


def test_a_hundred_header_fields_are_accepted(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(98))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + fields + b"connection: close\r\n\r\n")
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_slowloris_is_closed_with_408_within_the_header_timeout(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nx-slow: ")
    sock.settimeout(0.2)
    answer = b""
    for _ in range(100):  # one byte of a header every 0.2 s, never ending
        try:
            answer = sock.recv(65536)
            break
        except TimeoutError:
            sock.sendall(b"a")
    sock.settimeout(10)
    answer += read_all(sock)
    elapsed = time.monotonic() - started
    sock.close()
    status, body = status_and_body(answer)
    assert status == 408
    assert body["error"] == {"code": 408, "status": "DEADLINE_EXCEEDED",
                             "message": "Timed out waiting for the request header fields."}
    assert HEADER_TIMEOUT - 0.1 <= elapsed < HEADER_TIMEOUT + SLACK


def test_a_silent_connection_is_closed_with_408(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    started = time.monotonic()
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < HEADER_TIMEOUT + SLACK


@pytest.mark.parametrize(("path", "auth", "envelope"), [
    ("/v1beta/models/far:generateContent", b"x-goog-api-key", {
        "error": {"code": 408, "status": "DEADLINE_EXCEEDED",
                  "message": "Timed out reading the request body (9 bytes received)."}}),
    ("/v1/chat/completions", b"authorization", {
        "error": {"message": "Timed out reading the request body (9 bytes received).",
                  "type": "invalid_request_error", "param": None, "code": None}}),
])
def test_a_half_sent_body_is_answered_408_within_the_bound(
    bounded: LiveGateway, path: str, auth: bytes, envelope: dict[str, object],
) -> None:
    key = bounded.key.encode()
    credential = b"Bearer " + key if auth == b"authorization" else key
    sock = connect(bounded)
    started = time.monotonic()
    sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\n"
                 b"content-type: application/json\r\ncontent-length: 1000\r\n"
                 + auth + b": " + credential + b"\r\n\r\n" + b'{"content')
    answer = read_all(sock)
    elapsed = time.monotonic() - started
    sock.close()
    assert status_and_body(answer) == (408, envelope)
    assert b"\r\nconnection: close\r\n" in answer.partition(b"\r\n\r\n")[0].lower() + b"\r\n"
    assert BODY_TIMEOUT - 0.1 <= elapsed < BODY_TIMEOUT + SLACK


def test_a_half_closed_client_gets_every_pipelined_answer(bounded: LiveGateway) -> None:
    sock = connect(bounded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n" * 3)
    sock.shutdown(socket.SHUT_WR)
    answer = read_all(sock)
    sock.close()
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer


def test_a_body_nobody_reads_does_not_keep_the_connection(bounded: LiveGateway) -> None:
    """A route that reads no body answers at once; the rest of a trickled body is not waited
    for: the connection closes after the answer."""
    sock = connect(bounded)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n" + b"x" * 10)
    sock.settimeout(0.3)
    answer = b""
    for _ in range(40):  # a byte every 0.3 s for up to 12 s, unless the gateway hangs up
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            continue
        except ConnectionResetError:
            break
        if not piece:
            break
        answer += piece
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < 2.0 + SLACK  # the answer, then a 2 s linger at most
