"""The access rules' clocks and parsing (policy/ip_access.py, policy/signing.py) on a real SQLite store."""

from __future__ import annotations

import pytest

from paygate.events.hub import EventHub
from paygate.policy.ip_access import IpAccess
from paygate.policy.signing import Signing, _parse, sign
from paygate.store.sqlite import MEMORY, SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> SQLiteStore:
    s = SQLiteStore(MEMORY)
    s.open()
    return s


def test_an_automatic_block_ends_by_itself_and_old_violations_fall_out_of_the_window(store: SQLiteStore) -> None:
    clock = Clock()
    access = IpAccess(store, EventHub(), clock)
    access.configure("admin", auto_block={"enabled": True, "threshold": 2, "window_seconds": 10, "block_seconds": 60})
    access.violation("192.0.2.1", "invalid_api_key")
    clock.now += 11  # the first violation is out of the window: no block
    access.violation("192.0.2.1", "invalid_api_key")
    assert access.refusal("192.0.2.1") is None
    access.violation("192.0.2.1", "invalid_api_key")
    assert access.refusal("192.0.2.1") == "This address is blocked"
    clock.now += 61
    assert access.refusal("192.0.2.1") is None and access.view()["blocked"] == []
    assert access.active is False  # nothing left to check: the endpoint skips the rules again


def test_a_second_instance_on_the_same_store_reads_the_rules(store: SQLiteStore) -> None:
    first = IpAccess(store, EventHub())
    first.configure("admin", enabled=True, deny=["10.0.0.0/8"])
    second = IpAccess(store, EventHub())
    assert second.refusal("10.1.1.1") is None  # not loaded yet
    second.reload()
    assert second.refusal("10.1.1.1") == "This address is denied"
    signing = Signing(store, EventHub())
    signing.set_tolerance(60, "admin")
    other = Signing(store, EventHub())
    other.reload()
    assert other.tolerance == 60


@pytest.mark.parametrize(
    "header",
    [
        b"t=1,n=abcdefgh",
        b"t=1,n=abcdefgh,s=" + b"0" * 63,
        b"t=x,n=abcdefgh,s=" + b"0" * 64,
        b"t=1,t=2,n=abcdefgh,s=" + b"0" * 64,
        b"t=1,n=short,s=" + b"0" * 64,
        b"\xff",
        b"t=1,n=abcdefgh,s=0,x=1",
    ],
)
def test_malformed_signature_headers_are_refused(header: bytes) -> None:
    assert _parse(header) is None


def test_a_signature_parses_back_to_its_parts() -> None:
    value = sign("secret", b"{}", 1_800_000_000, "nonce-123")
    parsed = _parse(value.encode())
    assert parsed is not None and parsed[:2] == (1_800_000_000, "nonce-123")
