"""`sessionRateLimit`: new MCP sessions per client address per minute.

The address is the one the rest of the gateway uses (`core.netaddr.client_ip`: the socket peer, or
behind a trusted proxy the first untrusted `X-Forwarded-For` hop), counted in fixed one-minute
windows by `core.address_rate.AddressRate` (bounded table, IPv6 per /64): an `initialize` beyond the
limit gets 429 with `Retry-After` (seconds to the window's end) and no session.
"""

from __future__ import annotations

from paygate.core.address_rate import MAX_ADDRESSES, WINDOW_SECONDS, AddressRate

__all__ = ["MAX_ADDRESSES", "WINDOW_SECONDS", "SessionRate"]

SESSION_RATE_MESSAGE = "Too many sessions created. Try again later."


class SessionRate(AddressRate):
    """New sessions per address per minute (0: no limit)."""

    __slots__ = ()
