"""How key records, usage rows, ledger entries and script operations are written as Redis strings.

A key is a HASH: the money fields apart (`c` credits, `s` spent, `n` calls, `u` last used, `v` a version
bumped by every change) so scripts can add to them, and the policy fields as one JSON text (`r`), with
the alias also apart (`a`) for the uniqueness check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from paygate.core import quota
from paygate.core.records import ChargeLimits, KeyRecord, LedgerEntry, UsageEvent
from paygate.store.redis_backend.names import as_text

MONEY_FIELDS = ("credits", "total_spent", "total_calls", "last_used_at")
NO_TIME = "-"  # a last-used time not set yet (the scripts' replies are space-separated)


def ts_text(ts: float | None) -> str:
    return NO_TIME if ts is None else repr(float(ts))


def ts_value(text: str) -> float | None:
    return None if text in (NO_TIME, "") else float(text)


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def record_json(record: KeyRecord) -> str:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in MONEY_FIELDS}
    return json_text(fields)


def record_from(fields: Mapping[bytes | str, Any]) -> KeyRecord:
    """A key record from its HASH (HGETALL)."""
    got = {as_text(k): as_text(v) for k, v in fields.items()}
    body = orjson.loads(got["r"])
    return KeyRecord(
        **body,
        credits=int(got["c"]),
        total_spent=int(got["s"]),
        total_calls=int(got["n"]),
        last_used_at=ts_value(got["u"]),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class MoneyState:
    """A key's money fields as one script saw them (`c s n u v` in a reply)."""

    credits: int
    spent: int
    calls: int
    last_used: float | None
    version: int

    @classmethod
    def parse(cls, words: Sequence[str]) -> MoneyState:
        return cls(int(words[0]), int(words[1]), int(words[2]), ts_value(words[3]), int(words[4]))


def usage_json(e: UsageEvent) -> str:
    return json_text(
        [
            e.timestamp,
            e.key_hash,
            e.key_masked,
            e.key_name,
            e.tool,
            e.credits,
            e.allowed,
            e.deny_reason,
            e.namespace,
            e.request_id,
        ]
    )


def usage_from(text: bytes | str) -> UsageEvent:
    row = orjson.loads(text)
    return UsageEvent(*row)


def ledger_from(key_hash: str, text: bytes | str) -> tuple[int, LedgerEntry]:
    seq, ts, delta, kind, balance, memo = orjson.loads(text)
    return int(seq), LedgerEntry(float(ts), key_hash, int(delta), str(kind), int(balance), memo)


# script operations: flat argument lists (scripts.MONEY) -------------------------------------------------
def limits_fields(limits: ChargeLimits, ts: float) -> list[str]:
    """The 13 fields of a charge's limits: the quota periods are the UTC day and month of `ts`."""
    return [
        str(limits.spending_limit),
        *map(str, limits.quota),
        quota.day_of(ts),
        quota.month_of(ts),
        limits.team_id or "",
        str(limits.team_budget),
        *map(str, limits.team_quota),
    ]


def charge_op(key_hash: str, amount: int, event: UsageEvent, limits: ChargeLimits) -> list[str]:
    ts = ts_text(event.timestamp)
    op = ["charge", key_hash, str(amount), ts, json_text(event.tool), usage_json(event)]
    return op + limits_fields(limits, event.timestamp)


def many_op(key_hash: str, charges: Sequence[tuple[int, UsageEvent]], ts: float, limits: ChargeLimits) -> list[str]:
    op = ["many", key_hash, str(len(charges)), ts_text(ts), *limits_fields(limits, ts)]
    for amount, event in charges:
        op += [str(amount), json_text(event.tool), usage_json(event)]
    return op


def _word(kind: str) -> str:
    """Ledger kinds are pasted into JSON by the script: plain words only."""
    if not kind.replace("_", "").isalnum():
        raise ValueError(f"ledger kind must be a plain word, not {kind!r}")
    return kind


def adjust_op(
    key_hash: str,
    delta: int,
    kind: str,
    memo: str | None,
    spent_delta: int,
    calls_delta: int,
    ts: float,
    team_id: str | None = None,
    below: int = -1,
) -> list[str]:
    """A move of `delta` credits; a `refund` also gives the call back to the key's (and team's) quota.
    `below` >= 0: only while the balance is below it."""
    fields = [str(delta), _word(kind), json_text(memo), str(spent_delta), str(calls_delta), ts_text(ts)]
    return ["adjust", key_hash, *fields, quota.day_of(ts), quota.month_of(ts), team_id or "", str(below)]


def once_op(key_hash: str, delta: int, kind: str, memo: str, ts: float, once_id: str) -> list[str]:
    """A move applied at most once per `once_id` (store/once.py)."""
    return ["once", key_hash, str(delta), _word(kind), json_text(memo), ts_text(ts), once_id]


def create_op(record: KeyRecord, kind: str, ts: float) -> list[str]:
    return [
        "create",
        record.key_hash,
        record.alias or "",
        record_json(record),
        str(record.credits),
        str(record.total_spent),
        str(record.total_calls),
        ts_text(record.last_used_at),
        _word(kind),
        ts_text(ts),
    ]


def check_op(records: Sequence[KeyRecord]) -> list[str]:
    aliases = [r.alias for r in records if r.alias]
    return ["check", str(len(records)), *(r.key_hash for r in records), str(len(aliases)), *aliases]


def doc_op(kind: str, doc_id: str, body: Any | None) -> list[str]:
    return ["doc", kind, doc_id, "" if body is None else json_text(body)]
