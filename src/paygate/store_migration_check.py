"""The check after `migrate-store` copied: the destination, opened through its real store class (as a gateway
would open it), against what was read from the source.

Per key: balance, spent, calls and last use as the source had them; its ledger as long and summing to the same;
its balance equal to its ledger's sum. Overall: as many keys, ledger entries, usage rows, documents, meta values,
audit entries, webhook items and once-records (`Money.move_once`) as were read. The call rollups: their
totals per key, per tool and overall as read (store_migration_rollups.py).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import redis

from paygate.billing.quota import counters_from_usage
from paygate.core.records import KeyRecord
from paygate.store.audit_log import AuditFilter
from paygate.store.history import MIGRATED_OWNER, RefundMark
from paygate.store.history_sqlite import NOT_LOCAL
from paygate.store.outbox import Outbox
from paygate.store.redis_backend.history import RedisHistory
from paygate.store.redis_backend.names import Names
from paygate.store.redis_backend.outbox import RedisOutbox
from paygate.store.redis_backend.store import RedisStore
from paygate.store.roles import Money
from paygate.store.sqlite import SQLiteStore
from paygate.store_migration_rollups import RollupTally, verify_rollups

GUARD_SECONDS = 120  # how long the check keeps gateways from adopting the copied outbox, should it die


@dataclass
class KeyTally:
    credits: int
    spent: int
    calls: int
    last_used: float | None
    ledger_sum: int = 0
    ledger_count: int = 0
    missing: bool = False  # ledger entries of a key that is not in the store


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=dict)
    per_key: dict[str, KeyTally] = field(default_factory=dict)
    rollups: RollupTally = field(default_factory=RollupTally)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def _keys(store: Money, records: list[KeyRecord], source: Tally) -> tuple[Tally, list[str], list[str]]:
    found = Tally()
    mismatches: list[str] = []
    notes: list[str] = []
    found.counts["keys"] = len(records)
    found.counts["rotated"] = sum(1 for r in records if r.extra.get("rotatedTo"))
    for r in records:
        entries = store.ledger(r.key_hash)
        tally = KeyTally(r.credits, r.total_spent, r.total_calls, r.last_used_at)
        tally.ledger_sum, tally.ledger_count = sum(e.delta for e in entries), len(entries)
        found.per_key[r.key_hash] = tally
        found.add("ledger", len(entries))
    for key_hash, want in source.per_key.items():
        got = found.per_key.get(key_hash)
        name = f"key {key_hash[:12]}…"
        if got is None:
            if not want.missing:
                mismatches.append(f"{name}: missing")
            continue
        if (got.credits, got.spent, got.calls, got.last_used) != (want.credits, want.spent, want.calls, want.last_used):
            mismatches.append(
                f"{name}: credits/spent/calls/last used {got.credits}/{got.spent}/{got.calls}/{got.last_used}, "
                f"the source had {want.credits}/{want.spent}/{want.calls}/{want.last_used}"
            )
        if (got.ledger_count, got.ledger_sum) != (want.ledger_count, want.ledger_sum):
            mismatches.append(
                f"{name}: {got.ledger_count} ledger entries summing to {got.ledger_sum}, "
                f"the source had {want.ledger_count} summing to {want.ledger_sum}"
            )
        if got.credits != got.ledger_sum:
            message = f"{name}: balance {got.credits} but its ledger sums to {got.ledger_sum}"
            if want.credits != want.ledger_sum:
                notes.append(message + " (so in the source too: copied as it was)")
            else:
                mismatches.append(message)
    return found, mismatches, notes


def _outbox(found: Tally, outbox: Outbox) -> None:
    state = outbox.state()
    found.counts["webhookQueued"] = sum(n for n, _ in state.pending.values())
    found.counts["webhookBatches"] = len(state.batches)
    found.counts["webhookDeadLetters"] = len(outbox.dead_letters())


def _compare(source: Tally, found: Tally) -> list[str]:
    return [
        f"{name}: {found.counts.get(name, 0)} in the destination, {n} read from the source"
        for name, n in source.counts.items()
        if found.counts.get(name, 0) != n
    ]


def verify_sqlite(path: str, _prefix: str, source: Tally) -> tuple[list[str], list[str]]:
    store = SQLiteStore(path)
    store.open()
    try:
        found, mismatches, notes = _keys(store, store.list_keys(), source)
        db = store.db
        found.counts["usage"] = int(db.execute("SELECT COUNT(*) FROM usage").fetchone()[0])
        # refunds are ledger entries here: as many as the marks the source's usage log had
        found.counts["refundMarks"] = int(db.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'").fetchone()[0])
        found.counts["documents"] = sum(len(store.doc_items(kind)) for kind in store.doc_kinds())
        found.counts["meta"] = int(db.execute(f"SELECT COUNT(*) FROM meta WHERE {NOT_LOCAL}").fetchone()[0])
        found.counts["audit"] = store.audit.count(AuditFilter())
        found.counts["onceMoves"] = int(db.execute("SELECT COUNT(*) FROM once_moves").fetchone()[0])
        mismatches += verify_rollups(store.rollups, source.rollups)
        _outbox(found, store.outbox)
    finally:
        store.close()
    return mismatches + _compare(source, found), notes


def verify_redis(url: str, prefix: str, source: Tally) -> tuple[list[str], list[str]]:
    """Seed the quota counters, then check the copy (through the real store, as a gateway opens it)."""
    names = Names(prefix)
    guard = names.alive(MIGRATED_OWNER)
    with contextlib.closing(redis.Redis.from_url(url, socket_timeout=30.0)) as client:
        # Opening a RedisStore adopts the outboxes of owners not alive. This check is no gateway: the copied
        # partition is marked alive while it runs, and left for the first real gateway to adopt.
        client.set(guard, "1", ex=GUARD_SECONDS)
        try:
            store = RedisStore(url, prefix=prefix)
            store.open()
            try:
                # Redis keeps quota counters itself (its scripts count): seed them from the copied usage, so a
                # key's daily and monthly quotas (and a team's budget) go on from what was used
                store.seed_quota_counters(counters_from_usage(store, time.time()))
                found, mismatches, notes = _keys(store, store.list_keys(), source)
                found.counts["documents"] = sum(len(store.doc_items(kind)) for kind in store.doc_kinds())
                found.counts["audit"] = store.audit.count(AuditFilter())
                mismatches += verify_rollups(store.rollups, source.rollups)
            finally:
                store.close()
            for item in RedisHistory(client, names).usage():  # streamed: never the whole log at once
                found.add("refundMarks" if isinstance(item, RefundMark) else "usage")
            found.counts["meta"] = int(client.hlen(names.meta))
            found.counts["onceMoves"] = int(client.hlen(names.once))
            _outbox(found, RedisOutbox(client, names, MIGRATED_OWNER))
        finally:
            client.delete(guard)
    return mismatches + _compare(source, found), notes
