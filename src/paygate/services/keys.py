"""API key lifecycle basics: create, find (by key or alias), top up, revoke, import."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from paygate.core.keys import generate_api_key, hash_key, mask_parts
from paygate.store.base import Store
from paygate.store.records import KeyRecord

MAX_CREDITS = 10**15  # far above any real balance, far below SQLite's 2**63


class KeyNotFound(LookupError):
    pass


class KeyConflict(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NewKey:
    raw: str
    record: KeyRecord


class KeyService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, name: str, credits: int, **policy: Any) -> NewKey:
        raw = generate_api_key()
        return NewKey(raw, self._insert(raw, name, credits, "create", policy))

    def import_key(self, raw: str, credits: int, name: str = "imported") -> KeyRecord | None:
        """Register a key the operator already handed out; None if it exists already."""
        if self.store.get_key(hash_key(raw)) is not None:
            return None
        return self._insert(raw, name, credits, "import", {})

    def _insert(self, raw: str, name: str, credits: int, memo: str, policy: dict[str, Any]) -> KeyRecord:
        prefix, last4 = mask_parts(raw)
        record = KeyRecord(key_hash=hash_key(raw), prefix=prefix, last4=last4, name=name, credits=credits,
                           created_at=time.time(), **policy)
        self.store.create_key(record, memo)
        return record

    def find(self, ref: str) -> KeyRecord:
        """A key by its raw value or its alias (every admin endpoint that names a key accepts either)."""
        record = self.store.get_key(hash_key(ref)) or self.by_alias(ref)
        if record is None:
            raise KeyNotFound("API key not found")
        return record

    def by_alias(self, alias: str) -> KeyRecord | None:
        for record in self.store.list_keys():
            if record.alias == alias and record.active:
                return record
        return None

    def topup(self, raw: str, credits: int) -> KeyRecord:
        record = self.find(raw)
        if not record.active:
            raise KeyConflict("cannot top up a revoked key")
        if record.credits + credits > MAX_CREDITS:
            raise KeyConflict(f"balance would exceed {MAX_CREDITS}")
        self.store.topup(record.key_hash, credits, "admin topup")
        return record

    def revoke(self, raw: str) -> KeyRecord:
        record = self.find(raw)
        if not record.active:
            raise KeyConflict("key is already revoked")
        record.active = False
        self.store.update_key(record)
        return record

    def active_count(self) -> int:
        return sum(1 for r in self.store.list_keys() if r.active)


def key_view(r: KeyRecord, now: float | None = None) -> dict[str, Any]:
    """A key as admin listings show it: masked, camelCase, never the hash or the raw key."""
    now = now or time.time()
    expired = r.expires_at is not None and now >= r.expires_at
    return {
        "keyMasked": r.masked,
        "name": r.name,
        "credits": r.credits,
        "totalSpent": r.total_spent,
        "totalCalls": r.total_calls,
        "createdAt": iso_time(r.created_at),
        "lastUsedAt": iso_time(r.last_used_at),
        "active": r.active,
        "suspended": r.suspended,
        "expiresAt": iso_time(r.expires_at),
        "expired": expired,
        "allowedTools": r.allowed_tools,
        "deniedTools": r.denied_tools,
        "quota": r.quota,
        "tags": r.tags,
        "namespace": r.namespace,
        "ipAllowlist": r.ip_allowlist,
        "spendingLimit": r.spending_limit,
        "alias": r.alias,
    }


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
