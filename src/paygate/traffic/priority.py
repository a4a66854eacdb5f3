"""The priority queue (docs/traffic.md, "Priority queue"): calls that found a concurrency limit reached
wait here, by their key's tier, until the limiter (traffic/concurrency.py) grants them a slot.

Order of grants: the highest tier first, first come first served within a tier. A waiter is promoted one
tier up for every `promoteAfterMs` it has waited, so a busy higher tier cannot starve a lower one for
ever; a promoted waiter keeps its place by arrival among the waiters of its new tier. Each waiter has a
deadline by the tier it arrived in (`maxWaitMs`); the queue holds at most `maxQueueDepth` waiters.

The queue decides who is next and keeps the counts; the limiter owns the slots and the waiting.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TIERS = ("critical", "high", "normal", "low", "background")  # the reference's tiers, highest first
RANK = {tier: rank for rank, tier in enumerate(TIERS)}
DEFAULT_TIER = "normal"
DEFAULT_MAX_WAIT_MS = {"critical": 30_000, "high": 20_000, "normal": 10_000, "low": 5_000, "background": 2_000}
DEFAULT_MAX_QUEUE_DEPTH = 100
DEFAULT_PROMOTE_AFTER_MS = 1_000
OUTCOMES = ("granted", "timeout", "cancelled")


@dataclass(slots=True)
class QueueConfig:
    enabled: bool = False
    max_queue_depth: int = DEFAULT_MAX_QUEUE_DEPTH
    max_wait_ms: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_WAIT_MS))
    promote_after_ms: int = DEFAULT_PROMOTE_AFTER_MS  # 0: never promoted
    key_tiers: dict[str, str] = field(default_factory=dict)  # key hash → tier (absent: DEFAULT_TIER)

    def to_doc(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "maxQueueDepth": self.max_queue_depth,
            "maxWaitMs": dict(self.max_wait_ms),
            "promoteAfterMs": self.promote_after_ms,
            "keyTiers": dict(self.key_tiers),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> QueueConfig:
        """A stored config (written by `to_doc`); anything missing or malformed keeps its default."""
        out = cls()
        if isinstance(doc.get("enabled"), bool):
            out.enabled = doc["enabled"]
        if _count(doc.get("maxQueueDepth"), 1):
            out.max_queue_depth = doc["maxQueueDepth"]
        waits = doc.get("maxWaitMs")
        if isinstance(waits, dict):
            out.max_wait_ms.update({t: v for t, v in waits.items() if t in RANK and _count(v, 1)})
        if _count(doc.get("promoteAfterMs"), 0):
            out.promote_after_ms = doc["promoteAfterMs"]
        tiers = doc.get("keyTiers")
        if isinstance(tiers, dict):
            out.key_tiers = {h: t for h, t in tiers.items() if isinstance(h, str) and t in RANK}
        return out


def _count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


@dataclass(slots=True, eq=False)
class Waiter:
    """One call waiting for a slot. `future` is set to True when the limiter took a slot for it, False
    when it is sent away (the queue was switched off)."""

    key_hash: str
    tool: str
    tier: str  # the tier it arrived in: its deadline's
    rank: int  # its tier now (promotions lower it)
    seq: int  # arrival order
    since: float  # when it entered its current tier (monotonic seconds)
    arrived: float
    limit: str  # the limit that made it wait: "key" or "tool"
    future: asyncio.Future[bool]

    def granted(self) -> bool:
        f = self.future
        return f.done() and not f.cancelled() and f.result()


class PriorityQueue:
    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._tiers: list[list[Waiter]] = [[] for _ in TIERS]  # per rank, sorted by seq
        self._seq = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (tier arrived in, outcome)
        self.waited_ms: Counter[str] = Counter()  # total wait of granted waiters, per tier arrived in
        self.full = 0  # calls refused at once: the queue was full
        self.promotions = 0

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def depth(self) -> int:
        return sum(len(t) for t in self._tiers)

    def depth_by_tier(self) -> dict[str, int]:
        return {tier: len(self._tiers[rank]) for rank, tier in enumerate(TIERS)}

    def tier_of(self, key_hash: str) -> str:
        return self.config.key_tiers.get(key_hash, DEFAULT_TIER)

    def max_wait_seconds(self, tier: str) -> float:
        return self.config.max_wait_ms.get(tier, DEFAULT_MAX_WAIT_MS[tier]) / 1000

    def add(self, key_hash: str, tool: str, limit: str, now: float) -> Waiter | None:
        """A new waiter at the end of its key's tier, or None when the queue is full."""
        if self.depth() >= self.config.max_queue_depth:
            self.full += 1
            return None
        tier = self.tier_of(key_hash)
        self._seq += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiter = Waiter(key_hash, tool, tier, RANK[tier], self._seq, now, now, limit, future)
        self._tiers[waiter.rank].append(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> bool:
        line = self._tiers[waiter.rank]
        at = bisect.bisect_left(line, waiter.seq, key=lambda w: w.seq)
        if at < len(line) and line[at] is waiter:
            del line[at]
            return True
        return False

    def finish(self, waiter: Waiter, outcome: str, now: float) -> None:
        self.outcomes[waiter.tier, outcome] += 1
        if outcome == "granted":
            self.waited_ms[waiter.tier] += round((now - waiter.arrived) * 1000)

    def promote(self, now: float) -> None:
        """Move up every waiter that has spent `promoteAfterMs` in its tier (as often as it has): the
        promotion is dated when it became due, not when it was noticed, so the order never depends on
        how often this runs."""
        step = self.config.promote_after_ms / 1000
        if step <= 0:
            return
        for rank in range(1, len(TIERS)):
            line = self._tiers[rank]
            due = [w for w in line if now - w.since >= step]
            if not due:
                continue
            self._tiers[rank] = [w for w in line if now - w.since < step]
            for w in due:
                moves = min(int((now - w.since) // step), rank)
                w.since += moves * step
                w.rank = rank - moves
                self.promotions += moves
                bisect.insort(self._tiers[w.rank], w, key=lambda x: x.seq)

    def in_order(self) -> list[Waiter]:
        """Every waiter, the next to be granted first: by tier now, then arrival."""
        return [w for line in self._tiers for w in line]

    def send_away(self) -> None:
        """Switched off: every waiter is refused at once (none is left waiting for a deadline)."""
        for line in self._tiers:
            for w in line:
                if not w.future.done():
                    w.future.set_result(False)
            line.clear()

    def stats(self) -> dict[str, Any]:
        by_tier: dict[str, Any] = {}
        for tier in TIERS:
            granted = self.outcomes[tier, "granted"]
            by_tier[tier] = {
                "granted": granted,
                "timedOut": self.outcomes[tier, "timeout"],
                "cancelled": self.outcomes[tier, "cancelled"],
                "avgWaitMs": round(self.waited_ms[tier] / granted, 1) if granted else None,
            }
        return {
            "waits": sum(self.outcomes.values()),
            "timeouts": sum(v for (_, o), v in self.outcomes.items() if o == "timeout"),
            "rejectedFull": self.full,
            "promotions": self.promotions,
            "byTier": by_tier,
        }
