"""Per-key policy: ACL, expiry, suspend/resume, spending limits, quotas, IP allowlists, countries.

Setters change only the fields a request names: a field left out keeps its
value, so a request can never loosen a limit it did not mention. Every request
is validated in full before the (cached, live) key record is touched.

The field types here (tool lists, IP lists, country codes, quota limits, tags)
are shared with the groups and teams endpoints.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, Field, model_validator
from pydantic.alias_generators import to_camel

from paygate.api.common import ApiError, Body, KeyRefField, actor, find_key, require_admin
from paygate.core.netaddr import normalise_entry
from paygate.core.policy import QUOTA_FIELDS
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.keys.service import KeyConflict
from paygate.runtime import Runtime

MAX_TOOLS = 1000
MAX_IPS = 100
MAX_COUNTRIES = 250
MAX_LIMIT = 10**12  # quota and rate numbers: far above any real use, far below SQLite's integers
MAX_EXPIRY_SECONDS = 10 * 365 * 86400


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
Limit = Annotated[int, Field(ge=0, le=MAX_LIMIT)]
Credits = Annotated[int, Field(ge=0, le=MAX_CREDITS)]
TagText = Annotated[str, Field(min_length=1, max_length=100)]
KeyQuery = Annotated[str, Query(min_length=1, max_length=200, description="the API key or its alias")]
Tags = Annotated[dict[TagText, Annotated[str, Field(max_length=100)]], Field(max_length=50)]


class QuotaLimits(Body):
    """Per-key / per-group quota (0 = unlimited for that period)."""

    daily_call_limit: Limit = 0
    monthly_call_limit: Limit = 0
    daily_credit_limit: Limit = 0
    monthly_credit_limit: Limit = 0


# --- request bodies ---------------------------------------------------------------------------------


def require_one_of(body: Body, *names: str) -> None:
    """A setter of optional lists needs at least one of them (a list left out stays as it is)."""
    if all(getattr(body, name) is None for name in names):
        raise ValueError("give " + " and/or ".join(to_camel(name) for name in names))


class AclBody(Body):
    key: KeyRefField
    allowed_tools: ToolList | None = None
    denied_tools: ToolList | None = None

    @model_validator(mode="after")
    def _something(self) -> AclBody:
        require_one_of(self, "allowed_tools", "denied_tools")
        return self


class ExpiryBody(Body):
    key: KeyRefField
    expires_in: int | None = Field(default=None, gt=0, le=MAX_EXPIRY_SECONDS)
    expires_at: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> ExpiryBody:
        given = self.model_fields_set & {"expires_in", "expires_at"}
        if len(given) != 1:
            raise ValueError("give expiresIn (seconds), expiresAt (ISO 8601), or expiresAt: null to remove expiry")
        if "expires_in" in given and self.expires_in is None:
            raise ValueError("expiresIn must be a number of seconds; use expiresAt: null to remove expiry")
        return self


class SuspendBody(Body):
    key: KeyRefField
    reason: str | None = Field(default=None, max_length=500)


class ResumeBody(Body):
    key: KeyRefField


class LimitBody(Body):
    key: KeyRefField
    spending_limit: Credits


class KeyQuotaBody(QuotaLimits):
    key: KeyRefField
    remove: bool = False

    @model_validator(mode="after")
    def _set_or_remove(self) -> KeyQuotaBody:
        limits = self.model_fields_set - {"key", "remove"}
        if self.remove and limits:
            raise ValueError("give remove: true or limits, not both")
        if not self.remove and not limits:
            raise ValueError("give at least one of dailyCallLimit, monthlyCallLimit, dailyCreditLimit, "
                             "monthlyCreditLimit, or remove: true")
        return self


class IpBody(Body):
    key: KeyRefField
    ips: IpList


class GeoBody(Body):
    key: KeyRefField
    allowed_countries: CountryList | None = None
    denied_countries: CountryList | None = None

    @model_validator(mode="after")
    def _something(self) -> GeoBody:
        require_one_of(self, "allowed_countries", "denied_countries")
        return self


# --- helpers ----------------------------------------------------------------------------------------


def parse_expires_at(text: str, now: float) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, "Invalid request: expiresAt must be an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise ApiError(400, "Invalid request: expiresAt needs a time zone (e.g. Z)")
    if parsed.timestamp() <= now:
        raise ApiError(400, "Invalid request: expiresAt is in the past")
    return parsed.timestamp()


def live_key(rt: Runtime, ref: str) -> KeyRecord:
    """The named key (raw or alias); 404 if unknown, 409 if revoked (a revoked key's policy is moot)."""
    record = find_key(rt, ref)
    if not record.active:
        raise ApiError(409, "API key is revoked")
    return record


def geo_view(record: KeyRecord) -> dict[str, Any]:
    return {"keyMasked": record.masked, "allowedCountries": record.allowed_countries,
            "deniedCountries": record.denied_countries}


def router(rt: Runtime) -> APIRouter:
    # async routes: they run on the event loop, so a change never interleaves with a gate decision
    # or with another admin request (each is validate → mutate → one short commit, no awaits).
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["policy"])

    @r.post("/keys/acl")
    async def set_acl(body: AclBody, request: Request) -> dict[str, Any]:
        """Set a key's tool allow list and/or deny list (a list left out is unchanged; [] clears)."""
        record = live_key(rt, body.key)
        if body.allowed_tools is not None:
            record.allowed_tools = body.allowed_tools
        if body.denied_tools is not None:
            record.denied_tools = body.denied_tools
        rt.store.update_key(record)
        rt.events.publish("key.acl_updated", actor(request), keyMasked=record.masked,
                          allowedTools=record.allowed_tools, deniedTools=record.denied_tools)
        return {"message": "ACL updated", "keyMasked": record.masked, "allowedTools": record.allowed_tools,
                "deniedTools": record.denied_tools}

    @r.post("/keys/expiry")
    async def set_expiry(body: ExpiryBody, request: Request) -> dict[str, Any]:
        """Set (expiresIn seconds or expiresAt) or remove (expiresAt: null) a key's expiry."""
        record = live_key(rt, body.key)
        now = time.time()
        if body.expires_in is not None:
            expires_at: float | None = now + body.expires_in
        elif body.expires_at is not None:
            expires_at = parse_expires_at(body.expires_at, now)
        else:
            expires_at = None
        record.expires_at = expires_at
        rt.store.update_key(record)
        rt.events.publish("key.expiry_updated", actor(request), keyMasked=record.masked,
                          expiresAt=iso_time(expires_at))
        message = "Expiry removed" if expires_at is None else "Expiry set"
        return {"message": message, "keyMasked": record.masked, "expiresAt": iso_time(expires_at)}

    @r.post("/keys/suspend")
    async def suspend(body: SuspendBody, request: Request) -> dict[str, Any]:
        """Deny a key at the gate until resumed (admin operations keep working on it)."""
        record = find_key(rt, body.key)
        try:
            rt.keys.suspend(record, body.reason)
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.suspended", actor(request), keyMasked=record.masked, reason=body.reason)
        return {"message": "Key suspended", "keyMasked": record.masked, "suspended": True, "reason": body.reason}

    @r.post("/keys/resume")
    async def resume(body: ResumeBody, request: Request) -> dict[str, Any]:
        """Lift a suspension."""
        record = find_key(rt, body.key)
        try:
            rt.keys.resume(record)
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.resumed", actor(request), keyMasked=record.masked)
        return {"message": "Key resumed", "keyMasked": record.masked, "suspended": False}

    @r.post("/limits")
    async def set_limit(body: LimitBody, request: Request) -> dict[str, Any]:
        """Cap the total credits a key may spend (0 removes the cap)."""
        record = live_key(rt, body.key)
        record.spending_limit = body.spending_limit
        rt.store.update_key(record)
        limit = record.spending_limit or None
        remaining = max(0, record.spending_limit - record.total_spent) if limit else None
        rt.events.publish("key.limit_updated", actor(request), keyMasked=record.masked, spendingLimit=limit)
        return {"message": "Spending limit updated" if limit else "Spending limit removed",
                "keyMasked": record.masked, "spendingLimit": limit, "totalSpent": record.total_spent,
                "remainingBudget": remaining}

    @r.post("/keys/quota")
    async def set_quota(body: KeyQuotaBody, request: Request) -> dict[str, Any]:
        """Set a key's daily/monthly call and credit limits, or remove its own quota (remove: true)."""
        record = live_key(rt, body.key)
        if body.remove:
            quota: dict[str, int] | None = None
        else:
            current = record.quota or {}
            given = body.model_dump(by_alias=True, exclude_unset=True, exclude={"key", "remove"})
            quota = {name: int(given.get(name, current.get(name) or 0)) for name in QUOTA_FIELDS}
        record.quota = quota
        rt.store.update_key(record)
        rt.events.publish("key.quota_updated", actor(request), keyMasked=record.masked, quota=quota)
        return {"message": "Quota removed" if quota is None else "Quota updated", "keyMasked": record.masked,
                "quota": quota}

    @r.post("/keys/ip")
    async def set_ips(body: IpBody, request: Request) -> dict[str, Any]:
        """Replace a key's IP allowlist (exact addresses and CIDR blocks; [] allows every address)."""
        record = live_key(rt, body.key)
        record.ip_allowlist = body.ips
        rt.store.update_key(record)
        rt.events.publish("key.ip_updated", actor(request), keyMasked=record.masked, ipAllowlist=body.ips)
        return {"message": "IP allowlist updated" if body.ips else "IP allowlist cleared",
                "keyMasked": record.masked, "ipAllowlist": body.ips}

    @r.get("/keys/geo")
    async def get_geo(key: KeyQuery) -> dict[str, Any]:
        """A key's country allow and deny lists."""
        return geo_view(find_key(rt, key))

    @r.post("/keys/geo")
    async def set_geo(body: GeoBody, request: Request) -> dict[str, Any]:
        """Set a key's allowed and/or denied countries (a list left out is unchanged; [] clears)."""
        record = live_key(rt, body.key)
        if body.allowed_countries is not None:
            record.allowed_countries = body.allowed_countries
        if body.denied_countries is not None:
            record.denied_countries = body.denied_countries
        rt.store.update_key(record)
        rt.events.publish("key.geo_updated", actor(request), **geo_view(record))
        return {"message": "Country restrictions updated", **geo_view(record)}

    @r.delete("/keys/geo")
    async def clear_geo(key: KeyQuery, request: Request) -> dict[str, Any]:
        """Remove both country lists (every country allowed again)."""
        record = live_key(rt, key)
        record.allowed_countries = []
        record.denied_countries = []
        rt.store.update_key(record)
        rt.events.publish("key.geo_updated", actor(request), **geo_view(record))
        return {"message": "Country restrictions removed", **geo_view(record)}

    return r
