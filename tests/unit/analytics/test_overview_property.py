"""Overview reports against a plain recount: for random keys and call histories, every number equals what a
naive pass over the same keys and facts gives."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
HOUR = 3600
TOOLS = ["alpha", "beta", "gamma"]
SPACES = ["prod", "dev"]
REASONS = ["", "", "", "rate_limited", "insufficient_credits", "shadow"]


@dataclass(frozen=True)
class KeySpec:
    credits: int
    spent: int
    calls: int
    active: bool
    suspended: bool
    expires_in_h: float | None
    namespace: str
    age_h: float


keys_st = st.lists(
    st.builds(
        KeySpec,
        st.sampled_from([0, 5, 10, 11, 500, 20_000]),
        st.integers(0, 300),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
        st.one_of(st.none(), st.sampled_from([-5.0, 3.0, 30.0, 100.0, 500.0])),
        st.sampled_from(SPACES),
        st.sampled_from([0.5, 30.0, 200.0, 1000.0]),
    ),
    min_size=0,
    max_size=6,
)
# (minutes ago, key index, tool, reason, credits, failed)
facts_st = st.lists(
    st.tuples(
        st.integers(0, 60 * 72),
        st.integers(0, 5),
        st.sampled_from(TOOLS),
        st.sampled_from(REASONS),
        st.integers(0, 9),
        st.booleans(),
    ),
    max_size=40,
)


def build(
    w: World, specs: list[KeySpec], rows: list[tuple[int, int, str, str, int, bool]]
) -> tuple[list[Any], list[CallFact]]:
    keys = [
        w.key(
            f"k{i}",
            credits=s.credits,
            total_spent=s.spent,
            total_calls=s.calls,
            active=s.active,
            suspended=s.suspended,
            expires_at=None if s.expires_in_h is None else NOW + s.expires_in_h * HOUR,
            namespace=s.namespace,
            created_at=NOW - s.age_h * HOUR,
        )
        for i, s in enumerate(specs)
    ]
    facts = []
    for ago, index, tool, reason, credits, failed in rows:
        key = keys[index] if index < len(keys) else None
        allowed = not reason or reason.startswith("shadow")
        facts.append(
            CallFact(
                NOW - ago * 60,
                None if key is None else key.key_hash,
                tool,
                "prod" if key is None else key.namespace,
                reason,
                credits=credits if allowed else 0,
                failed=failed and allowed,
            )
        )
    w.facts(facts)
    return keys, facts


def allowed(f: CallFact) -> bool:
    return not f.reason or f.reason.startswith("shadow")


def status(k: Any) -> str:
    if not k.active:
        return "revoked"
    if k.expires_at is not None and k.expires_at <= NOW:
        return "expired"
    if k.suspended:
        return "suspended"
    return "active"


@settings(max_examples=25, deadline=None)
@given(keys_st, facts_st, st.sampled_from([None, "prod"]))
def test_analytics_matches_a_recount(specs: list[KeySpec], rows: list[Any], space: str | None) -> None:
    with world(NOW) as w:
        keys, facts = build(w, specs, rows)
        params: dict[str, Any] = {} if space is None else {"namespace": space}
        out = w.run("analytics", **params)
        mine = [f for f in facts if space is None or f.namespace == space]
        ok = [f for f in mine if allowed(f)]
        assert out["summary"]["totalCalls"] == len(mine)
        assert out["summary"]["totalCredits"] == sum(f.credits for f in mine)
        assert out["summary"]["totalDenied"] == len(mine) - len(ok)
        assert out["summary"]["totalFailed"] == sum(f.failed for f in mine)
        assert out["summary"]["uniqueKeys"] == len({f.key_hash for f in mine if f.key_hash})
        good = len(ok) - sum(f.failed for f in mine)
        assert out["summary"]["successRate"] == (round(good / len(mine), 4) if mine else 0.0)
        assert sum(b["calls"] for b in out["timeSeries"]) == len(mine)
        for bucket in out["timeSeries"]:
            inside = [f for f in mine if bucket["start"] <= iso(f.ts) < bucket["end"]]
            assert bucket["calls"] == len(inside)
            assert bucket["credits"] == sum(f.credits for f in inside)
        tools = Counter(f.tool for f in mine)
        assert [(t["tool"], t["calls"]) for t in out["tools"]] == sorted(tools.items(), key=lambda t: (-t[1], t[0]))
        by_hash = {k.key_hash: k for k in keys}
        spend: dict[str, list[int]] = {}
        for f in mine:
            if f.key_hash:
                s = spend.setdefault(f.key_hash, [0, 0])
                s[0] += f.credits
                s[1] += 1
        expected = sorted(((by_hash[h].name, c, n) for h, (c, n) in spend.items()), key=lambda e: (-e[1], -e[2], e[0]))
        assert [(c["keyName"], c["credits"], c["calls"]) for c in out["topConsumers"]] == expected[:10]
        for consumer in out["topConsumers"]:  # its most called tool (the first by name on a tie)
            calls = Counter(f.tool for f in mine if f.key_hash and by_hash[f.key_hash].name == consumer["keyName"])
            assert consumer["topTool"] == min(calls, key=lambda t: (-calls[t], t))


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


@settings(max_examples=25, deadline=None)
@given(keys_st, facts_st)
def test_dashboard_and_system_health_match_a_recount(specs: list[KeySpec], rows: list[Any]) -> None:
    with world(NOW) as w:
        keys, facts = build(w, specs, rows)
        out = w.run("dashboard", limit=100)
        assert out["usage"]["totalCalls"] == len(facts)
        assert out["usage"]["totalAllowed"] == sum(allowed(f) for f in facts)
        assert out["usage"]["totalCreditsSpent"] == sum(f.credits for f in facts)
        reasons = Counter(f.reason for f in facts if not allowed(f))
        assert out["usage"]["denyReasons"] == [
            {"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda x: (-x[1], x[0]))
        ]
        assert sum(t["calls"] for t in out["topTools"]) == len(facts)
        assert out["keys"]["total"] == len(keys)
        assert Counter(status(k) for k in keys) == Counter({s: n for s, n in out["keys"].items() if s != "total" and n})

        report = w.run("system-health")
        health = report["components"]
        # The overall score: weights 40 / 35 / 25 %, halves up, in integers (floats can land just under a half)
        weighted = 40 * health["keyHealth"]["score"] + 35 * health["errorRate"]["score"]
        weighted += 25 * health["creditUtilization"]["score"]
        assert report["score"] == (weighted + 50) // 100
        if keys:
            bad = sum(1 for k in keys if status(k) != "active" or k.credits <= 10)
            assert health["keyHealth"]["score"] == max(0, math.floor(100 - 100 * bad / len(keys) + 0.5))
        recent = [f for f in facts if f.ts >= (NOW // HOUR - 23) * HOUR]
        if recent:
            errors = sum(1 for f in recent if not allowed(f) or f.failed)
            assert health["errorRate"]["score"] == max(0, math.floor(100 - 200 * errors / len(recent) + 0.5))
        else:
            assert health["errorRate"]["score"] == 100


@settings(max_examples=25, deadline=None)
@given(keys_st, st.sampled_from([None, "prod", "dev"]))
def test_key_state_reports_match_a_recount(specs: list[KeySpec], space: str | None) -> None:
    with world(NOW) as w:
        keys, _ = build(w, specs, [])
        params: dict[str, Any] = {} if space is None else {"namespace": space}
        mine = [k for k in keys if space is None or k.namespace == space]
        states = Counter(status(k) for k in mine)
        counts = w.run("key-status", **params)["counts"]
        assert counts == {"total": len(mine), **{s: states[s] for s in ("active", "suspended", "revoked", "expired")}}

        churn = w.run("key-churn", **params)["summary"]
        active = [k for k in mine if status(k) == "active"]
        assert churn["neverUsedKeys"] == sum(1 for k in active if k.total_calls == 0)
        assert churn["churnRate"] == (round(100 * states["revoked"] / len(mine), 2) if mine else 0.0)
        assert churn["avgCreditsPerKey"] == (round(sum(k.credits for k in active) / len(active), 2) if active else 0.0)

        live = [k for k in mine if k.active and not k.suspended]
        health = w.run("key-health-overview", **params)
        expected = []
        for k in live:
            given_ = k.credits + k.total_spent
            util = round(100 * k.total_spent / given_, 2) if given_ else 0.0
            expected.append(
                (k.credits, k.name, "critical" if k.credits <= 0 else "warning" if util >= 75 else "healthy")
            )
        assert [(r["credits"], r["name"], r["status"]) for r in health["keys"]] == sorted(expected)

        ages = w.run("key-age", **params)
        spread = Counter(
            "last24h" if age < 24 else "last7d" if age < 168 else "last30d" if age < 720 else "older"
            for age in ((NOW - k.created_at) / HOUR for k in live)
        )
        assert ages["distribution"] == {b: spread[b] for b in ("last24h", "last7d", "last30d", "older")}

        notes = w.run("notifications", **params)["notifications"]
        got = Counter((n["keyName"], n["category"]) for n in notes)
        want: Counter[tuple[str, str]] = Counter()
        for k in mine:
            if not k.active:
                continue
            if k.suspended:
                want[(k.name, "key_suspended")] += 1
            if k.expires_at is not None:
                if k.expires_at <= NOW:
                    want[(k.name, "key_expired")] += 1
                elif k.expires_at - NOW < 168 * HOUR:
                    want[(k.name, "key_expiring_soon")] += 1
            if k.credits <= 0:
                want[(k.name, "zero_credits")] += 1
        assert got == want

        security = w.run("security", **params)
        found = {f["type"]: f["count"] for f in security["findings"]}
        held = [k for k in mine if k.active]
        assert found.get("no_expiry", 0) == sum(1 for k in held if k.expires_at is None)
        assert found.get("high_credit_balance", 0) == sum(1 for k in held if k.credits >= 10_000)
        assert security["summary"]["totalKeys"] == len(held)


def test_rate_limit_pressure_is_a_warning_at_ninety_percent() -> None:
    with world(NOW, global_rate_limit=10) as w:
        busy, calm = w.key("busy", credits=100), w.key("calm", credits=100)
        for _ in range(9):
            w.store.rate_hit(busy.key_hash, 10, NOW - 5)
        for _ in range(8):
            w.store.rate_hit(calm.key_hash, 10, NOW - 5)
        notes = w.run("notifications")["notifications"]
        assert [(n["keyName"], n["category"], n["severity"]) for n in notes] == [
            ("busy", "rate_limit_pressure", "warning")
        ]
        assert notes[0]["details"] == {"used": 9, "limit": 10, "utilizationPercent": 90.0}
