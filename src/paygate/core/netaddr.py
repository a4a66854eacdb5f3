"""Client addresses: parsing, IPv4-mapped IPv6 normalisation, CIDR matching, X-Forwarded-For.

Pure and cached: allowlists are parsed once per distinct list, not per call.
Without trusted proxies the socket peer is the client: X-Forwarded-For is a
header anyone can send, so it is never believed for a security decision.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_ip(text: str) -> Address | None:
    """An address, with IPv4-mapped IPv6 (`::ffff:10.0.0.1`) turned into IPv4; None if invalid."""
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_network(text: str) -> Network:
    """An exact address or a CIDR block (host bits ignored); mapped IPv6 blocks become IPv4.
    Raises ValueError for anything else."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        base = net.network_address.ipv4_mapped
        assert base is not None
        return ipaddress.IPv4Network((base, net.prefixlen - 96))
    return net


def normalise_entry(text: str) -> str:
    """The canonical spelling an allowlist stores: `10.0.0.0/8`, `1.2.3.4`, `2001:db8::/32`."""
    net = parse_network(text)
    full = 32 if net.version == 4 else 128
    return str(net.network_address) if net.prefixlen == full else str(net)


@lru_cache(maxsize=4096)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    out: list[Network] = []
    for entry in entries:
        try:
            out.append(parse_network(entry))
        except ValueError:
            continue  # stored lists are validated on the way in; never let a bad one open the door
    return tuple(out)


def ip_in(ip: str | None, entries: Iterable[str]) -> bool:
    """Is `ip` inside any of `entries` (IPs or CIDRs)? An unknown or invalid ip matches nothing."""
    if ip is None:
        return False
    addr = parse_ip(ip)
    if addr is None:
        return False
    return any(addr.version == net.version and addr in net for net in networks(tuple(entries)))


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str | None:
    """The real client address. With trusted proxies, and only when the socket peer is one of them,
    walk X-Forwarded-For right to left past trusted hops; the first untrusted hop is the client.
    A malformed hop stops the walk and is returned as is (it matches no allowlist)."""
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        return peer
    if not trusted or not forwarded_for or not ip_in(str(peer_ip), trusted):
        return str(peer_ip)
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = parse_ip(hop)
        if addr is None:
            return hop
        if not ip_in(str(addr), trusted):
            return str(addr)
    return str(parse_ip(hops[0])) if hops else str(peer_ip)
