"""`publicRateLimit`: requests per client address per minute on the public endpoints.

The public endpoints answer anyone without a key, so they are what a stranger can call in a loop:
`/`, `/health`, `/ready`, `/info`, `/pricing`, `/robots.txt`, `/stripe/packages`, `/.well-known/*` and the API
description (`/openapi.json`, `/docs`, `/redoc`). `/metrics` is not counted (a scraper polls it on a
schedule), nor `/mcp` (its own limits), nor the admin and client APIs (they need a key; the admin
API has `adminRateLimit`), nor a preflight (`OPTIONS`). The client address is the one the gate uses
(behind a trusted proxy, the first untrusted `X-Forwarded-For` hop). Beyond the limit: 429,
`{"error", "requestId"}` and `Retry-After` (the seconds left in the minute's window).
"""

from __future__ import annotations

from collections.abc import Iterable

from paygate.core.address_rate import AddressRate
from paygate.core.netaddr import client_ip

PUBLIC_PATHS = frozenset(
    {
        "/",
        "/health",
        "/ready",
        "/info",
        "/pricing",
        "/robots.txt",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/stripe/packages",  # the reference rate-limits it as public
    }
)
MESSAGE = "Too many requests. Try again later."


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/.well-known/")


class PublicRate:
    __slots__ = ("rate", "trusted")

    def __init__(self, per_minute: int, trusted_proxies: tuple[str, ...]) -> None:
        self.rate = AddressRate(per_minute)
        self.trusted = trusted_proxies

    def retry_after(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
        """Count one request to a public endpoint: None if allowed, else the seconds to wait."""
        if not self.rate.per_minute:
            return None
        forwarded = None
        if self.trusted:
            for name, value in headers:
                if name == b"x-forwarded-for":
                    forwarded = value.decode("latin-1")
                    break
        return self.rate.retry_after(client_ip(peer, forwarded, self.trusted))
