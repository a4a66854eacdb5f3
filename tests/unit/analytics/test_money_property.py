"""Every money report's numbers against a naive computation over the same random keys and calls, written
plainly here from the list of facts (never through the reports' code)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.records import KeyRecord
from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

NOW = 1_790_000_000.0
HOUR = 3600
TOOLS = ["search", "gen", "lint"]
CREATED = NOW - 4 * 86400  # before every call (the calls go back 3 days)
LIVED_HOURS = 96  # complete hours since CREATED's hour


@dataclass
class Key:
    credits: int
    spent: int
    calls: int
    namespace: str
    state: str  # active / suspended / revoked


@dataclass
class Call:
    age_min: int
    key: int | None  # index into the keys, None: no valid key
    tool: str
    ok: bool
    credits: int
    refunded: int
    duration: int


keys_st = st.lists(
    st.builds(
        Key,
        st.integers(0, 1500),
        st.integers(0, 1500),
        st.integers(0, 50),
        st.sampled_from(["default", "prod"]),
        st.sampled_from(["active", "active", "active", "suspended", "revoked"]),
    ),
    min_size=1,
    max_size=6,
)
calls_st = st.lists(
    st.builds(
        Call,
        st.integers(0, 60 * 24 * 3),
        st.one_of(st.none(), st.integers(0, 5)),
        st.sampled_from(TOOLS),
        st.booleans(),
        st.integers(0, 20),
        st.integers(0, 3),
        st.integers(0, 400),
    ),
    max_size=40,
)


@dataclass
class Case:
    w: World
    records: list[KeyRecord]
    facts: list[CallFact]

    @property
    def live(self) -> list[KeyRecord]:
        return [r for r in self.records if r.active and not r.suspended]

    def label(self, key_hash: str) -> tuple[str, str]:
        r = next(r for r in self.records if r.key_hash == key_hash)
        return r.name, r.masked


def build(w: World, keys: list[Key], calls: list[Call]) -> Case:
    records = [
        w.key(
            f"k{i}",
            credits=k.credits,
            total_spent=k.spent,
            total_calls=k.calls,
            namespace=k.namespace,
            active=k.state != "revoked",
            suspended=k.state == "suspended",
            created_at=CREATED,
        )
        for i, k in enumerate(keys)
    ]
    facts = []
    for c in calls:
        owner = records[c.key] if c.key is not None and c.key < len(records) else None
        facts.append(
            CallFact(
                NOW - c.age_min * 60,
                owner.key_hash if owner else None,
                c.tool,
                owner.namespace if owner else "default",
                "" if c.ok else "rate_limited",
                credits=c.credits if c.ok else 0,
                refunded=c.refunded if c.ok else 0,
                duration_ms=c.duration,
            )
        )
    w.facts(facts)
    return Case(w, records, facts)


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


@settings(max_examples=25, deadline=None)
@given(keys_st, calls_st)
def test_call_reports_match_naive_sums(keys: list[Key], calls: list[Call]) -> None:
    with world(NOW) as w:
        case = build(w, keys, calls)
        facts = case.facts
        allowed = [x for x in facts if not x.reason]

        costs = w.run("costs")
        assert costs["summary"]["totalCalls"] == len(facts)
        assert costs["summary"]["totalAllowed"] == len(allowed)
        assert costs["summary"]["totalDenied"] == len(facts) - len(allowed)
        assert costs["summary"]["totalCredits"] == sum(x.credits for x in facts)
        per_tool = {t["tool"]: (t["calls"], t["credits"]) for t in costs["perTool"]}
        assert per_tool == {
            tool: (sum(1 for x in facts if x.tool == tool), sum(x.credits for x in facts if x.tool == tool))
            for tool in {x.tool for x in facts}
        }
        per_ns = {n["namespace"]: n["credits"] for n in costs["perNamespace"]}
        assert per_ns == {n: sum(x.credits for x in facts if x.namespace == n) for n in {x.namespace for x in facts}}
        spent: Counter[str] = Counter()
        for x in facts:
            if x.key_hash:
                spent[x.key_hash] += x.credits
        expected_top = sorted(
            ((-c, *case.label(h)) for h, c in spent.items() if c > 0),
        )[:10]
        assert [(-s["credits"], s["name"], s["key"]) for s in costs["topSpenders"]] == expected_top
        last24 = [x for x in facts if x.ts // HOUR > NOW // HOUR - 24]
        assert sum(h["calls"] for h in costs["hourlyTrends"]) == len(last24)
        assert len(costs["hourlyTrends"]) == 24

        revenue = w.run("revenue")
        assert revenue["summary"]["totalRevenue"] == sum(x.credits for x in allowed)
        assert revenue["summary"]["totalCalls"] == len(allowed)
        assert revenue["creditFlow"] == {
            "totalAllocated": sum(r.credits + r.total_spent for r in case.live),
            "totalSpent": sum(r.total_spent for r in case.live),
            "totalRemaining": sum(r.credits for r in case.live),
        }

        by_tool: dict[str, list[CallFact]] = defaultdict(list)
        for x in allowed:
            by_tool[x.tool].append(x)
        tool_rev = w.run("tool-revenue")
        total = sum(x.credits for x in allowed)
        assert tool_rev["summary"]["totalRevenue"] == total
        assert {t["tool"]: t for t in tool_rev["tools"]} == {
            tool: {
                "tool": tool,
                "totalCredits": sum(x.credits for x in xs),
                "callCount": len(xs),
                "avgCreditsPerCall": round(sum(x.credits for x in xs) / len(xs), 2),
                "uniqueConsumers": len({x.key_hash for x in xs if x.key_hash}),
                "percentage": pct(sum(x.credits for x in xs), total),
            }
            for tool, xs in by_tool.items()
        }
        profit = w.run("tool-profitability")
        for t in profit["tools"]:
            xs = by_tool[t["tool"]]
            assert t["totalRevenue"] == sum(x.credits for x in xs)
            assert t["refunded"] == sum(x.refunded for x in xs)
            assert t["avgDurationMs"] == round(sum(x.duration_ms for x in xs) / len(xs), 2)
        revenues = [t["totalRevenue"] for t in profit["tools"]]
        assert revenues == sorted(revenues, reverse=True)

        flow = w.run("credit-flow")
        assert flow["period"] == {
            "creditsSpent": sum(x.credits for x in facts),
            "creditsRefunded": sum(x.refunded for x in facts),
            "callCount": len(allowed),
        }

        anomalies = w.run("anomalies", threshold=100)  # rules only: no spike reaches 100
        denial = {a["keyName"] for a in anomalies["anomalies"] if a["type"] == "high_denial_rate"}
        expected = set()
        for r in case.live:
            mine = [x for x in facts if x.key_hash == r.key_hash]
            if len(mine) >= 3 and sum(1 for x in mine if x.reason) / len(mine) > 0.5:
                expected.add(r.name)
        assert denial == expected


@settings(max_examples=25, deadline=None)
@given(keys_st, calls_st)
def test_balance_reports_match_naive_sums(keys: list[Key], calls: list[Call]) -> None:
    with world(NOW) as w:
        case = build(w, keys, calls)
        live = case.live
        given_ = {r.key_hash: r.credits + r.total_spent for r in live}

        dist = w.run("credit-distribution")
        assert sum(b["count"] for b in dist["buckets"]) == len(live)
        assert sum(b["totalCredits"] for b in dist["buckets"]) == sum(r.credits for r in live)
        balances = sorted(r.credits for r in live)
        n = len(balances)
        median = (balances[n // 2] if n % 2 else (balances[n // 2 - 1] + balances[n // 2]) / 2) if n else None
        assert dist["summary"]["medianCredits"] == median

        util = w.run("credit-utilization")
        bands: Counter[str] = Counter()
        for r in live:
            if r.total_spent == 0:
                bands["0%"] += 1
            elif r.credits == 0:
                bands["100%"] += 1
            else:
                u = 100 * r.total_spent / given_[r.key_hash]
                bands["1-25%" if u <= 25 else "26-50%" if u <= 50 else "51-75%" if u <= 75 else "76-99%"] += 1
        assert {b["range"]: b["count"] for b in util["bands"]} == dict(bands)

        alloc = w.run("credit-allocation")
        tiers = {t["tier"]: (t["count"], t["totalCredits"]) for t in alloc["tiers"]}
        for name, low, high in (("1-100", 1, 100), ("101-500", 101, 500), ("501+", 501, math.inf)):
            inside = [g for g in given_.values() if low <= g <= high]
            assert tiers[name] == (len(inside), sum(inside))
        assert alloc["summary"]["totalKeys"] == len(live)

        waste = w.run("credit-waste")
        wasteful = [r for r in live if given_[r.key_hash] > 0]
        assert waste["summary"]["totalWasted"] == sum(r.credits for r in wasteful)
        exact = [100 * r.credits / given_[r.key_hash] for r in wasteful]
        assert waste["summary"]["averageWastePercent"] == (round(sum(exact) / len(exact), 2) if exact else 0)
        assert [k["wastePercent"] for k in waste["keys"]] == sorted(
            (k["wastePercent"] for k in waste["keys"]), reverse=True
        )

        eff = w.run("credit-efficiency", limit=100)
        over = {r.name for r in wasteful if r.credits / given_[r.key_hash] > 0.9}
        under = {
            r.name for r in live if r.total_spent > 0 and (r.credits <= 10 or r.credits / given_[r.key_hash] <= 0.1)
        }
        assert {k["name"] for k in eff["overProvisioned"]} == over
        assert {k["name"] for k in eff["underProvisioned"]} == under

        burn = w.run("credit-burn-rate")
        current = int(NOW // HOUR)
        recent = [x for x in case.facts if current - 24 <= x.ts // HOUR < current]
        assert burn["burnRate"]["creditsPerHour"] == round(sum(x.credits for x in recent) / 24, 2)
        assert burn["summary"]["activeKeys"] == len(live)

        forecast = w.run("forecast", limit=100)
        assert forecast["summary"]["totalActiveKeys"] == len(live)
        rows: dict[str, Any] = {k["keyName"]: k for k in forecast["keyForecasts"]}
        for r in live:
            row = rows[r.name]
            avg = r.total_spent / r.total_calls if r.total_calls else 0
            assert row["estimatedCallsRemaining"] == (math.floor(r.credits / avg) if avg else None)
            mine = sum(x.credits for x in case.facts if x.key_hash == r.key_hash and x.ts // HOUR < current)
            assert row["creditsPerHour"] == round(mine / LIVED_HOURS, 2)  # the key existed 96 of the 168 hours


def test_a_key_spike_against_its_own_flat_week() -> None:
    """Ten calls every hour for a week, then one hour of 100: median 10, MAD 0, scale √10."""
    current = int(NOW // HOUR)
    with world(NOW) as w:
        k = w.key("steady", credits=10_000, created_at=(current - 24 - 168) * HOUR)
        hours = range(current - 24 - 168, current)
        facts = [
            CallFact(h * HOUR + i, k.key_hash, "search", "default", "", credits=1) for h in hours for i in range(10)
        ]
        facts += [CallFact((current - 3) * HOUR + 100 + i, k.key_hash, "search", "default", "") for i in range(90)]
        w.facts(facts)
        out = w.run("anomalies")
        spikes = [a for a in out["anomalies"] if a["type"] == "usage_spike"]
        assert len(spikes) == 1 and spikes[0]["keyName"] == "steady"
        details = spikes[0]["details"]
        assert details["calls"] == 100 and details["medianCalls"] == 10
        assert details["zScore"] == round(90 / math.sqrt(10), 2)
        assert details["flaggedHours"] == 1 and spikes[0]["severity"] == "critical"
        assert out["method"]["baselineFrom"] is not None
        quiet = w.run("anomalies", threshold=30)
        assert not [a for a in quiet["anomalies"] if a["type"].endswith("spike")]


def test_a_week_of_steady_spend_forecasts_flat() -> None:
    current = int(NOW // HOUR)
    with world(NOW) as w:
        k = w.key("steady", credits=500, created_at=(current - 200) * HOUR)
        w.facts([CallFact((current - a) * HOUR, k.key_hash, "search", "default", "", credits=3) for a in range(1, 169)])
        out = w.run("revenue-forecast")
        assert out["current"]["creditsPerHour"] == 3
        assert out["forecast"] == {"nextHour": 3, "nextDay": 72, "nextWeek": 500, "nextMonth": 500}
        burn = w.run("credit-burn-rate")
        assert burn["burnRate"]["creditsPerHour"] == 3 and burn["burnRate"]["hoursUntilDepleted"] == round(500 / 3, 2)
        row = w.run("forecast")["keyForecasts"][0]
        assert row["creditsPerHour"] == 3 and row["hoursUntilDepleted"] == round(500 / 3, 2)
