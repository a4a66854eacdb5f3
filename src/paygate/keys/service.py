"""API key lifecycle basics: create, find (by key or alias), top up, revoke, import, aliases.

Records returned by the store are its cached objects, so every policy change
goes through `save`, which writes through and puts the old values back if the
write fails: a refused change never lingers in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.core.keys import KEY_PREFIX, generate_api_key, hash_key, mask_parts
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.store.base import Store
from paygate.store.errors import Conflict

log = logging.getLogger("paygate.keys")

# (old_hash, new_hash) after a rotation: state kept elsewhere under the key's hash follows it.
RekeyListener = Callable[[str, str], None]


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
        self.rekey_listeners: list[RekeyListener] = []

    def create(self, name: str, credits: int, **policy: Any) -> NewKey:
        raw = generate_api_key()
        return NewKey(raw, self._insert(raw, name, credits, "create", policy))

    def import_key(self, raw: str, credits: int, name: str = "imported") -> KeyRecord | None:
        """Register a key the operator already handed out; None if it exists already. A key equal to
        another key's alias is refused: lookups try the raw key first, so it would take the alias over."""
        if self.store.get_key(hash_key(raw)) is not None:
            return None
        shown = "…".join(mask_parts(raw))  # never the raw key, even in a startup error
        if not 0 <= credits <= MAX_CREDITS:
            raise KeyConflict(f"importKeys: {shown}: credits must be 0 to at most {MAX_CREDITS}")
        holder = self.by_alias(raw)
        if holder is not None:
            raise KeyConflict(f"importKeys: {shown} is the alias of key {holder.masked}; an imported key "
                              "must not equal an alias (clear or change the alias first)")
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
        """The key holding `alias`, revoked ones included: aliases are unique across every key (the
        store's UNIQUE column), and a revoked key keeps its alias, so it must still be reachable by
        it (notes on revoked keys; a second revoke is a 409, not a 404). Rotation hands the alias on."""
        for record in self.store.list_keys():
            if record.alias == alias:
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
        self.save(record, active=False)
        return record

    def save(self, record: KeyRecord, **changes: Any) -> None:
        """Set policy fields and write them through; on failure the record is left as it was.
        Give containers (lists, dicts) as new objects: one mutated in place could not be put back."""
        before = {name: getattr(record, name) for name in changes}
        for name, value in changes.items():
            setattr(record, name, value)
        try:
            self.store.update_key(record)
        except BaseException:
            for name, value in before.items():
                setattr(record, name, value)
            raise

    def set_alias(self, record: KeyRecord, alias: str | None) -> str | None:
        """Give the key `alias` (None clears it); returns the previous alias. Aliases are unique
        across every key, revoked ones included, and never equal a key that exists."""
        if not record.active:
            raise KeyConflict("cannot set an alias on a revoked key")
        previous = record.alias
        if alias == previous:
            return previous
        if alias is not None:
            holder = next((r for r in self.store.list_keys() if r.alias == alias), None)
            if holder is not None:
                state = "" if holder.active else " (a revoked key)"
                raise KeyConflict(f'alias "{alias}" is already used by another key{state}')
            if alias.startswith(KEY_PREFIX) or self.store.get_key(hash_key(alias)) is not None:
                raise KeyConflict(f'alias "{alias}" collides with an API key')
        try:
            self.save(record, alias=alias)
        except Conflict as exc:  # the store's uniqueness rule, should a check above miss
            raise KeyConflict(f'alias "{alias}" is already used by another key') from exc
        return previous

    def notify_rekey(self, old_hash: str, new_hash: str) -> None:
        for listener in self.rekey_listeners:
            try:
                listener(old_hash, new_hash)
            except Exception:  # the rotation itself is done and durable; a follower must not undo it
                log.exception("rekey listener failed")

    def suspend(self, record: KeyRecord, reason: str | None = None) -> None:
        """Deny the key at the gate until resumed; admin operations keep working on it."""
        if not record.active:
            raise KeyConflict("cannot suspend a revoked key")
        if record.suspended:
            raise KeyConflict("key is already suspended")
        self.save(record, suspended=True,
                  extra={**record.extra, "suspendReason": reason, "suspendedAt": time.time()})

    def resume(self, record: KeyRecord) -> None:
        if not record.suspended:
            raise KeyConflict("key is not suspended")
        extra = {k: v for k, v in record.extra.items() if k not in ("suspendReason", "suspendedAt")}
        self.save(record, suspended=False, extra=extra)

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

