"""How key records and calls map onto SQLite rows, and the statements the hot path runs."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store.errors import Conflict, StoreError

CHARGE_SQL = (
    "UPDATE keys SET credits = credits - ?1, total_spent = total_spent + ?1, "
    "total_calls = total_calls + ?2, last_used_at = ?3 "
    "WHERE key_hash = ?4 AND credits >= ?1 RETURNING credits"
)
LEDGER_SQL = "INSERT INTO ledger (ts, key_hash, delta, kind, balance_after, memo) VALUES (?,?,?,?,?,?)"
USAGE_SQL = (
    "INSERT INTO usage (ts, key_hash, key_masked, key_name, tool, credits, allowed, deny_reason,"
    " namespace, request_id) VALUES (?,?,?,?,?,?,?,?,?,?)"
)

KEY_COLUMNS = (
    "key_hash",
    "prefix",
    "last4",
    "name",
    "credits",
    "created_at",
    "total_spent",
    "total_calls",
    "last_used_at",
    "active",
    "suspended",
    "expires_at",
    "namespace",
    "spending_limit",
    "alias",
    "doc",
)
# Fields kept in the JSON `doc` column: policy data the hot path reads from memory only.
_DOC_FIELDS = (
    "allowed_tools",
    "denied_tools",
    "quota",
    "tags",
    "ip_allowlist",
    "group_id",
    "team_id",
    "plan",
    "allowed_countries",
    "denied_countries",
    "notes",
    "auto_topup",
    "extra",
)


def row_to_record(row: sqlite3.Row) -> KeyRecord:
    doc: dict[str, Any] = json.loads(row["doc"]) if row["doc"] else {}
    return KeyRecord(
        key_hash=row["key_hash"],
        prefix=row["prefix"],
        last4=row["last4"],
        name=row["name"],
        credits=row["credits"],
        created_at=row["created_at"],
        total_spent=row["total_spent"],
        total_calls=row["total_calls"],
        last_used_at=row["last_used_at"],
        active=bool(row["active"]),
        suspended=bool(row["suspended"]),
        expires_at=row["expires_at"],
        namespace=row["namespace"],
        spending_limit=row["spending_limit"],
        alias=row["alias"],
        **{f: doc[f] for f in _DOC_FIELDS if f in doc},
    )


def record_values(r: KeyRecord) -> tuple[Any, ...]:
    full = asdict(r)
    doc = json.dumps({f: full[f] for f in _DOC_FIELDS}, separators=(",", ":"))
    return (
        r.key_hash,
        r.prefix,
        r.last4,
        r.name,
        r.credits,
        r.created_at,
        r.total_spent,
        r.total_calls,
        r.last_used_at,
        int(r.active),
        int(r.suspended),
        r.expires_at,
        r.namespace,
        r.spending_limit,
        r.alias,
        doc,
    )


def usage_row(e: UsageEvent) -> tuple[Any, ...]:
    return (
        e.timestamp,
        e.key_hash,
        e.key_masked,
        e.key_name,
        e.tool,
        e.credits,
        int(e.allowed),
        e.deny_reason,
        e.namespace,
        e.request_id,
    )


def row_to_usage(r: sqlite3.Row) -> UsageEvent:
    return UsageEvent(
        timestamp=r["ts"],
        key_hash=r["key_hash"],
        key_masked=r["key_masked"],
        key_name=r["key_name"],
        tool=r["tool"],
        credits=r["credits"],
        allowed=bool(r["allowed"]),
        deny_reason=r["deny_reason"],
        namespace=r["namespace"],
        request_id=r["request_id"],
    )


def integrity_error(exc: sqlite3.IntegrityError, what: str) -> StoreError:
    """The store's own error for a broken constraint: a taken key hash or alias is a `Conflict`."""
    if "UNIQUE" in str(exc):
        return Conflict(f"{what}: already taken")
    return StoreError(f"{what}: {exc}")
