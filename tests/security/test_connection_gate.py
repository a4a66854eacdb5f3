"""The HTTP server's connection accounting (paygate/http/server.py): caps in all and per address,
trusted proxies exempt, places freed on close, the cap kept under the file limit."""

from __future__ import annotations

import resource

from paygate.http.server import FD_RESERVE, ConnectionGate, ServerLimits, connection_cap, raise_fd_limit


def limits(total: int = 100, per_address: int = 2, trusted: tuple[str, ...] = ()) -> ServerLimits:
    return ServerLimits(
        max_connections=total,
        max_connections_per_address=per_address,
        headers_timeout=10,
        request_timeout=30,
        keep_alive_timeout=65,
        max_requests_per_socket=0,
        max_header_bytes=16384,
        trusted_proxies=trusted,
    )


def test_the_per_address_cap_refuses_the_next_connection_from_that_address_only() -> None:
    gate = ConnectionGate(limits(per_address=2))
    assert gate.admit("10.0.0.1") == (None, "10.0.0.1")
    assert gate.admit("10.0.0.1") == (None, "10.0.0.1")
    assert gate.admit("10.0.0.1") == ("max_connections_per_address", None)
    assert gate.admit("10.0.0.2") == (None, "10.0.0.2")
    assert gate.open == 3
    assert gate.refused["max_connections_per_address"] == 1


def test_a_closed_connection_frees_its_place_and_its_address_entry() -> None:
    gate = ConnectionGate(limits(per_address=1))
    _, counted = gate.admit("10.0.0.1")
    assert gate.admit("10.0.0.1")[0] == "max_connections_per_address"
    gate.release(counted)
    assert gate.open == 0
    assert gate.by_address == {}  # bounded by the connections open, not by the addresses ever seen
    assert gate.admit("10.0.0.1") == (None, "10.0.0.1")


def test_trusted_proxies_are_exempt_from_the_per_address_cap_but_not_from_the_total() -> None:
    gate = ConnectionGate(limits(total=5, per_address=1, trusted=("10.1.0.0/16",)))
    for _ in range(5):
        assert gate.admit("10.1.2.3") == (None, None)
    assert gate.admit("10.1.2.3") == ("max_connections", None)
    assert gate.admit("10.9.9.9") == ("max_connections", None)
    assert gate.refused["max_connections"] == 2
    for _ in range(5):
        gate.release(None)
    assert gate.open == 0


def test_no_per_address_cap_when_it_is_zero() -> None:
    gate = ConnectionGate(limits(total=3, per_address=0))
    assert [gate.admit("10.0.0.1")[0] for _ in range(4)] == [None, None, None, "max_connections"]


def test_the_connection_cap_stays_under_the_file_limit_less_a_reserve() -> None:
    assert connection_cap(10_000, 1024) == 1024 - FD_RESERVE
    assert connection_cap(500, 1024) == 500
    assert connection_cap(10_000, 200) == 100  # a small limit: half of it
    assert connection_cap(10_000, 1) == 1
    assert connection_cap(10_000, resource.RLIM_INFINITY) == 10_000


def test_the_soft_file_limit_is_raised_toward_what_the_cap_needs_never_past_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        want = soft + 10 if hard == resource.RLIM_INFINITY else min(soft + 10, hard)
        assert raise_fd_limit(want) == want
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == want
        assert raise_fd_limit(want - 5) == want  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
