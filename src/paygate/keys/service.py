"""API key lifecycle basics: create, find (by key or alias), top up, revoke, import, aliases.

Records returned by the store are its cached objects, the very ones the gate reads, so every
change to a key record goes through `save`, which writes through and puts the old values back
if the write fails: a refused change never lingers in memory. `save` is the only caller of
`store.update_key`; operations that announce a change (`update_policy`, `issue`, `topup`, …)
publish their event after the write succeeded, never before, and never for a refused change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.core.domain_errors import Conflict, NotFound
from paygate.core.keys import KEY_PREFIX, generate_api_key, hash_key, mask_parts
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.store.base import Store
from paygate.store.errors import Conflict as StoreConflict

log = logging.getLogger("paygate.keys")

# (old_hash, new_hash) after a rotation: state kept elsewhere under the key's hash follows it.
RekeyListener = Callable[[str, str], None]
# EventHub.publish: (type, actor, **data).
Publish = Callable[..., None]


def no_events(*_: Any, **__: Any) -> None:
    """The publisher of a service used without a bus (tools and tests driving a store directly)."""


class KeyNotFound(NotFound):
    pass


class KeyConflict(Conflict):
    pass


@dataclass(frozen=True, slots=True)
class NewKey:
    raw: str
    record: KeyRecord


class KeyService:
    def __init__(self, store: Store, publish: Publish = no_events) -> None:
        self.store = store
        self.publish = publish
        self.rekey_listeners: list[RekeyListener] = []
        self._alias_hints: dict[str, str] = {}  # alias → the hash of the key it was last found on

    def create(self, name: str, credits: int, **policy: Any) -> NewKey:
        """A new key, not announced (a clone or a rotation announces itself in its own words)."""
        raw = generate_api_key()
        return NewKey(raw, self._insert(raw, name, credits, "create", policy))

    def issue(
        self,
        name: str,
        credits: int,
        actor: str,
        *,
        template: str | None = None,
        mark: dict[str, Any] | None = None,
        **policy: Any,
    ) -> NewKey:
        """A new key, announced as `key.created` (`mark`: extra event fields, e.g. bulk=True)."""
        new = self.create(name, credits, **policy)
        self.publish(
            "key.created",
            actor,
            keyMasked=new.record.masked,
            name=new.record.name,
            credits=new.record.credits,
            namespace=new.record.namespace,
            template=template,
            **(mark or {}),
        )
        return new

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
            raise KeyConflict(
                f"importKeys: {shown} is the alias of key {holder.masked}; an imported key "
                "must not equal an alias (clear or change the alias first)"
            )
        try:
            return self._insert(raw, name, credits, "import", {})
        except StoreConflict:  # an imported key has no alias: the key itself exists now
            return None  # another instance of a fleet imported it first (--import-key on every instance)

    def _insert(self, raw: str, name: str, credits: int, memo: str, policy: dict[str, Any]) -> KeyRecord:
        prefix, last4 = mask_parts(raw)
        record = KeyRecord(
            key_hash=hash_key(raw),
            prefix=prefix,
            last4=last4,
            name=name,
            credits=credits,
            created_at=time.time(),
            **policy,
        )
        self.store.create_key(record, memo)
        return record

    def find(self, ref: str) -> KeyRecord:
        """A key by its raw value or its alias (every admin endpoint that names a key accepts either)."""
        record = self.store.get_key(hash_key(ref)) or self.by_alias(ref)
        if record is None:
            raise KeyNotFound("API key not found")
        return record

    def live(self, ref: str) -> KeyRecord:
        """The named key, which must not be revoked (a revoked key's policy is moot): 404 / 409 kinds."""
        record = self.find(ref)
        if not record.active:
            raise KeyConflict("API key is revoked")
        return record

    def all(self) -> list[KeyRecord]:
        """Every key record (the store's own objects: read them, change them only through `save`)."""
        return self.store.list_keys()

    def by_alias(self, alias: str) -> KeyRecord | None:
        """The key holding `alias`, revoked ones included: aliases are unique across every key (the
        store's UNIQUE column), and a revoked key keeps its alias, so it must still be reachable by
        it (notes on revoked keys; a second revoke is a 409, not a 404). Rotation hands the alias on.
        Where an alias was last found is remembered: a record still holding it is the answer (aliases are
        unique), so only a first lookup or a moved alias reads every key."""
        hint = self._alias_hints.get(alias)
        if hint is not None:
            record = self.store.get_key(hint)
            if record is not None and record.alias == alias:
                return record
            del self._alias_hints[alias]
        for record in self.store.list_keys():
            if record.alias == alias:
                self._alias_hints[alias] = record.key_hash
                return record
        return None

    def topup(self, ref: str, credits: int, actor: str = "system", **mark: Any) -> KeyRecord:
        """Add credits (announced as `key.topup`)."""
        record = self.find(ref)
        if not record.active:
            raise KeyConflict("cannot top up a revoked key")
        if record.credits + credits > MAX_CREDITS:
            raise KeyConflict(f"balance would exceed {MAX_CREDITS}")
        self.store.topup(record.key_hash, credits, "admin topup")
        self.publish(
            "key.topup", actor, keyMasked=record.masked, creditsAdded=credits, newBalance=record.credits, **mark
        )
        return record

    def revoke(self, ref: str, actor: str = "system", **mark: Any) -> KeyRecord:
        """Revoke for good (announced as `key.revoked`)."""
        record = self.find(ref)
        if not record.active:
            raise KeyConflict("key is already revoked")
        self.save(record, active=False)
        self.publish("key.revoked", actor, keyMasked=record.masked, **mark)
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

    def update_policy(self, record: KeyRecord, actor: str, event: str, changes: dict[str, Any], /, **data: Any) -> None:
        """`save` the changes, then announce them: `event` naming the key, with `data`. A failed write
        changes nothing and announces nothing."""
        self.save(record, **changes)
        self.publish(event, actor, keyMasked=record.masked, **data)

    def set_alias(self, record: KeyRecord, alias: str | None, actor: str = "system") -> str | None:
        """Give the key `alias` (None clears it; announced as `key.alias_set`); returns the previous alias.
        Aliases are unique across every key, revoked ones included, and never equal a key that exists."""
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
        except StoreConflict as exc:  # the store's uniqueness rule, should a check above miss
            raise KeyConflict(f'alias "{alias}" is already used by another key') from exc
        self.publish("key.alias_set", actor, keyMasked=record.masked, alias=alias, previousAlias=previous)
        return previous

    def notify_rekey(self, old_hash: str, new_hash: str) -> None:
        for listener in self.rekey_listeners:
            try:
                listener(old_hash, new_hash)
            except Exception:  # the rotation itself is done and durable; a follower must not undo it
                log.exception("rekey listener failed")

    def suspend(self, record: KeyRecord, reason: str | None = None, actor: str | None = None, **mark: Any) -> None:
        """Deny the key at the gate until resumed; admin operations keep working on it. Announced as
        `key.suspended` when an actor asks (a schedule announces its own `schedule.executed`)."""
        if not record.active:
            raise KeyConflict("cannot suspend a revoked key")
        if record.suspended:
            raise KeyConflict("key is already suspended")
        self.save(record, suspended=True, extra={**record.extra, "suspendReason": reason, "suspendedAt": time.time()})
        if actor is not None:
            self.publish("key.suspended", actor, keyMasked=record.masked, reason=reason, **mark)

    def resume(self, record: KeyRecord, actor: str | None = None, **mark: Any) -> None:
        """Lift a suspension (announced as `key.resumed` when an actor asks, as `suspend`)."""
        if not record.suspended:
            raise KeyConflict("key is not suspended")
        extra = {k: v for k, v in record.extra.items() if k not in ("suspendReason", "suspendedAt")}
        self.save(record, suspended=False, extra=extra)
        if actor is not None:
            self.publish("key.resumed", actor, keyMasked=record.masked, **mark)

    def announce_bulk(self, actor: str, total: int, succeeded: int) -> None:
        """A POST /keys/bulk run's tally (each operation announced itself, marked bulk=True)."""
        self.publish("key.bulk", actor, total=total, succeeded=succeeded, failed=total - succeeded)

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
