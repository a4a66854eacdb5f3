"""The HTTP server's connection limits through the real CLI (issue 11, items 2 and 3): header size
(431), header and request timeouts (408), keep-alive, requests per socket, connections per address.

Raw sockets, since what is tested is what a client holding a socket open sees. Every wait for a close
is a recv with a deadline, never a sleep.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway, write_config

pytestmark = pytest.mark.e2e

HEADERS_TIMEOUT = 0.5
REQUEST_TIMEOUT = 1.5
KEEP_ALIVE = 2.0
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # the reference's four flags on the command line; the other limits from the config file
    config = write_config(tmp_path_factory.mktemp("limits"), {"maxHeaderBytes": 4096})
    with running_gateway(
        "--server",
        ECHO_COMMAND,
        "--config",
        config,
        "--headers-timeout",
        str(int(HEADERS_TIMEOUT * 1000)),
        "--request-timeout",
        str(int(REQUEST_TIMEOUT * 1000)),
        "--keepalive-timeout",
        str(int(KEEP_ALIVE * 1000)),
        "--max-requests-per-socket",
        "3",
    ) as gateway:
        yield gateway


def connect(gw: Gateway, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", gw.port))
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the gateway sends until it closes the connection; fails if it is still open at the deadline."""
    data = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    sock.close()
    raise AssertionError(f"the connection was still open after {timeout:g}s (received {data[:200]!r})")


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """One response with a Content-Length body (the connection may stay open)."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_header_over_max_header_bytes_gets_431_and_the_connection_closed(gw: Gateway) -> None:
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        answer = read_until_closed(sock, 5)
    assert status(answer) == 431
    assert answer.endswith(b'{"error":"Request header fields too large"}')
    with connect(gw) as sock:  # under the limit: served
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
        assert status(read_response(sock)) == 200
    metrics = gw.client.get("/metrics").text
    assert 'paygate_connections_refused_total{reason="header_too_large"} 1.0' in metrics


def test_an_unfinished_header_is_cut_and_the_gateway_does_not_hold_what_was_sent(gw: Gateway) -> None:
    before = rss_kib(gw.proc.pid)
    chunk = b"a" * 65536
    sent_per_connection = []
    for _ in range(5):
        sent = 0
        with connect(gw) as sock:
            sock.settimeout(10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                while sent < 50 * 1024 * 1024:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            sent_per_connection.append(sent)
    # each was cut long before its 50 MB (what was sent went into the socket buffers, then was refused)
    assert max(sent_per_connection) < 16 * 1024 * 1024, sent_per_connection
    assert rss_kib(gw.proc.pid) - before < 16 * 1024, "the gateway grew by what it was sent"


def test_a_connection_that_sends_nothing_is_closed_after_the_headers_timeout(gw: Gateway) -> None:
    started = time.monotonic()
    with connect(gw) as sock:
        assert read_until_closed(sock, HEADERS_TIMEOUT + 5) == b""  # nothing had started: no answer
    assert time.monotonic() - started >= HEADERS_TIMEOUT * 0.9


def dribble_until_closed(
    sock: socket.socket, byte: bytes, deadline: float, meanwhile: Callable[[], None] = lambda: None
) -> bytes:
    """Send `byte` about every 100 ms (calling `meanwhile` each time) until the server closes the
    connection; what it answered. Fails if it is still open at `deadline`."""
    answer = b""
    while time.monotonic() < deadline:
        meanwhile()
        try:
            sock.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            return answer
        sock.settimeout(0.1)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return answer
        if not chunk:
            return answer
        answer += chunk
    raise AssertionError("the connection was still open")


def test_slowloris_headers_a_byte_at_a_time_get_408_and_the_connection_closed(gw: Gateway) -> None:
    started = time.monotonic()
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        answer = dribble_until_closed(sock, b"X", started + HEADERS_TIMEOUT + 5)  # a header that never ends
    assert time.monotonic() - started < HEADERS_TIMEOUT + 3
    assert status(answer) == 408


def test_a_slow_body_is_cut_by_the_request_timeout_while_other_connections_are_served(gw: Gateway) -> None:
    def a_normal_request() -> None:
        with connect(gw) as other:
            other.sendall(HEALTH)
            assert status(read_response(other)) == 200

    started = time.monotonic()
    with connect(gw) as slow:
        slow.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = dribble_until_closed(slow, b" ", started + REQUEST_TIMEOUT + 5, a_normal_request)
    elapsed = time.monotonic() - started
    assert REQUEST_TIMEOUT * 0.9 <= elapsed < REQUEST_TIMEOUT + 3, elapsed  # not the headers timeout
    assert status(answer) == 408


def test_a_tool_call_longer_than_the_request_timeout_is_answered(gw: Gateway) -> None:
    key = gw.create_key(10)
    reply = gw.call_tool("slow", {"seconds": REQUEST_TIMEOUT + 1}, key)
    assert "result" in reply, reply


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(gw: Gateway) -> None:
    with connect(gw) as sock:
        sock.sendall(HEALTH)
        assert status(read_response(sock)) == 200
        answered = time.monotonic()
        assert read_until_closed(sock, KEEP_ALIVE + 2) == b""
    # the keep-alive timeout, not the (shorter) headers timeout, bounds the idle time between requests
    assert time.monotonic() - answered >= KEEP_ALIVE * 0.9


def test_the_nth_response_on_a_connection_says_connection_close_and_the_connection_closes(gw: Gateway) -> None:
    with connect(gw) as sock:
        for _ in range(2):
            sock.sendall(HEALTH)
            response = read_response(sock)
            assert status(response) == 200
            assert b"connection: close" not in response.lower()
        sock.sendall(HEALTH)
        last = read_until_closed(sock, 5)
    assert status(last) == 200
    assert b"\r\nconnection: close\r\n" in last.lower()


def test_connections_per_address_are_capped_but_other_addresses_and_trusted_proxies_are_served(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"maxConnectionsPerAddress": 5})
    with running_gateway("--server", ECHO_COMMAND, "--config", config, "--trusted-proxies", "127.0.0.3") as gw:
        held = [connect(gw) for _ in range(5)]
        try:
            for sock in held:  # each admitted and served, and kept open
                sock.sendall(HEALTH)
                assert status(read_response(sock)) == 200
            with connect(gw) as sixth:
                refused = read_until_closed(sixth, 5)
            assert status(refused) == 429
            with connect(gw, "127.0.0.2") as other:  # another address is still served
                other.sendall(HEALTH)
                assert status(read_response(other)) == 200
            proxies = [connect(gw, "127.0.0.3") for _ in range(7)]  # a trusted proxy: no per-address cap
            try:
                for sock in proxies:
                    sock.sendall(HEALTH)
                    assert status(read_response(sock)) == 200
            finally:
                for sock in proxies:
                    sock.close()
            held.pop().close()  # one closed: its place is free again

            def admitted() -> bool:
                with connect(gw) as sock:
                    try:
                        sock.sendall(HEALTH)
                        return status(read_response(sock)) == 200
                    except (ConnectionError, AssertionError):  # refused: closed, maybe before its 429 was read
                        return False

            deadline = time.monotonic() + 5
            while not admitted():
                assert time.monotonic() < deadline, "a closed connection's place was never freed"
            metrics = gw.client.get("/metrics", headers={"Connection": "close"}).text
        finally:
            for sock in held:
                sock.close()
    assert 'paygate_connections_refused_total{reason="max_connections_per_address"}' in metrics
