"""Client addresses: CIDR matching (IPv4, IPv6, IPv4-mapped IPv6) and X-Forwarded-For walking."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.core.netaddr import client_ip, ip_in, normalise_entry, parse_ip

v4 = st.integers(0, 2**32 - 1).map(lambda n: ipaddress.IPv4Address(n))
v6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n)).filter(lambda a: a.ipv4_mapped is None)


@given(v4, v4, st.integers(0, 32))
def test_ipv4_cidr_membership_matches_the_bit_prefix(
    addr: ipaddress.IPv4Address, base: ipaddress.IPv4Address, prefix: int
) -> None:
    block = f"{base}/{prefix}"
    shift = 32 - prefix
    expected = (int(addr) >> shift) == (int(base) >> shift) if prefix else True
    assert ip_in(str(addr), [block]) is expected


@given(v6, v6, st.integers(0, 128))
def test_ipv6_cidr_membership_matches_the_bit_prefix(
    addr: ipaddress.IPv6Address, base: ipaddress.IPv6Address, prefix: int
) -> None:
    shift = 128 - prefix
    expected = (int(addr) >> shift) == (int(base) >> shift) if prefix else True
    assert ip_in(str(addr), [f"{base}/{prefix}"]) is expected


@given(v4, v4, st.integers(0, 32))
def test_ipv4_mapped_addresses_match_like_their_ipv4_address(
    addr: ipaddress.IPv4Address, base: ipaddress.IPv4Address, prefix: int
) -> None:
    mapped = f"::ffff:{addr}"
    assert ip_in(mapped, [f"{base}/{prefix}"]) is ip_in(str(addr), [f"{base}/{prefix}"])
    # a mapped block in the allowlist means the same IPv4 block
    assert ip_in(str(addr), [f"::ffff:{base}/{96 + prefix}"]) is ip_in(str(addr), [f"{base}/{prefix}"])


@given(v4, v6)
def test_families_never_match_each_other(a4: ipaddress.IPv4Address, a6: ipaddress.IPv6Address) -> None:
    assert not ip_in(str(a4), ["::/0"])
    assert not ip_in(str(a6), ["0.0.0.0/0"])


@pytest.mark.parametrize("bad", [None, "", "not-an-ip", "1.2.3", "999.1.1.1"])
def test_unknown_or_invalid_addresses_match_nothing(bad: str | None) -> None:
    assert not ip_in(bad, ["0.0.0.0/0", "::/0"])


def test_exact_entries_and_normalised_spellings() -> None:
    assert ip_in("10.1.2.3", ["10.1.2.3"]) and not ip_in("10.1.2.4", ["10.1.2.3"])
    assert normalise_entry("10.1.2.3/8") == "10.0.0.0/8"
    assert normalise_entry("10.1.2.3/32") == "10.1.2.3"
    assert normalise_entry("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalise_entry("2001:DB8::1/32") == "2001:db8::/32"
    assert parse_ip("::ffff:192.168.0.1") == ipaddress.IPv4Address("192.168.0.1")
    with pytest.raises(ValueError):
        normalise_entry("10.0.0.0/33")


TRUSTED = ("10.0.0.0/8", "192.168.1.1")


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("203.0.113.9", "1.1.1.1", (), "203.0.113.9"),  # no trusted proxies: the header is ignored
        ("203.0.113.9", "1.1.1.1", TRUSTED, "203.0.113.9"),  # peer not a trusted proxy: ignored
        ("10.0.0.5", "1.1.1.1", TRUSTED, "1.1.1.1"),
        ("10.0.0.5", "6.6.6.6, 1.1.1.1, 10.2.2.2", TRUSTED, "1.1.1.1"),  # right to left, past trusted hops
        ("10.0.0.5", "1.1.1.1, 192.168.1.1", TRUSTED, "1.1.1.1"),
        ("10.0.0.5", "10.1.1.1, 10.2.2.2", TRUSTED, "10.1.1.1"),  # all trusted: the leftmost
        ("10.0.0.5", "garbage, 10.2.2.2", TRUSTED, "garbage"),  # a malformed hop stops the walk
        ("10.0.0.5", None, TRUSTED, "10.0.0.5"),
        ("::ffff:10.0.0.5", "::ffff:1.1.1.1", TRUSTED, "1.1.1.1"),  # mapped peers and hops are normalised
    ],
)
def test_forwarded_for_is_walked_only_from_trusted_proxies(
    peer: str, xff: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    assert client_ip(peer, xff, trusted) == expected


@given(st.lists(v4.map(str), min_size=1, max_size=6), v4.map(str))
def test_a_spoofed_left_entry_never_beats_the_first_untrusted_hop(hops: list[str], client: str) -> None:
    """Whatever a client prepends, the answer is the hop the trusted proxy appended (the real peer it saw)."""
    if ip_in(client, TRUSTED):
        return
    chain = ", ".join([*hops, client, "10.9.9.9"])
    assert client_ip("10.0.0.1", chain, TRUSTED) == client
