"""Per-key reports read from the store: usage breakdown, rate windows, credit history, spending velocity.

Everything here is read-only: rate windows are peeked (never hit), nothing is
charged, and answers carry masked keys only (never a raw key or its hash).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from paygate.billing.service import BillingService
from paygate.core.policy import EffectivePolicy
from paygate.core.ratelimit import WINDOW_SECONDS, RateDecision
from paygate.core.records import KeyRecord, LedgerEntry, UsageEvent
from paygate.core.values import iso_time
from paygate.keys.auto_topup import MEMO as AUTO_TOPUP_MEMO
from paygate.store.base import Store

USAGE_SCAN = 100_000  # newest usage events a per-key report looks through
RECENT_EVENTS = 50
MAX_SERIES_HOURS = 720  # hourly buckets kept in a time series (30 days)
HISTORY_CAP = 100  # credit-history entries per answer, as the reference
WINDOW_MS = int(WINDOW_SECONDS * 1000)

# Ledger kinds under the names the reference's credit history uses; other kinds keep their own name.
LEDGER_TYPES = {"create": "initial", "charge": "deduction", "surcharge": "deduction"}
# Kinds that put credits on a key from outside it (the dashboard's totalAllocated); refunds and released
# reservations only give back what the key had. `stripe_credit`: a Stripe payment (payments/stripe_ledger.py).
ALLOCATION_KINDS = frozenset({"create", "import", "topup", "transfer_in", "rotate_in", "restore", "stripe_credit"})


def key_status(record: KeyRecord, now: float) -> str:
    """One word for a key: revoked beats expired beats suspended."""
    if not record.active:
        return "revoked"
    if record.expires_at is not None and now >= record.expires_at:
        return "expired"
    return "suspended" if record.suspended else "active"


def ledger_type(e: LedgerEntry) -> str:
    """An entry's type in the reference's vocabulary (auto-topups are top-ups with their own memo)."""
    if e.kind == "topup" and e.memo == AUTO_TOPUP_MEMO:
        return "auto_topup"
    return LEDGER_TYPES.get(e.kind, e.kind)


def rounded(amount: float) -> float:
    return round(amount, 2)


class KeyReports:
    """Built per request: the usage log is read once and shared by every report the request computes."""

    def __init__(self, store: Store, billing: BillingService) -> None:
        self.store = store
        self.billing = billing
        self._usage: dict[str, list[UsageEvent]] = {}

    # --- shared reads -------------------------------------------------------------------------
    def events(self, record: KeyRecord, since: float | None = None) -> list[UsageEvent]:
        """The key's newest USAGE_SCAN usage events (oldest first)."""
        if record.key_hash not in self._usage:
            self._usage[record.key_hash] = self.store.query_usage(None, USAGE_SCAN, key_hash=record.key_hash)
        return [e for e in self._usage[record.key_hash] if since is None or e.timestamp >= since]

    def preload(self, record: KeyRecord, since: float) -> None:
        """Read only the key's events since `since` (for a report that looks no further back)."""
        self._usage[record.key_hash] = self.store.query_usage(since, USAGE_SCAN, key_hash=record.key_hash)

    def policy(self, record: KeyRecord) -> EffectivePolicy:
        """The key's effective policy (key + group + plan), as the gate resolves it."""
        return self.billing.policy_for(record)

    def global_rate_limit(self, record: KeyRecord) -> int:
        return self.billing.rate_limit_for(self.policy(record))

    def tool_price(self, record: KeyRecord, tool: str) -> int:
        """The per-call price this key pays for `tool` (group override, plan multiplier; before size charges)."""
        return self.policy(record).price(tool, self.billing.prices.for_tool(tool).credits_per_call)

    # --- GET /keys/usage ----------------------------------------------------------------------
    def usage(self, record: KeyRecord, since: float | None) -> dict[str, Any]:
        events = self.events(record, since)
        per_tool: dict[str, dict[str, int]] = {}
        series: dict[int, dict[str, Any]] = {}
        deny_reasons: Counter[str] = Counter()
        for e in events:
            tool = per_tool.setdefault(e.tool, {"calls": 0, "credits": 0, "denied": 0})
            bucket = series.setdefault(int(e.timestamp // 3600), {"calls": 0, "credits": 0, "denied": 0})
            for stats in (tool, bucket):  # every attempt; `denied` is the subset refused (as the reference)
                stats["calls"] += 1
                if e.allowed:
                    stats["credits"] += e.credits
                else:
                    stats["denied"] += 1
            if not e.allowed:
                deny_reasons[e.deny_reason or "unknown"] += 1
        allowed = [e for e in events if e.allowed]
        hours = sorted(series)[-MAX_SERIES_HOURS:]
        return {
            **self.identity(record),
            "credits": record.credits,
            "active": record.active,
            "suspended": record.suspended,
            "status": key_status(record, time.time()),
            "since": iso_time(since),
            "totalCalls": len(events),
            "totalAllowed": len(allowed),
            "totalDenied": len(events) - len(allowed),
            "totalCreditsSpent": sum(e.credits for e in allowed),
            "perTool": per_tool,
            "denyReasons": dict(deny_reasons),
            "timeSeries": [{"hour": iso_time(h * 3600.0), **series[h]} for h in hours],
            "recentEvents": [event_row(e) for e in reversed(events[-RECENT_EVENTS:])],
        }

    @staticmethod
    def identity(record: KeyRecord) -> dict[str, Any]:
        return {"key": record.masked, "name": record.name, "alias": record.alias}

    # --- GET /keys/rate-limit-status ----------------------------------------------------------
    def rate_limits(self, record: KeyRecord, now: float) -> dict[str, Any]:
        """The key's windows as they stand, peeked: looking never uses up a slot."""
        limit = self.global_rate_limit(record)
        out: dict[str, Any] = {**self.identity(record), "global": window(self.store, record.key_hash, limit, now)}
        per_tool = {
            tool: window(self.store, f"{record.key_hash}\x00{tool}", price.rate_limit_per_min, now)
            for tool, price in sorted(self.billing.prices.overrides.items())
            if price.rate_limit_per_min
        }
        if per_tool:
            out["perTool"] = per_tool
        return out

    # --- GET /keys/credit-history -------------------------------------------------------------
    def credit_history(self, record: KeyRecord, kind: str | None, limit: int, since: float | None) -> dict[str, Any]:
        entries = [ledger_row(e) for e in self.store.ledger(record.key_hash)]
        entries = [e for e in entries if (kind is None or e["type"] == kind) and (since is None or e["ts"] >= since)]
        entries.reverse()  # newest first
        shown = entries[: min(limit, HISTORY_CAP)]
        for e in shown:
            del e["ts"]
        return {
            **self.identity(record),
            "currentBalance": record.credits,
            "totalEntries": len(entries),
            "entries": shown,
        }

    # --- GET /keys/spending-velocity ----------------------------------------------------------
    def velocity(self, record: KeyRecord, window_hours: int, now: float) -> dict[str, Any]:
        start = now - window_hours * 3600
        spent = [e for e in self.events(record, start) if e.allowed and e.timestamp <= now]
        credits = sum(e.credits for e in spent)
        credits_per_hour = credits / window_hours
        hours_left = record.credits / credits_per_hour if credits_per_hour > 0 else None
        tools: dict[str, dict[str, Any]] = {}
        for e in spent:
            t = tools.setdefault(e.tool, {"tool": e.tool, "calls": 0, "credits": 0})
            t["calls"] += 1
            t["credits"] += e.credits
        top = sorted(tools.values(), key=lambda t: (-t["credits"], -t["calls"], t["tool"]))[:5]
        return {
            **self.identity(record),
            "currentBalance": record.credits,
            "velocity": {
                "creditsPerHour": rounded(credits_per_hour),
                "creditsPerDay": rounded(credits_per_hour * 24),
                "callsPerHour": rounded(len(spent) / window_hours),
                "callsPerDay": rounded(len(spent) / window_hours * 24),
                "estimatedDepletionDate": iso_time(now + hours_left * 3600) if hours_left is not None else None,
                "estimatedHoursRemaining": rounded(hours_left) if hours_left is not None else None,
                "windowHours": window_hours,
                "dataPoints": len(spent),
            },
            "topTools": top,
        }

    # --- GET /keys/quota-status ---------------------------------------------------------------
    def quota(self, record: KeyRecord) -> dict[str, Any]:
        return {**self.identity(record), **quota_view(self.billing.quota_status(record))}

    def total_allocated(self, record: KeyRecord) -> int:
        return sum(e.delta for e in self.store.ledger(record.key_hash) if e.kind in ALLOCATION_KINDS and e.delta > 0)


def window(store: Store, subject: str, limit: int, now: float) -> dict[str, Any]:
    """One rate window as the reference shows it; `limit` 0 means no limit (remaining is null)."""
    if limit <= 0:
        return {"limit": 0, "used": 0, "remaining": None, "resetInMs": 0, "windowMs": WINDOW_MS}
    d: RateDecision = store.rate_peek(subject, limit, now)
    return {
        "limit": limit,
        "used": limit - d.remaining,
        "remaining": d.remaining,
        "resetInMs": d.reset_seconds * 1000 if d.remaining < limit else WINDOW_MS,
        "windowMs": WINDOW_MS,
    }


def event_row(e: UsageEvent) -> dict[str, Any]:
    return {
        "timestamp": iso_time(e.timestamp),
        "tool": e.tool,
        "credits": e.credits,
        "allowed": e.allowed,
        "denyReason": e.deny_reason,
        "requestId": e.request_id,
    }


def ledger_row(e: LedgerEntry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": e.timestamp,
        "timestamp": iso_time(e.timestamp),
        "type": ledger_type(e),
        "amount": e.delta,
        "balanceBefore": e.balance_after - e.delta,
        "balanceAfter": e.balance_after,
    }
    if e.memo:
        row["memo"] = e.memo
    return row


QUOTA_SOURCES = {"key": "per-key"}  # the lead's source names → the reference's


def quota_view(status: dict[str, Any]) -> dict[str, Any]:
    """`billing.quota_status(record)` in the reference's flat shape: limit 0 and remaining null when unlimited;
    resetDay / resetMonth name the current period, resetsAt when it ends."""
    source = str(status.get("source") or "none")
    out: dict[str, Any] = {"quotaSource": QUOTA_SOURCES.get(source, source)}
    for period, reset_name in (("daily", "resetDay"), ("monthly", "resetMonth")):
        raw = status.get(period) or {}
        flat: dict[str, Any] = {}
        for part in ("calls", "credits"):
            counts = raw.get(part) or {}
            limit = int(counts.get("limit") or 0)
            used = int(counts.get("used") or 0)
            flat[f"{part}Used"] = used
            flat[f"{part}Limit"] = limit
            flat[f"{part}Remaining"] = max(limit - used, 0) if limit else None
        flat[reset_name] = raw.get("period")
        flat["resetsAt"] = raw.get("resetsAt")
        out[period] = flat
    return out


def quota_utilization(view: dict[str, Any]) -> float:
    """The highest used/limit ratio over the daily and monthly limits that are set (0 with none)."""
    ratios = [
        p[f"{part}Used"] / p[f"{part}Limit"]
        for p in (view["daily"], view["monthly"])
        for part in ("calls", "credits")
        if p[f"{part}Limit"]
    ]
    return max(ratios, default=0.0)
