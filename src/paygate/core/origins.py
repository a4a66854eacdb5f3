"""Browser origins: which may talk to /mcp (DNS-rebinding protection, see mcp/http_checks.py)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def normalise_origin(entry: str) -> str:
    """An `allowedOrigins` entry as compared: scheme://host[:port] in lower case, or `*`."""
    entry = entry.strip().lower().rstrip("/")
    if entry == "*":
        return entry
    try:
        parts = urlsplit(entry)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not port_ok or parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"not an origin (scheme://host[:port]): {entry!r}")
    return entry


def origin_allowed(origin: str, allowed: Collection[str]) -> bool:
    """Loopback pages always; others when listed (or `*` is)."""
    if "*" in allowed or origin.strip().lower().rstrip("/") in allowed:
        return True
    try:
        parts = urlsplit(origin.strip())
        return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS
    except ValueError:
        return False
