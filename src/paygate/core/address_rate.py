"""Requests per client address per minute, in fixed one-minute windows (pure; the clock is passed in).

One counter table serves every per-address limit that is not about a key: new MCP sessions
(`sessionRateLimit`), the public endpoints (`publicRateLimit`) and the admin API (`adminRateLimit`).
The window is shared by all addresses: at its end the whole table is emptied, so it never holds more
than one minute's addresses, and at most `max_addresses` of those (addresses beyond it in one window
are not counted: the table stays bounded whatever a flood of sources does). IPv6 addresses are
counted per /64 (one host usually holds a whole /64: one address each would be free to change).
A refusal says how long until the window ends (`Retry-After`).
"""

from __future__ import annotations

import ipaddress
import math
import time

from paygate.core.netaddr import parse_ip

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 100_000


def counted_as(address: str) -> str:
    """What an address is counted under: IPv4 as is, IPv6 by its /64."""
    if ":" not in address:
        return address
    ip = parse_ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip) if ip is not None else address


class AddressRate:
    """At most `per_minute` requests per address in each window; 0 = no limit."""

    __slots__ = ("_counts", "_window", "max_addresses", "per_minute")

    def __init__(self, per_minute: int, max_addresses: int = MAX_ADDRESSES) -> None:
        self.per_minute = per_minute
        self.max_addresses = max_addresses
        self._window = 0.0
        self._counts: dict[str, int] = {}

    @property
    def size(self) -> int:
        """Addresses counted in this window (no `__len__`: an empty table must not be falsy)."""
        return len(self._counts)

    def retry_after(self, address: str | None, now: float | None = None) -> int | None:
        """Count one request from `address`: None if allowed, else the seconds to wait."""
        if not self.per_minute or address is None:
            return None
        now = time.time() if now is None else now
        if now - self._window >= WINDOW_SECONDS or now < self._window:
            self._window = now
            self._counts.clear()
        key = counted_as(address)
        count = self._counts.get(key, 0)
        if count >= self.per_minute:
            return max(1, math.ceil(self._window + WINDOW_SECONDS - now))
        if count or len(self._counts) < self.max_addresses:
            self._counts[key] = count + 1
        return None
