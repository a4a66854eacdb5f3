"""Per-key policy: ACL, expiry, suspend/resume, spending limits, quotas, IP allowlists, countries.

Setters change only the fields a request names: a field left out keeps its
value, so a request can never loosen a limit it did not mention. Every request
is validated in full here before the service (policy/key_policy.py) touches the
key record, through the one rollback-safe write path.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.api.fields import (
    MAX_EXPIRY_SECONDS,
    CountryList,
    Credits,
    IpList,
    KeyQuery,
    QuotaLimits,
    ToolList,
    parse_expires_at,
    require_one_of,
)
from paygate.core.values import iso_time
from paygate.keys.service import KeyService
from paygate.policy.key_policy import KeyPolicy, geo_view

# --- request bodies ---------------------------------------------------------------------------------


class AclBody(Body):
    key: KeyRefField
    allowed_tools: ToolList | None = None
    denied_tools: ToolList | None = None

    @model_validator(mode="after")
    def _one_list_given(self) -> AclBody:
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
            raise ValueError(
                "give at least one of dailyCallLimit, monthlyCallLimit, dailyCreditLimit, "
                "monthlyCreditLimit, or remove: true"
            )
        return self


class IpBody(Body):
    key: KeyRefField
    ips: IpList


class GeoBody(Body):
    key: KeyRefField
    allowed_countries: CountryList | None = None
    denied_countries: CountryList | None = None

    @model_validator(mode="after")
    def _one_list_given(self) -> GeoBody:
        require_one_of(self, "allowed_countries", "denied_countries")
        return self


def router(guard: AdminGuard, keys: KeyService, policy: KeyPolicy) -> APIRouter:
    # async routes: they run on the event loop, so a change never interleaves with a gate decision
    # or with another admin request (each is validate → change → one short commit, no awaits).
    r = guard.router("policy")

    @r.post("/keys/acl")
    async def set_acl(body: AclBody, request: Request) -> dict[str, Any]:
        """Set a key's tool allow list and/or deny list (a list left out is unchanged; [] clears)."""
        record = policy.set_acl(body.key, body.allowed_tools, body.denied_tools, actor(request))
        return {
            "message": "ACL updated",
            "keyMasked": record.masked,
            "allowedTools": record.allowed_tools,
            "deniedTools": record.denied_tools,
        }

    @r.post("/keys/expiry")
    async def set_expiry(body: ExpiryBody, request: Request) -> dict[str, Any]:
        """Set (expiresIn seconds or expiresAt) or remove (expiresAt: null) a key's expiry."""
        now = time.time()
        if body.expires_in is not None:
            expires_at: float | None = now + body.expires_in
        elif body.expires_at is not None:
            expires_at = parse_expires_at(body.expires_at, now)
        else:
            expires_at = None
        record = policy.set_expiry(body.key, expires_at, actor(request))
        message = "Expiry removed" if expires_at is None else "Expiry set"
        return {"message": message, "keyMasked": record.masked, "expiresAt": iso_time(expires_at)}

    @r.post("/keys/suspend")
    async def suspend(body: SuspendBody, request: Request) -> dict[str, Any]:
        """Deny a key at the gate until resumed (admin operations keep working on it)."""
        record = find_key(keys, body.key)
        keys.suspend(record, body.reason, actor(request))
        return {"message": "Key suspended", "keyMasked": record.masked, "suspended": True, "reason": body.reason}

    @r.post("/keys/resume")
    async def resume(body: ResumeBody, request: Request) -> dict[str, Any]:
        """Lift a suspension."""
        record = find_key(keys, body.key)
        keys.resume(record, actor(request))
        return {"message": "Key resumed", "keyMasked": record.masked, "suspended": False}

    @r.post("/limits")
    async def set_limit(body: LimitBody, request: Request) -> dict[str, Any]:
        """Cap the total credits a key may spend (0 removes the cap)."""
        record = policy.set_spending_limit(body.key, body.spending_limit, actor(request))
        limit = record.spending_limit or None
        remaining = max(0, record.spending_limit - record.total_spent) if limit else None
        return {
            "message": "Spending limit updated" if limit else "Spending limit removed",
            "keyMasked": record.masked,
            "spendingLimit": limit,
            "totalSpent": record.total_spent,
            "remainingBudget": remaining,
        }

    @r.post("/keys/quota")
    async def set_quota(body: KeyQuotaBody, request: Request) -> dict[str, Any]:
        """Set a key's daily/monthly call and credit limits, or remove its own quota (remove: true)."""
        given = None if body.remove else body.model_dump(by_alias=True, exclude_unset=True, exclude={"key", "remove"})
        record = policy.set_quota(body.key, given, actor(request))
        quota = record.quota
        return {
            "message": "Quota removed" if quota is None else "Quota updated",
            "keyMasked": record.masked,
            "quota": quota,
        }

    @r.post("/keys/ip")
    async def set_ips(body: IpBody, request: Request) -> dict[str, Any]:
        """Replace a key's IP allowlist (exact addresses and CIDR blocks; [] allows every address)."""
        record = policy.set_ips(body.key, body.ips, actor(request))
        return {
            "message": "IP allowlist updated" if body.ips else "IP allowlist cleared",
            "keyMasked": record.masked,
            "ipAllowlist": body.ips,
        }

    @r.get("/keys/geo")
    async def get_geo(key: KeyQuery) -> dict[str, Any]:
        """A key's country allow and deny lists."""
        return geo_view(find_key(keys, key))

    @r.post("/keys/geo")
    async def set_geo(body: GeoBody, request: Request) -> dict[str, Any]:
        """Set a key's allowed and/or denied countries (a list left out is unchanged; [] clears)."""
        record = policy.set_countries(body.key, body.allowed_countries, body.denied_countries, actor(request))
        return {"message": "Country restrictions updated", **geo_view(record)}

    @r.delete("/keys/geo")
    async def clear_geo(key: KeyQuery, request: Request) -> dict[str, Any]:
        """Remove both country lists (every country allowed again)."""
        record = policy.set_countries(key, [], [], actor(request))
        return {"message": "Country restrictions removed", **geo_view(record)}

    return r
