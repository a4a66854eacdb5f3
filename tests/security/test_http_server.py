"""The HTTP server's limits leave ordinary traffic alone (the in-process gateway serves with the same
server as `wrap`: paygate/http/server.py). The limits themselves are exercised through the real CLI
in tests/e2e/test_security_connections.py."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway(
        "--server", ECHO_COMMAND, "--headers-timeout", "300", "--request-timeout", "600"
    ) as gateway:
        yield gateway


def responses(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """`count` responses with Content-Length bodies, read off one connection."""
    data, out = b"", []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) if b"content-length:" in head else 0
            if len(data) >= end + 4 + length:
                out.append(data[: end + 4 + length])
                data = data[end + 4 + length :]
                continue
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(out)} responses: {data!r}"
        data += chunk
    return out


def test_a_body_far_over_the_header_limit_sent_with_its_headers_in_one_write_is_served(gw: InProcessGateway) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 200_000}})
    head = b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        (answer,) = responses(sock, 1)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_pipelined_requests_are_all_answered_in_order(gw: InProcessGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(b"".join(b"GET /health?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        answers = responses(sock, 5)
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)


def test_requests_on_a_kept_alive_connection_each_get_a_fresh_headers_timeout(gw: InProcessGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        deadline = time.monotonic() + 1.0  # over three headers timeouts, one connection
        while time.monotonic() < deadline:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert responses(sock, 1)[0].startswith(b"HTTP/1.1 200")


def test_a_request_whose_headers_come_in_pieces_within_the_timeout_is_served(gw: InProcessGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        for piece in (b"GET /hea", b"lth HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(piece)
        assert responses(sock, 1)[0].startswith(b"HTTP/1.1 200")


def test_a_long_poll_is_not_cut_by_the_request_timeout(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    reply = gw.call_tool("slow", {"seconds": 1.0}, key)  # longer than the 600 ms request timeout
    assert "result" in reply, reply


def test_an_upgrade_request_is_served_as_plain_http_and_the_connection_kept(gw: InProcessGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n")
        assert responses(sock, 1)[0].startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert responses(sock, 1)[0].startswith(b"HTTP/1.1 200")


def test_over_max_connections_a_new_connection_gets_503_and_is_closed(tmp_path: Path) -> None:
    config = tmp_path / "limits.json"
    config.write_text('{"maxConnections": 3}')
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", str(config)) as gateway:
        held = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(3)]
        try:
            for sock in held:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert responses(sock, 1)[0].startswith(b"HTTP/1.1 200")
            with socket.create_connection(("127.0.0.1", gateway.port)) as fourth:
                fourth.settimeout(10)
                refused = fourth.recv(65536)
                assert refused.startswith(b"HTTP/1.1 503"), refused
                assert fourth.recv(65536) == b""
            held.pop().close()

            def served() -> bool:
                with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
                    try:
                        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        return responses(sock, 1)[0].startswith(b"HTTP/1.1 200")
                    except (ConnectionError, AssertionError):
                        return False

            deadline = time.monotonic() + 5
            while not served():
                assert time.monotonic() < deadline, "a closed connection's place was never freed"
        finally:
            for sock in held:
                sock.close()
