"""Request field types shared by the admin routers (keys, policy, groups, teams, templates, import).

One definition each, so a key made with POST /keys, from a template, by an import or changed by a
policy setter holds values with exactly the same limits. Routers import these, never each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, Field
from pydantic.alias_generators import to_camel

from paygate.api.common import Body
from paygate.core.domain_errors import Invalid
from paygate.core.keys import KEY_PREFIX
from paygate.core.netaddr import normalise_entry
from paygate.core.values import MAX_CREDITS

MAX_TOOLS = 1000
MAX_IPS = 100
MAX_COUNTRIES = 250
MAX_TAGS = 50
MAX_LIMIT = 10**12  # quota and rate numbers: far above any real use, far below SQLite's integers
MAX_EXPIRY_SECONDS = 10 * 365 * 86400
MAX_DAILY_TOPUPS = 1000
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]+$"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"  # template names and aliases


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _ip_entry(text: str) -> str:
    try:
        return normalise_entry(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR block") from None


def _country(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError(f"{text!r} is not an ISO 3166-1 alpha-2 country code")
    return code


ToolName = Annotated[str, Field(min_length=1, max_length=200)]
ToolList = Annotated[list[ToolName], Field(max_length=MAX_TOOLS), AfterValidator(_unique)]
IpEntry = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_ip_entry)]
IpList = Annotated[list[IpEntry], Field(max_length=MAX_IPS), AfterValidator(_unique)]
CountryCode = Annotated[str, Field(min_length=1, max_length=8), AfterValidator(_country)]
CountryList = Annotated[list[CountryCode], Field(max_length=MAX_COUNTRIES), AfterValidator(_unique)]


def _not_a_key(alias: str) -> str:
    if alias.startswith(KEY_PREFIX):
        raise ValueError(f"an alias must not start with {KEY_PREFIX!r} (it would look like an API key)")
    return alias


# A key's alias: a name that can never be mistaken for (or take over) an API key.
Alias = Annotated[str, Field(pattern=NAME_PATTERN), AfterValidator(_not_a_key)]
Limit = Annotated[int, Field(ge=0, le=MAX_LIMIT)]
Credits = Annotated[int, Field(ge=0, le=MAX_CREDITS)]
TagName = Annotated[str, Field(min_length=1, max_length=100)]
TagValue = Annotated[str, Field(max_length=100)]
Tags = Annotated[dict[TagName, TagValue], Field(max_length=MAX_TAGS)]
NamespaceQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=NAMESPACE_PATTERN, description="only this namespace")
]
KeyQuery = Annotated[str, Query(min_length=1, max_length=200, description="the API key or its alias")]


class QuotaLimits(Body):
    """Per-key / per-group quota (0 = unlimited for that period)."""

    daily_call_limit: Limit = 0
    monthly_call_limit: Limit = 0
    daily_credit_limit: Limit = 0
    monthly_credit_limit: Limit = 0


class AutoTopupConfig(Body):
    """A key's auto-topup settings, as stored (`record.auto_topup`) and as templates, exports and imports
    carry them."""

    threshold: int = Field(ge=0, le=MAX_CREDITS)
    amount: int = Field(gt=0, le=MAX_CREDITS)
    max_daily: int = Field(default=0, ge=0, le=MAX_DAILY_TOPUPS)  # 0: unlimited


def require_one_of(body: Body, *names: str) -> None:
    """A setter of optional lists needs at least one of them (a list left out stays as it is)."""
    if all(getattr(body, name) is None for name in names):
        raise ValueError("give " + " and/or ".join(to_camel(name) for name in names))


def parse_expires_at(text: str, now: float) -> float:
    """An `expiresAt` request field: an ISO 8601 date-time with a time zone, in the future."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid("Invalid request: expiresAt must be an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise Invalid("Invalid request: expiresAt needs a time zone (e.g. Z)")
    if parsed.timestamp() <= now:
        raise Invalid("Invalid request: expiresAt is in the past")
    return parsed.timestamp()
