"""CORS (`cors {origin, credentials, maxAge}`): which browser pages may read the gateway's answers.

Every response carries `Access-Control-Expose-Headers` (the reference's list, and `Retry-After`).
`Access-Control-Allow-Origin` is `*` under the default (`origin: "*"`, no credentials): nothing to
compute per request. Otherwise the request's `Origin` is reflected when it is allowed, with
`Vary: Origin` on every response so caches keep the answers apart, and
`Access-Control-Allow-Credentials: true` when `credentials` is on. Credentials with `*` reflect any
origin but `null` (the spec forbids `*` with credentials).

`/mcp` has its own, stricter Origin check (DNS-rebinding protection, mcp/http_checks.py): only
loopback pages, `allowedOrigins`, and the origins `cors.origin` lists by name (not `*`) may use it.
A page /mcp would refuse is never told by CORS that it may call /mcp: on /mcp, Allow-Origin is sent
only for an origin both allow.

`OPTIONS` on any path is a preflight, answered 204 by the outer layer (app.py) with Allow-Methods,
Allow-Headers and Max-Age when the origin is allowed (without any `Access-Control-Allow-*` when not).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from paygate.core.origins import origin_allowed

Pair = tuple[bytes, bytes]

EXPOSED = (
    "Mcp-Session-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Credits-Remaining, "
    "X-Request-Id, X-PayGate-Version, X-Cache, X-Idempotent-Replay, X-Output-Surcharge, Retry-After, "
    # what the call-path rules tell a caller (docs/traffic.md, docs/policy.md, docs/money-rules.md)
    "X-Quota-Warning, X-Dependency-Warning, X-Guardrail-Warning, Deprecation, Sunset, Link"
)
ALLOWED_METHODS = "GET, POST, DELETE, HEAD, OPTIONS"
ALLOWED_HEADERS = (
    "Content-Type, X-API-Key, X-Admin-Key, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, "
    "Last-Event-ID, X-Request-Id, X-Idempotency-Key, Accept, "
    # what a browser client of the rules sends: a signature, cost tags, its trace (docs/access-rules.md, …)
    "X-Signature, X-Cost-Tags, traceparent, tracestate"
)
ALLOW_ORIGIN = b"access-control-allow-origin"
STAR: tuple[Pair, ...] = ((ALLOW_ORIGIN, b"*"),)
NONE: tuple[Pair, ...] = ()
CREDENTIALS: Pair = (b"access-control-allow-credentials", b"true")
VARY_ORIGIN: Pair = (b"vary", b"Origin")


def mcp_origins(allowed_origins: Iterable[str], cors_origins: Iterable[str]) -> frozenset[str]:
    """The origins /mcp accepts besides loopback: `allowedOrigins` and the ones `cors.origin` names."""
    return frozenset(allowed_origins) | {o for o in cors_origins if o != "*"}


class CorsPolicy:
    """Precomputed at start; `allow` is the one per-request step (only when a request has an Origin)."""

    __slots__ = ("_any", "_credentials", "_mcp", "_origins", "_star", "preflight", "static")

    def __init__(self, origins: Collection[str], credentials: bool, max_age: int, mcp_allowed: Collection[str]) -> None:
        self._any = "*" in origins
        self._star = self._any and not credentials  # Allow-Origin: * for everyone
        self._credentials = credentials
        self._origins = frozenset(origins)
        self._mcp = frozenset(mcp_allowed)
        exposed: Pair = (b"access-control-expose-headers", EXPOSED.encode())
        self.static: tuple[Pair, ...] = (exposed,) if self._star else (exposed, VARY_ORIGIN)
        self.preflight: tuple[Pair, ...] = (
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(max_age).encode()),
        )

    @property
    def star(self) -> bool:
        """Allow-Origin is `*` whatever the request (unless /mcp refuses its origin)."""
        return self._star

    def allow(self, origin: bytes | None, mcp: bool) -> tuple[Pair, ...]:
        """The Allow-Origin (and Allow-Credentials) headers for a request with this `Origin` header
        (None: none) to /mcp or elsewhere; empty when the origin may not read the answer."""
        if origin is None:
            return STAR if self._star else NONE
        text = origin.decode("latin-1")
        if mcp and not origin_allowed(text, self._mcp):
            return NONE
        if self._star:
            return STAR
        if self._any:
            if text.strip().lower() == "null":
                return NONE
        elif text.strip().lower().rstrip("/") not in self._origins:
            return NONE
        return ((ALLOW_ORIGIN, origin), CREDENTIALS) if self._credentials else ((ALLOW_ORIGIN, origin),)
