"""`adminRateLimit`: requests per client address per minute on the admin API.

Every request to an admin route counts, whatever its key (a correct one, a wrong one or none), as
the reference counts them; beyond the limit the address gets 429 with `Retry-After` (the seconds
left in the minute's window) until the window ends. Counted before the key is looked at, so it
also caps how fast one address can try keys. Separate from the failed-authentication throttle
(auth_throttle.py, `authFailureLimit`), which counts only failures and is much stricter. The
table is `core.address_rate.AddressRate` (bounded, IPv6 per /64). A preflight (`OPTIONS`) never
reaches an admin route, so it is not counted.
"""

from __future__ import annotations

from paygate.core.address_rate import AddressRate
from paygate.core.domain_errors import TooMany

MESSAGE = "Too many admin requests. Try again later."


class AdminRateLimited(TooMany):
    """Over `adminRateLimit` from this address; `retry_after` seconds left in the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(MESSAGE, retryAfterSeconds=retry_after)
        self.retry_after = retry_after


class AdminRate(AddressRate):
    """Admin requests per address per minute (0: no limit)."""

    __slots__ = ()

    def check(self, address: str | None) -> None:
        """Count one admin request from `address`; raise AdminRateLimited beyond the limit."""
        wait = self.retry_after(address)
        if wait is not None:
            raise AdminRateLimited(wait)
