"""HTTP conventions every response follows: CORS, custom headers, and the rate limits outside /mcp.

`Settings` inherits these fields (the reference's names: `cors`, `customHeaders`, `publicRateLimit`,
`adminRateLimit`); the logic that applies them is in paygate/http/ (cors.py, response_headers.py)
and the admin guard (api/common.py). Everything is checked here, at start: a header the gateway
could not send, or one it owns, stops `wrap` with a clear message instead of failing per request.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from paygate.core.origins import normalise_origin

MAX_CUSTOM_HEADERS = 50
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_VALUE = re.compile(r"^[\t\x20-\x7e]{0,4096}$")  # visible ASCII, spaces and tabs: no CR, LF, NUL, obs-text
# Headers the gateway sets itself (or HTTP framing owns): a custom header may not replace them.
OWNED_HEADERS = frozenset(
    {
        "x-request-id",
        "x-paygate-version",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "host",
        "date",
        "server",
        "vary",
        "location",
        "retry-after",
        "mcp-session-id",
        "mcp-protocol-version",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-credits-remaining",
        "x-output-surcharge",
        "x-cache",
        "x-idempotent-replay",
        "x-accel-buffering",
    }
)
OWNED_PREFIXES = ("access-control-", "proxy-")  # CORS headers come from `cors`


class CorsConfig(BaseModel):
    """`cors`: which browser origins may read the answers (http/cors.py)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    # "*" (default), one origin, "a,b", or a list; compared as scheme://host[:port] in lower case.
    origin: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=100)
    credentials: bool = False  # Access-Control-Allow-Credentials: true (with "*": the origin is reflected)
    max_age: int = Field(default=86_400, ge=0, le=7 * 86_400)  # Access-Control-Max-Age of a preflight, seconds

    @field_validator("origin", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p for p in (part.strip() for part in v.split(",")) if p]
            if not v:
                raise ValueError("empty: use '*' or scheme://host[:port]")
        if not isinstance(v, list):
            return v
        return [normalise_origin(str(p)) for p in v]

    @property
    def any_origin(self) -> bool:
        return "*" in self.origin


def parse_header_spec(spec: str | list[str]) -> dict[str, str]:
    """`--header` / PAYGATE_CUSTOM_HEADERS: "K:V,K2:V2" (the flag may be repeated). A part without a
    `Name:` of its own continues the previous value, so "Cache-Control:no-cache, no-store" is one
    header (the reference would split it)."""
    out: dict[str, str] = {}
    last: str | None = None
    for item in [spec] if isinstance(spec, str) else spec:
        for part in str(item).split(","):
            name, sep, value = part.partition(":")
            if sep and _TOKEN.match(name.strip()):
                last = name.strip()
                out[last] = value.strip()
            elif last is not None:
                out[last] = f"{out[last]},{part}".strip()
            elif part.strip():
                raise ValueError(f"expected Name:value, got {part.strip()[:100]!r}")
    return out


def check_custom_headers(headers: dict[str, str]) -> dict[str, str]:
    """Every name a token, every value sendable as is, none the gateway owns (ValueError says which)."""
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise ValueError(f"at most {MAX_CUSTOM_HEADERS} custom headers")
    seen: set[str] = set()
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            raise ValueError(f"{name!r}: the value must be a string")
        if not _TOKEN.match(name):
            raise ValueError(f"{name[:100]!r} is not a valid header name")
        lowered = name.lower()
        if lowered in OWNED_HEADERS or lowered.startswith(OWNED_PREFIXES):
            raise ValueError(f"{name!r} is set by the gateway itself and cannot be a custom header")
        if lowered in seen:
            raise ValueError(f"{name!r} is given twice")
        seen.add(lowered)
        value = value.strip()
        if not _VALUE.match(value):
            raise ValueError(
                f"{name!r}: the value may hold only visible ASCII, spaces and tabs (no CR, LF), 4096 at most"
            )
        out[name] = value
    return out


class HttpSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    cors: CorsConfig = Field(default_factory=CorsConfig)
    # Added to every response (preflights, errors and /mcp included); they replace the built-in
    # security headers of the same name (http/response_headers.py).
    custom_headers: dict[str, str] = Field(default_factory=dict)
    # Requests per client address per minute on the public endpoints (http/public_rate.py); 0 = no limit.
    public_rate_limit: int = Field(default=300, ge=0, le=1_000_000)
    # Requests per client address per minute on the admin API, whatever their key; 0 = no limit.
    admin_rate_limit: int = Field(default=120, ge=0, le=1_000_000)

    @field_validator("custom_headers", mode="before")
    @classmethod
    def _custom_headers(cls, v: Any) -> Any:
        if isinstance(v, str | list):
            v = parse_header_spec(v)
        if not isinstance(v, dict):
            return v
        return check_custom_headers(v)
