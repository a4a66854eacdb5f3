"""Per-key policy setters: ACL, expiry, spending limit, quota, IP allowlist, countries.

Each setter names the key (raw or alias; a revoked key's policy is moot, so it is refused), changes
only the fields it is given, and goes through `KeyService.update_policy`: the write is rollback-safe
(the gate never enforces a change the database did not take) and the event follows a successful write.
"""

from __future__ import annotations

from typing import Any

from paygate.core.policy import QUOTA_FIELDS
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyService


def geo_view(record: KeyRecord) -> dict[str, Any]:
    return {
        "keyMasked": record.masked,
        "allowedCountries": record.allowed_countries,
        "deniedCountries": record.denied_countries,
    }


class KeyPolicy:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def set_acl(self, ref: str, allowed: list[str] | None, denied: list[str] | None, actor: str) -> KeyRecord:
        """Tool allow and/or deny list (None: unchanged)."""
        record = self.keys.live(ref)
        allowed = record.allowed_tools if allowed is None else allowed
        denied = record.denied_tools if denied is None else denied
        self.keys.update_policy(
            record,
            actor,
            "key.acl_updated",
            {"allowed_tools": allowed, "denied_tools": denied},
            allowedTools=allowed,
            deniedTools=denied,
        )
        return record

    def set_expiry(self, ref: str, expires_at: float | None, actor: str) -> KeyRecord:
        """Expire at `expires_at` (None: never)."""
        record = self.keys.live(ref)
        self.keys.update_policy(
            record, actor, "key.expiry_updated", {"expires_at": expires_at}, expiresAt=iso_time(expires_at)
        )
        return record

    def set_spending_limit(self, ref: str, limit: int, actor: str) -> KeyRecord:
        """Cap the credits the key may spend in total (0: no cap)."""
        record = self.keys.live(ref)
        self.keys.update_policy(
            record, actor, "key.limit_updated", {"spending_limit": limit}, spendingLimit=limit or None
        )
        return record

    def set_quota(self, ref: str, limits: dict[str, int] | None, actor: str) -> KeyRecord:
        """Change the given daily/monthly limits (the others keep theirs), or remove the key's own
        quota (None)."""
        record = self.keys.live(ref)
        quota = None
        if limits is not None:
            current = record.quota or {}
            quota = {name: int(limits.get(name, current.get(name) or 0)) for name in QUOTA_FIELDS}
        self.keys.update_policy(record, actor, "key.quota_updated", {"quota": quota}, quota=quota)
        return record

    def set_ips(self, ref: str, ips: list[str], actor: str) -> KeyRecord:
        """Replace the IP allowlist ([] allows every address)."""
        record = self.keys.live(ref)
        self.keys.update_policy(record, actor, "key.ip_updated", {"ip_allowlist": ips}, ipAllowlist=ips)
        return record

    def set_countries(self, ref: str, allowed: list[str] | None, denied: list[str] | None, actor: str) -> KeyRecord:
        """Country allow and/or deny list (None: unchanged; both [] removes the restriction)."""
        record = self.keys.live(ref)
        allowed = record.allowed_countries if allowed is None else allowed
        denied = record.denied_countries if denied is None else denied
        self.keys.update_policy(
            record,
            actor,
            "key.geo_updated",
            {"allowed_countries": allowed, "denied_countries": denied},
            allowedCountries=allowed,
            deniedCountries=denied,
        )
        return record
