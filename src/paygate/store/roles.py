"""The store's roles: one protocol per kind of state, so a caller (or a test, or a new backend) can
name the part of the store it needs. `base.Store` is their union.

Money operations are atomic and return the new balance, so a Redis implementation can do each in
one Lua script. Reads of key records are synchronous because the hot path resolves keys from an
in-process cache; a distributed store keeps that cache fresh (pub/sub invalidation).
Errors a caller may handle are the store's own (`store/errors.py`), never a driver's.
The audit log and the webhook outbox are roles too; their protocols live with their value types
(`audit_log.AuditLog`, `outbox.Outbox`) and are re-exported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from paygate.core.ratelimit import RateDecision
from paygate.core.records import ChargeLimits, ChargeResult, KeyRecord, LedgerEntry, UsageEvent
from paygate.store.audit_log import AuditLog
from paygate.store.documents import Doc
from paygate.store.once import OnceMove
from paygate.store.outbox import Outbox

__all__ = ["AuditLog", "Documents", "KeyTable", "Meta", "Money", "OnceMove", "Outbox", "RateWindows", "UsageLog"]


class KeyTable(Protocol):
    """Key records, read from memory, written through before a mutation returns."""

    # bumped by every change to a key's policy fields (create, update, rekey) or to a document
    generation: int

    def get_key(self, key_hash: str) -> KeyRecord | None: ...
    def list_keys(self) -> list[KeyRecord]: ...
    # raises errors.Conflict when the hash or the alias is taken
    def create_key(self, record: KeyRecord, memo: str = "create") -> None: ...
    # the policy fields only, never money; raises errors.Conflict when the alias is taken
    def update_key(self, record: KeyRecord) -> None: ...


class Money(Protocol):
    """Balances and the ledger. Each move is atomic and durable when it returns (the deferred ones:
    once their future resolves), never takes a balance below zero, and writes its ledger entries in
    the same step, so balances always equal the sum of the ledger."""

    def charge(self, key_hash: str, amount: int, event: UsageEvent) -> ChargeResult: ...
    # decided and applied now, durable once the future resolves (None: already durable). `limits`: what the
    # gate checked, for a shared store to check again (its future then raises errors.ChargeRefused)
    def charge_deferred(
        self,
        key_hash: str,
        amount: int,
        event: UsageEvent,
        limits: ChargeLimits | None = None,
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]: ...
    # several calls on one key, all or nothing (tools/call_batch): (amount, usage row) per call
    def charge_many(self, key_hash: str, charges: Sequence[tuple[int, UsageEvent]]) -> ChargeResult: ...
    def charge_many_deferred(
        self,
        key_hash: str,
        charges: Sequence[tuple[int, UsageEvent]],
        limits: ChargeLimits | None = None,
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]: ...
    def charge_up_to(self, key_hash: str, amount: int, memo: str) -> tuple[int, int]: ...  # (charged, balance)
    def refund(self, key_hash: str, amount: int, memo: str) -> ChargeResult: ...
    def topup(self, key_hash: str, amount: int, memo: str) -> ChargeResult: ...
    # a topup only while the balance is below `threshold` (auto-topup: instances racing add it once)
    def topup_below(self, key_hash: str, amount: int, threshold: int, memo: str) -> ChargeResult: ...
    # any other single-key move (reserve, release, import, …): never below zero, one ledger entry of `kind`
    def adjust(
        self, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int = 0, calls_delta: int = 0
    ) -> ChargeResult: ...
    # a move applied at most once per `once_id` (an outside event's id, recorded in the same transaction):
    # a credit (delta > 0) in full, a take-back (delta < 0) up to the balance, never below zero; a
    # repeated id moves nothing and answers what the first did (store/once.py)
    def move_once(self, key_hash: str, delta: int, kind: str, memo: str, once_id: str) -> OnceMove: ...
    # from and to balances, or None when nothing moved
    def transfer(self, from_hash: str, to_hash: str, amount: int, memo: str) -> tuple[int, int] | None: ...
    # rotation: the new record takes over balance, counters and usage; the old one is left revoked and empty
    def rekey(self, old_hash: str, new: KeyRecord, memo: str = "rotate") -> None: ...
    def ledger(self, key_hash: str | None = None) -> list[LedgerEntry]: ...  # oldest first
    # one key's newest `limit` entries (newest first) since `since`, older than the entry `before` (its
    # sequence number), each with its sequence number: a bounded read for pagination
    def ledger_page(
        self, key_hash: str, limit: int, *, since: float | None = None, before: int | None = None
    ) -> list[tuple[int, LedgerEntry]]: ...
    def ledger_count(self, key_hash: str) -> int: ...  # the key's entries on record


class RateWindows(Protocol):
    """Windowed counters (rate limits); single-process stores may keep them in memory."""

    def rate_hit(self, subject: str, limit: int, now: float) -> RateDecision: ...
    def rate_peek(self, subject: str, limit: int, now: float) -> RateDecision: ...
    def rate_undo(self, subject: str) -> None: ...
    def rate_move(self, old_key: str, new_key: str) -> None: ...  # a rotated key's windows follow it
    def rate_sweep(self, now: float) -> None: ...


class UsageLog(Protocol):
    """One row per call (admitted or denied). Admitted calls are written by the money moves that charge
    them; reads see every acknowledged call."""

    def record_denial(self, event: UsageEvent) -> None: ...
    # the newest `limit` events since `since`, oldest first
    def query_usage(
        self,
        since: float | None = None,
        limit: int = 10_000,
        *,
        key_hash: str | None = None,
        namespace: str | None = None,
    ) -> list[UsageEvent]: ...
    def usage_sums(self, since: float) -> dict[str, tuple[int, int]]: ...  # key_hash -> (calls, credits) admitted


class Documents(Protocol):
    """Small JSON documents by kind (groups, teams, templates, admin keys, plans …), cached in memory."""

    def doc_get(self, kind: str, doc_id: str) -> Doc | None: ...  # a copy
    def doc_peek(self, kind: str, doc_id: str) -> Doc | None: ...  # the cached object: read, never mutate
    def doc_list(self, kind: str) -> list[Doc]: ...  # copies
    def doc_scan(self, kind: str) -> list[Doc]: ...  # the cached objects (no copies): read, never mutate
    def doc_kinds(self) -> list[str]: ...  # kinds that hold at least one document
    def doc_items(self, kind: str) -> list[tuple[str, Doc]]: ...  # (id, copy) pairs
    def doc_put(self, kind: str, doc_id: str, body: Doc) -> None: ...
    # a claim: write `body` only if the stored document's `field` is `expected` (of instances sharing the
    # store and racing, exactly one wins); False, and nothing written, otherwise
    def doc_put_if(self, kind: str, doc_id: str, body: Doc, field: str, expected: str) -> bool: ...
    def doc_delete(self, kind: str, doc_id: str) -> bool: ...  # True only for the caller that deleted it
    # a claim of an id: `body` written only if no document has it (of racing instances, exactly one wins)
    def doc_create(self, kind: str, doc_id: str, body: Doc) -> bool: ...


class Meta(Protocol):
    """Named settings that must survive restarts."""

    def get_meta(self, name: str) -> str | None: ...
    def set_meta(self, name: str, value: str) -> None: ...
    # `value` unless the setting exists: the stored value either way (of racing instances, the first wins)
    def claim_meta(self, name: str, value: str) -> str: ...
