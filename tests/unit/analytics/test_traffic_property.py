"""The traffic reports against a naive computation over the same random facts (volume, errors, capacity,
dependencies). Latency: test_traffic_latency_property.py."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.records import KeyRecord
from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

NOW = 1_790_000_000.0
SPAN_HOURS = 72
SINCE = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - (SPAN_HOURS + 2) * 3600))
KEYS = ("alice", "bob", "carol")
NAMESPACE_OF = {"alice": "default", "bob": "prod", "carol": "prod"}
REASONS = ("", "", "", "shadow", "rate_limited", "insufficient_credits")

fact_specs = st.tuples(
    st.integers(0, SPAN_HOURS * 60),  # minutes ago
    st.sampled_from((*KEYS, None)),
    st.sampled_from(("search", "fetch", "write")),
    st.sampled_from(REASONS),
    st.integers(0, 5),
    st.booleans(),
)
histories = st.lists(fact_specs, max_size=40)
namespaces = st.sampled_from((None, "prod"))


@dataclass
class History:
    facts: list[CallFact]
    keys: dict[str, KeyRecord]  # by name

    def name(self, key_hash: str | None) -> str | None:
        return next((n for n, k in self.keys.items() if k.key_hash == key_hash), None)


def build(w: World, specs: list[tuple[int, str | None, str, str, int, bool]]) -> History:
    keys = {
        n: w.key(n, credits=10 * (i + 1), total_spent=7 * i, namespace=NAMESPACE_OF[n], created_at=NOW - i * 30 * 3600)
        for i, n in enumerate(KEYS)
    }
    facts = []
    for minutes, who, tool, wanted, credits, failed in specs:
        key = keys[who] if who else None
        reason = wanted if key else "missing_api_key"  # a call without a valid key is always denied
        admitted = not reason or reason.startswith("shadow")
        facts.append(
            CallFact(
                NOW - minutes * 60,
                key.key_hash if key else None,
                tool,
                key.namespace if key else "default",
                reason,
                credits=credits if admitted and reason == "" else 0,
                failed=failed and admitted,
            )
        )
    w.facts(facts)
    return History(facts, keys)


def ok(fact: CallFact) -> bool:
    return fact.reason == "" or fact.reason.startswith("shadow")


def counts(facts: list[CallFact]) -> dict[str, int]:
    return {
        "calls": len(facts),
        "allowed": sum(ok(x) for x in facts),
        "denied": sum(not ok(x) for x in facts),
        "failed": sum(x.failed for x in facts),
        "credits": sum(x.credits for x in facts),
    }


def grouped(facts: list[CallFact], by: Callable[[CallFact], Any]) -> dict[Any, list[CallFact]]:
    out: dict[Any, list[CallFact]] = defaultdict(list)
    for x in facts:
        out[by(x)].append(x)
    return out


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def hour(x: CallFact) -> int:
    return int(x.ts // 3600)


def iso(h: int) -> str:
    return time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(h * 3600))


def selected(h: History, namespace: str | None) -> list[CallFact]:
    return [x for x in h.facts if namespace is None or x.namespace == namespace]


def params(namespace: str | None, **more: Any) -> dict[str, Any]:
    return {**more, **({"namespace": namespace} if namespace else {})}


@settings(max_examples=25, deadline=None)
@given(histories, namespaces)
def test_volume_reports_match_the_facts(specs: list[Any], namespace: str | None) -> None:
    with world(NOW) as w:
        h = build(w, specs)
        facts = selected(h, namespace)
        total = counts(facts)

        traffic = w.run("traffic", **params(namespace, limit=100))
        assert traffic["summary"]["totalCalls"] == total["calls"]
        assert traffic["summary"]["totalAllowed"] == total["allowed"]
        assert traffic["summary"]["totalFailed"] == total["failed"]
        assert traffic["summary"]["uniqueKeys"] == len({x.key_hash for x in facts if x.key_hash})
        tools = {t["tool"]: t for t in traffic["toolPopularity"]}
        for tool, xs in grouped(facts, lambda x: x.tool).items():
            assert (tools[tool]["calls"], tools[tool]["credits"]) == (len(xs), counts(xs)["credits"])
        consumers = {c["name"]: c["calls"] for c in traffic["topConsumers"]}
        assert consumers == {h.name(k): len(xs) for k, xs in grouped(facts, lambda x: x.key_hash).items() if k}
        assert sum(r["calls"] for r in traffic["hourlyVolume"]) == sum(
            1 for x in facts if hour(x) > int(NOW // 3600) - 24
        )

        per_hour = grouped(facts, hour)
        trends = w.run("request-trends", **params(namespace, since=SINCE))
        assert [(r["hour"], r["total"], r["denied"], r["credits"]) for r in trends["hourly"]] == [
            (iso(hr), len(xs), counts(xs)["denied"], counts(xs)["credits"]) for hr, xs in sorted(per_hour.items())
        ]
        if facts:
            busiest = min(per_hour.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            assert trends["summary"]["peakHour"] == {"hour": iso(busiest[0]), "total": len(busiest[1])}

        hourly = w.run("hourly-traffic", **params(namespace, since=SINCE))
        assert [(r["timestamp"], r["requests"], r["uniqueConsumers"], r["uniqueTools"]) for r in hourly["hours"]] == [
            (iso(hr), len(xs), len({x.key_hash for x in xs if x.key_hash}), len({x.tool for x in xs}))
            for hr, xs in sorted(per_hour.items(), reverse=True)
        ]

        heat = w.run("access-heatmap", **params(namespace, since=SINCE))
        assert [(r["hour"], r["total"], r["tools"]) for r in heat["hourly"]] == [
            (iso(hr), len(xs), dict(Counter(x.tool for x in xs))) for hr, xs in sorted(per_hour.items())
        ]

        peak = w.run("peak-usage", **params(namespace))
        by_hod = grouped(facts, lambda x: hour(x) % 24)
        assert [(r["hour"], r["requests"], r["credits"], r["uniqueConsumers"]) for r in peak["hours"]] == [
            (hod, len(xs), counts(xs)["credits"], len({x.key_hash for x in xs if x.key_hash}))
            for hod, xs in sorted(by_hod.items())
        ]

        daily = w.run("daily-summary", **params(namespace))
        by_day = grouped(facts, lambda x: int(x.ts // 86400))
        created = Counter(
            int(k.created_at // 86400) for k in h.keys.values() if namespace is None or k.namespace == namespace
        )
        days = sorted(set(by_day) | set(created), reverse=True)
        assert [
            (r["date"], r["requests"], r["creditsSpent"], r["uniqueConsumers"], r["newKeys"]) for r in daily["days"]
        ] == [
            (
                time.strftime("%Y-%m-%d", time.gmtime(d * 86400)),
                len(by_day.get(d, [])),
                counts(by_day.get(d, []))["credits"],
                len({x.key_hash for x in by_day.get(d, []) if x.key_hash}),
                created.get(d, 0),
            )
            for d in days
        ]


@settings(max_examples=25, deadline=None)
@given(histories, namespaces)
def test_error_reports_match_the_facts(specs: list[Any], namespace: str | None) -> None:
    with world(NOW) as w:
        h = build(w, specs)
        facts = selected(h, namespace)
        total = counts(facts)
        denied = [x for x in facts if not ok(x)]
        reasons = Counter(x.reason for x in denied)

        sla = w.run("sla", **params(namespace))
        assert sla["summary"]["successRate"] == pct(total["allowed"], total["calls"])
        assert sla["summary"]["failedCalls"] == total["failed"]
        assert sla["summary"]["denialReasons"] == dict(reasons)
        by_tool = grouped(facts, lambda x: x.tool)
        assert {t["tool"]: (t["totalCalls"], t["deniedCalls"], t["failedCalls"]) for t in sla["byTool"]} == {
            tool: (len(xs), counts(xs)["denied"], counts(xs)["failed"]) for tool, xs in by_tool.items()
        }

        breakdown = w.run("error-breakdown", **params(namespace))
        assert {e["reason"]: (e["count"], e["affectedConsumers"]) for e in breakdown["errors"]} == {
            r: (n, len({x.key_hash for x in denied if x.reason == r and x.key_hash})) for r, n in reasons.items()
        }
        assert breakdown["summary"]["errorRate"] == pct(total["denied"], total["calls"])
        assert breakdown["summary"]["failureRate"] == pct(total["failed"], total["allowed"])

        rates = w.run("tool-error-rate", **params(namespace))
        assert {t["tool"]: (t["errorRate"], t["failureRate"]) for t in rates["tools"]} == {
            tool: (pct(counts(xs)["denied"], len(xs)), pct(counts(xs)["failed"], counts(xs)["allowed"]))
            for tool, xs in by_tool.items()
        }
        assert [t["errorRate"] for t in rates["tools"]] == sorted(
            (t["errorRate"] for t in rates["tools"]), reverse=True
        )

        trends = w.run("error-trends", **params(namespace))
        assert trends["denialReasons"] == [
            {"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0]))
        ]
        assert trends["summary"]["overallErrorRate"] == pct(total["denied"], total["calls"])

        den = w.run("denials", **params(namespace, limit=100))
        assert den["byReason"] == dict(reasons)
        per_key = {
            h.name(k): (len(xs), counts(xs)["denied"])
            for k, xs in grouped(facts, lambda x: x.key_hash).items()
            if k and counts(xs)["denied"]
        }
        assert {e["name"]: (e["calls"], e["denials"]) for e in den["perKey"]} == per_key
        for e in den["perKey"]:
            mine = Counter(x.reason for x in denied if h.name(x.key_hash) == e["name"])
            assert e["topReason"] == min(mine.items(), key=lambda rn: (-rn[1], rn[0]))[0]


@settings(max_examples=25, deadline=None)
@given(histories, namespaces)
def test_capacity_and_dependencies_match(specs: list[Any], namespace: str | None) -> None:
    with world(NOW) as w:
        h = build(w, specs)
        facts = selected(h, namespace)
        keys = [k for k in h.keys.values() if namespace is None or k.namespace == namespace]

        cap = w.run("capacity", **params(namespace))
        given_credits = sum(k.credits + k.total_spent for k in keys)
        spent = sum(k.total_spent for k in keys)
        assert cap["summary"]["totalCreditsAllocated"] == given_credits
        assert cap["summary"]["utilizationPct"] == pct(spent, given_credits)
        assert cap["summary"]["burnRate"]["totalCalls"] == len(facts)
        recent = sum(x.credits for x in facts if hour(x) > int(NOW // 3600) - 24)
        assert cap["summary"]["burnRate"]["creditsPerHour"] == round(recent / 24, 2)
        assert [c["keyName"] for c in cap["topConsumers"]] == [
            k.name for k in sorted(keys, key=lambda k: (-k.total_spent, k.name))
        ]

        dep = w.run("dependencies", **params(namespace, limit=100))
        used = [x for x in facts if ok(x)]
        by_tool = grouped(used, lambda x: x.tool)
        assert {t["tool"]: (t["totalCalls"], t["uniqueKeys"]) for t in dep["toolUsage"]} == {
            tool: (len(xs), len({x.key_hash for x in xs if x.key_hash})) for tool, xs in by_tool.items()
        }
        tools_of = {
            h.name(k): sorted({x.tool for x in xs}) for k, xs in grouped(used, lambda x: x.key_hash).items() if k
        }
        assert {e["keyName"]: e["tools"] for e in dep["keyToolMap"]} == tools_of
        ranked = [e["keyName"] for e in dep["keyToolMap"]]  # most tools first, then by name
        assert ranked == sorted(tools_of, key=lambda name: (-len(tools_of[name]), name))
        assert all(e["toolCount"] == len(e["tools"]) for e in dep["keyToolMap"])
        assert dep["summary"]["keysWithCalls"] == len(tools_of)
        top = w.run("dependencies", **params(namespace, limit=1))["keyToolMap"]
        assert [e["keyName"] for e in top] == ranked[:1] and top == dep["keyToolMap"][:1]
