"""Consumer reports against a naive computation: for random keys and random histories of calls, every number
equals what a plain loop over the same facts and key records gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.analytics.reports import consumers_common, consumers_limits
from paygate.core.records import KeyRecord
from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

NOW = 1_790_000_000.0
HOUR = 3600.0
RATE = frozenset({"rate_limited", "tool_rate_limited"})
QUOTA = frozenset({"quota_exceeded", "team_quota_exceeded"})
REASONS = ["", "", "", "shadow", "rate_limited", "tool_rate_limited", "quota_exceeded", "insufficient_credits"]

key_st = st.tuples(
    st.sampled_from(["ann", "bob", "cy"]),  # names repeat: ties fall to the masked key
    st.integers(0, 300),  # credits
    st.integers(0, 300),  # total spent
    st.sampled_from(["default", "b"]),
    st.sampled_from(["live", "live", "revoked", "suspended"]),
    st.integers(0, 200),  # age in hours
    st.booleans(),  # has a quota
)
fact_st = st.tuples(
    st.integers(0, 100 * 60),  # age in minutes
    st.integers(0, 4),  # key index (past the keys: a call without a valid key)
    st.sampled_from(["t1", "t2", "t3"]),
    st.sampled_from(REASONS),
    st.integers(0, 20),
    st.integers(1, 8),  # repeated: call counts cross the segment bounds
)
history = st.tuples(
    st.lists(key_st, max_size=5),
    st.lists(fact_st, max_size=30),
    st.sampled_from([None, "default", "b"]),  # namespace filter
    st.sampled_from([None, 5, 30, 200]),  # since, hours ago
)
SETTINGS = settings(max_examples=25, deadline=None)


@dataclass
class Case:
    w: World
    keys: list[KeyRecord]
    facts: list[CallFact]  # in the window
    ns: str | None
    since_hour: int | None
    params: dict[str, Any]

    def selected(self, live: bool = True) -> list[KeyRecord]:
        return [
            k
            for k in self.keys
            if (not live or (k.active and not k.suspended)) and (self.ns is None or k.namespace == self.ns)
        ]

    def admitted(self, k: KeyRecord) -> list[CallFact]:
        return [f for f in self.facts if f.key_hash == k.key_hash and f.allowed]

    def calls(self, k: KeyRecord) -> int:
        return len(self.admitted(k))

    def spent(self, k: KeyRecord) -> int:
        return sum(f.credits for f in self.admitted(k))

    def run(self, name: str, **extra: Any) -> dict[str, Any]:
        return self.w.run(name, **self.params, **extra)


@contextmanager
def case(data: tuple[list[Any], list[Any], str | None, int | None]) -> Iterator[Case]:
    key_specs, fact_specs, ns, since_ago = data
    with world(NOW, global_rate_limit=30) as w:
        keys = []
        for name, credits, spent, namespace, status, age, quota in key_specs:
            keys.append(
                w.key(
                    name,
                    credits,
                    total_spent=spent,
                    namespace=namespace,
                    active=status != "revoked",
                    suspended=status == "suspended",
                    created_at=NOW - age * HOUR - 1,
                    quota={"dailyCallLimit": 5} if quota else None,
                )
            )
        facts = []
        for age, index, tool, reason, credits, times in fact_specs:
            k = keys[index] if index < len(keys) else None
            allowed = not reason or reason.startswith("shadow")
            facts += times * [
                CallFact(
                    NOW - age * 60,
                    k.key_hash if k else None,
                    tool,
                    k.namespace if k else "default",
                    reason,
                    credits=credits if allowed else 0,
                )
            ]
        w.facts(facts)
        since_hour = None if since_ago is None else int((NOW - since_ago * HOUR) // HOUR)
        params: dict[str, Any] = {}
        if ns is not None:
            params["namespace"] = ns
        if since_ago is not None:
            params["since"] = _iso(NOW - since_ago * HOUR)
        shown = [
            f for f in facts if (since_hour is None or f.ts // HOUR >= since_hour) and (ns is None or f.namespace == ns)
        ]
        yield Case(w, keys, shown, ns, since_hour, params)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def order(k: KeyRecord, metric: float) -> tuple[float, str, str]:
    return (-metric, k.name, k.masked)


@SETTINGS
@given(history)
def test_consumer_insights(data: Any) -> None:
    with case(data) as c:
        keys = c.selected(live=False)
        out = c.run("consumer-insights")
        assert out["summary"] == {
            "totalConsumers": len(keys),
            "activeConsumers": sum(1 for k in keys if c.calls(k)),
            "totalCreditsSpent": sum(c.spent(k) for k in keys),
            "totalCalls": sum(c.calls(k) for k in keys),
        }

        def entry(k: KeyRecord) -> dict[str, Any]:
            tools = {f.tool for f in c.admitted(k)}
            return {
                "name": k.name,
                "key": k.masked,
                "totalSpent": c.spent(k),
                "totalCalls": c.calls(k),
                "uniqueTools": len(tools),
            }

        spenders = sorted((k for k in keys if c.spent(k) > 0), key=lambda k: order(k, c.spent(k)))
        active = sorted((k for k in keys if c.calls(k) > 0), key=lambda k: order(k, c.calls(k)))
        assert out["topSpenders"] == [entry(k) for k in spenders]
        assert out["mostActive"] == [entry(k) for k in active]


@SETTINGS
@given(history)
def test_segmentation_lifetime_value_retention(data: Any) -> None:
    with case(data) as c:
        keys = c.selected()
        segments = []
        for name, low, high in (("power", 20, 10**9), ("regular", 5, 19), ("casual", 1, 4), ("dormant", 0, 0)):
            members = [k for k in keys if low <= c.calls(k) <= high]
            calls = sum(c.calls(k) for k in members)
            segments.append(
                {
                    "segment": name,
                    "count": len(members),
                    "totalCredits": sum(k.credits for k in members),
                    "totalSpent": sum(c.spent(k) for k in members),
                    "avgCallsPerKey": round(calls / len(members), 2) if members else 0.0,
                }
            )
        assert c.run("consumer-segmentation")["segments"] == segments

        clv = c.run("consumer-lifetime-value")
        total = sum(c.spent(k) for k in keys)
        assert clv["summary"] == {
            "totalConsumers": len(keys),
            "totalLifetimeValue": total,
            "avgLifetimeValue": round(total / len(keys)) if keys else 0,
        }
        valued = sorted((k for k in keys if c.spent(k) > 0), key=lambda k: order(k, c.spent(k)))
        assert [(r["key"], r["lifetimeValue"], r["tier"]) for r in clv["consumers"]] == [
            (k.masked, c.spent(k), "high" if c.spent(k) >= 100 else "medium" if c.spent(k) >= 10 else "low")
            for k in valued
        ]

        retention = c.run("consumer-retention")
        days: dict[str, list[KeyRecord]] = {}
        for k in keys:
            days.setdefault(_iso(k.created_at)[:10], []).append(k)
        assert retention["cohorts"] == [
            {
                "period": day,
                "created": len(members),
                "retained": sum(1 for k in members if c.calls(k)),
                "retentionRate": round(100 * sum(1 for k in members if c.calls(k)) / len(members)),
                "avgSpend": round(sum(c.spent(k) for k in members) / len(members)),
            }
            for day, members in sorted(days.items(), reverse=True)
        ]


@SETTINGS
@given(history)
def test_activity_velocity_risk_growth_ranking(data: Any) -> None:
    with case(data) as c:
        keys = c.selected()
        activity = c.run("consumer-activity")
        by_spend = sorted(keys, key=lambda k: (-c.spent(k), -c.calls(k), k.name, k.masked))
        assert [
            (r["key"], r["totalCalls"], r["totalSpent"], r["creditsRemaining"], r["status"])
            for r in activity["consumers"]
        ] == [(k.masked, c.calls(k), c.spent(k), k.credits, "active" if c.calls(k) else "inactive") for k in by_spend]

        def rate(k: KeyRecord) -> float:
            start = k.created_at if c.since_hour is None else max(k.created_at, c.since_hour * HOUR)
            return c.spent(k) / max((NOW - start) / HOUR, 1.0)

        velocity = c.run("consumer-spend-velocity")
        fastest = sorted(keys, key=lambda k: order(k, rate(k)))
        assert [(r["key"], r["creditsPerHour"], r["hoursUntilDepleted"]) for r in velocity["consumers"]] == [
            (k.masked, round(rate(k), 2), round(k.credits / rate(k), 2) if rate(k) > 0 else None) for k in fastest
        ]

        def utilization(k: KeyRecord) -> float:
            given = k.credits + k.total_spent
            return 100 * k.total_spent / given if given else 0.0

        risk = c.run("consumer-risk-score")
        riskiest = sorted(keys, key=lambda k: (-round(utilization(k)), -utilization(k), k.name, k.masked))
        assert [(r["key"], r["riskScore"], r["spentInRange"]) for r in risk["consumers"]] == [
            (k.masked, round(utilization(k)), c.spent(k)) for k in riskiest
        ]
        levels = [
            "low" if u < 25 else "medium" if u < 50 else "high" if u < 75 else "critical"
            for u in (round(utilization(k)) for k in keys)
        ]
        assert risk["summary"]["riskDistribution"] == {
            lvl: levels.count(lvl) for lvl in ("low", "medium", "high", "critical")
        }

        growth = c.run("consumer-growth")
        biggest = sorted(keys, key=lambda k: order(k, k.credits + k.total_spent))
        assert [(r["key"], r["creditsAllocated"], r["totalSpent"], r["spendRate"]) for r in growth["consumers"]] == [
            (k.masked, k.credits + k.total_spent, c.spent(k), round(rate(k), 2)) for k in biggest
        ]
        assert growth["summary"]["newConsumers24h"] == sum(1 for k in keys if k.created_at > NOW - 24 * HOUR)

        for sort_by, metric in (("totalCalls", c.calls), ("creditsRemaining", lambda k: k.credits)):
            ranking = c.run("key-ranking", sortBy=sort_by)
            assert [(r["rank"], r["key"]) for r in ranking["rankings"]] == [
                (i, k.masked) for i, k in enumerate(sorted(keys, key=lambda k: order(k, metric(k))), 1)
            ]


@SETTINGS
@given(history)
def test_rate_limits_and_quotas(data: Any) -> None:
    with case(data) as c:
        facts = c.facts
        rates = c.run("rate-limits", limit=1000)
        limited = [f for f in facts if f.reason in RATE]
        assert rates["summary"]["totalCalls"] == len(facts)
        assert rates["summary"]["totalRateLimited"] == len(limited)
        every = c.selected(live=False)
        attempts = {k.key_hash: [f for f in facts if f.key_hash == k.key_hash] for k in every}
        throttled = {h: sum(1 for f in fs if f.reason in RATE) for h, fs in attempts.items()}
        callers = sorted(
            (k for k in every if attempts[k.key_hash]),
            key=lambda k: (-throttled[k.key_hash], -len(attempts[k.key_hash]), k.name, k.masked),
        )
        assert [(r["key"], r["calls"], r["rateLimited"], r["currentWindowRemaining"]) for r in rates["perKey"]] == [
            (k.masked, len(attempts[k.key_hash]), throttled[k.key_hash], 30) for k in callers
        ]
        tools = sorted({f.tool for f in facts})
        per_tool: list[dict[str, Any]] = [
            {
                "tool": t,
                "calls": sum(1 for f in facts if f.tool == t),
                "rateLimited": sum(1 for f in limited if f.tool == t),
            }
            for t in tools
        ]
        assert rates["perTool"] == sorted(per_tool, key=lambda r: (-r["rateLimited"], -r["calls"], r["tool"]))
        first_hour = int(NOW // HOUR) - 23
        if c.since_hour is not None:
            first_hour = max(first_hour, c.since_hour)
        assert [(h["calls"], h["rateLimited"]) for h in rates["hourlyTrends"]] == [
            (
                sum(1 for f in facts if f.ts // HOUR == hour),
                sum(1 for f in limited if f.ts // HOUR == hour),
            )
            for hour in range(first_hour, int(NOW // HOUR) + 1)
        ]

        quotas = c.run("quotas", limit=1000)
        denied = sum(1 for f in facts if f.reason in QUOTA)
        keys = c.selected()
        assert quotas["summary"] == {
            "totalKeys": len(keys),
            "keysWithQuotas": sum(1 for k in keys if k.quota),
            "totalCalls": len(facts),
            "totalQuotaDenials": denied,
            "quotaDenialRate": round(denied / len(facts), 4) if facts else 0.0,
        }
        assert sorted(r["key"] for r in quotas["perKey"]) == sorted(k.masked for k in keys)
        assert {r["key"]: r["source"] for r in quotas["perKey"]} == {
            k.masked: "per-key" if k.quota else "none" for k in keys
        }


@SETTINGS
@given(history)
def test_reading_key_by_key_or_all_at_once_agree(data: Any) -> None:
    """Shown keys are read one by one when few (PER_KEY_READS), else in one query: both give one answer."""
    names = ("consumer-insights", "consumer-lifetime-value", "consumer-risk-score", "consumer-growth", "quotas")
    with case(data) as c:
        one_by_one = [c.run(name) for name in names] + [c.run("key-ranking", sortBy="creditsRemaining")]
        with (
            patch.object(consumers_common, "PER_KEY_READS", -1),
            patch.object(consumers_limits, "PER_KEY_READS", -1),
        ):
            at_once = [c.run(name) for name in names] + [c.run("key-ranking", sortBy="creditsRemaining")]
        assert one_by_one == at_once
