"""For random keys (namespaces, groups, statuses, balances) and random call histories, every report of the tools
family equals a plain computation over the same list of facts and keys (written here, not with the reports'
code): the range, the namespace and group filters, sorting and rounding included."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.records import KeyRecord
from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

NOW = 1_790_000_000.0
TOOLS = ("search", "fetch", "write")
NAMESPACES = ("default", "alpha", "beta")
GROUPS = {"grp_1": "Premium", "grp_2": "free"}
REASONS = ("", "", "shadow", "rate_limited", "insufficient_credits")


@dataclass
class History:
    keys: list[tuple[str, str | None, str, int, int]]  # namespace, group id, status, credits, spent
    calls: list[tuple[int, int | None, str, str, str, int, bool]]  # minutes ago, key, tool, ns, reason, credits, failed
    since_h: int | None  # hours ago
    until_h: int | None
    namespace: str | None
    group: str | None


@st.composite
def histories(draw: st.DrawFn) -> History:
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMESPACES),
                st.sampled_from([None, "grp_1", "grp_2", "grp_gone"]),
                st.sampled_from(["active", "active", "revoked", "suspended"]),
                st.integers(0, 100),
                st.integers(0, 100),
            ),
            min_size=1,
            max_size=6,
        )
    )
    who = st.one_of(st.none(), st.integers(0, len(keys) - 1))
    calls = draw(
        st.lists(
            st.tuples(
                st.integers(0, 3000),
                who,
                st.sampled_from(TOOLS),
                st.sampled_from(NAMESPACES),
                st.sampled_from(REASONS),
                st.integers(0, 5),
                st.booleans(),
            ),
            max_size=30,
        )
    )
    since_h = draw(st.one_of(st.none(), st.integers(0, 50)))
    until_h = draw(st.one_of(st.none(), st.integers(0, since_h if since_h is not None else 50)))
    namespace = draw(st.sampled_from([None, None, "alpha", "default"]))
    group = draw(st.sampled_from([None, None, "grp_1", "premium"]))
    return History(keys, calls, since_h, until_h, namespace, group)


def iso(hours_ago: int | None) -> str | None:
    return None if hours_ago is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - hours_ago * 3600))


def hour(ts: float) -> int:
    return int(ts // 3600)


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def admitted(fact: CallFact) -> bool:
    return fact.reason in ("", "shadow")


class Setup:
    """The world the reports see, and the same facts and keys as plain lists for the naive computations."""

    def __init__(self, w: World, h: History) -> None:
        for gid, name in GROUPS.items():
            w.store.doc_put(
                "group", gid, {"id": gid, "name": name, "description": f"{name} keys", "allowedTools": ["search"]}
            )
        self.keys: list[KeyRecord] = []
        for i, (ns, gid, status, credits, spent) in enumerate(h.keys):
            self.keys.append(
                w.key(
                    f"key{i}",
                    credits,
                    namespace=ns,
                    group_id=gid,
                    total_spent=spent,
                    active=status != "revoked",
                    suspended=status == "suspended",
                )
            )
        self.facts = [
            CallFact(NOW - age * 60, None if k is None else self.keys[k].key_hash, tool, ns, reason, credits, 0, failed)
            for age, k, tool, ns, reason, credits, failed in h.calls
        ]
        w.facts(self.facts)
        since = None if h.since_h is None else NOW - h.since_h * 3600
        until = None if h.until_h is None else NOW - h.until_h * 3600
        self.in_range = [
            f
            for f in self.facts
            if (since is None or hour(f.ts) >= hour(since)) and (until is None or hour(f.ts) <= hour(until))
        ]
        self.params: dict[str, Any] = {"since": iso(h.since_h), "until": iso(h.until_h)}
        self.live = [k for k in self.keys if k.active and not k.suspended]
        self.by_hash = {k.key_hash: k for k in self.keys}

    def calls_where(self, test: Callable[[CallFact], bool]) -> list[CallFact]:
        return [f for f in self.in_range if test(f)]


# tools -------------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(histories())
def test_tool_reports_equal_a_plain_count(h: History) -> None:
    with world(NOW) as w:
        s = Setup(w, h)
        ns = h.namespace
        calls = s.calls_where(lambda f: ns is None or f.namespace == ns)
        ok = [f for f in calls if admitted(f)]
        live = {k.key_hash for k in s.live if ns is None or k.namespace == ns}
        users = {t: {f.key_hash for f in ok if f.tool == t and f.key_hash} for t in TOOLS}

        adoption = []
        for tool in sorted({f.tool for f in calls}):
            hours = [hour(f.ts) for f in ok if f.tool == tool]
            adoption.append(
                {
                    "tool": tool,
                    "uniqueConsumers": len(users[tool]),
                    "adoptionRate": pct(len(users[tool] & live), len(live)),
                    "totalCalls": len(hours),
                    "firstSeen": stamp(min(hours)) if hours else None,
                    "lastSeen": stamp(max(hours)) if hours else None,
                }
            )
        adoption.sort(key=lambda r: (-r["adoptionRate"], -r["totalCalls"], r["tool"]))
        out = w.run("tool-adoption", namespace=ns, **s.params)
        assert out["tools"] == adoption
        used = sum(1 for r in adoption if r["totalCalls"])
        assert out["summary"] == {
            "totalTools": len(adoption),
            "usedTools": used,
            "unusedTools": len(adoption) - used,
            "activeKeys": len(live),
        }

        popular = []
        for tool in {f.tool for f in ok}:
            mine = [f for f in ok if f.tool == tool]
            popular.append(
                {
                    "tool": tool,
                    "totalCalls": len(mine),
                    "totalCredits": sum(f.credits for f in calls if f.tool == tool),
                    "uniqueConsumers": len(users[tool]),
                    "percentage": pct(len(mine), len(ok)),
                    "failedCalls": sum(f.failed for f in calls if f.tool == tool),
                }
            )
        popular.sort(key=lambda r: (-r["totalCalls"], r["tool"]))
        out = w.run("tool-popularity", namespace=ns, limit=2, **s.params)
        assert out["tools"] == popular[:2]
        assert out["summary"] == {
            "totalTools": len(popular),
            "totalCalls": len(ok),
            "totalCredits": sum(f.credits for f in calls if f.tool in {p["tool"] for p in popular}),
            "mostPopular": popular[0]["tool"] if popular else None,
        }

        consumers = {k for t in TOOLS for k in users[t]}
        pairs = [
            {
                "toolA": a,
                "toolB": b,
                "sharedConsumers": len(users[a] & users[b]),
                "strength": pct(len(users[a] & users[b]), len(consumers)),
                "consumersA": len(users[a]),
                "consumersB": len(users[b]),
            }
            for a, b in combinations(sorted(TOOLS), 2)
            if users[a] & users[b]
        ]
        pairs.sort(key=lambda r: (-r["sharedConsumers"], r["toolA"], r["toolB"]))
        out = w.run("tool-correlation", namespace=ns, **s.params)
        assert out["pairs"] == pairs
        assert out["summary"] == {
            "totalPairs": len(pairs),
            "totalConsumers": len(consumers),
            "totalTools": sum(1 for t in TOOLS if users[t]),
        }


def stamp(h: int) -> str:
    return time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(h * 3600))


# namespaces --------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(histories())
def test_namespace_reports_equal_a_plain_count(h: History) -> None:
    with world(NOW) as w:
        s = Setup(w, h)
        ns = h.namespace
        names = sorted(
            {k.namespace for k in s.live if ns in (None, k.namespace)}
            | {f.namespace for f in s.in_range if ns in (None, f.namespace)}
        )
        base = []
        for name in names:
            keys = [k for k in s.live if k.namespace == name]
            made = s.calls_where(lambda f, name=name: f.namespace == name)  # type: ignore[misc]
            base.append(
                {
                    "namespace": name,
                    "keys": len(keys),
                    "allocated": sum(k.credits + k.total_spent for k in keys),
                    "spent": sum(k.total_spent for k in keys),
                    "remaining": sum(k.credits for k in keys),
                    "calls": sum(1 for f in made if admitted(f)),
                    "denied": sum(1 for f in made if not admitted(f)),
                    "charged": sum(f.credits for f in made),
                    "active": len({f.key_hash for f in made if admitted(f) and f.key_hash}),
                }
            )
        revenue = sum(b["charged"] for b in base)

        usage = [
            {
                "namespace": b["namespace"],
                "keyCount": b["keys"],
                "totalAllocated": b["allocated"],
                "totalSpent": b["spent"],
                "totalRemaining": b["remaining"],
                "utilizationPct": pct(b["spent"], b["allocated"]),
                "totalCalls": b["calls"],
                "deniedCalls": b["denied"],
                "creditsCharged": b["charged"],
            }
            for b in sorted(base, key=lambda b: (-b["spent"], b["namespace"]))
        ]
        out = w.run("namespace-usage", namespace=ns, **s.params)
        assert out["namespaces"] == usage and out["summary"] == {"totalNamespaces": len(base)}

        by_revenue = sorted(base, key=lambda b: (-b["charged"], b["namespace"]))
        top = by_revenue[0]["namespace"] if by_revenue and by_revenue[0]["charged"] > 0 else None
        out = w.run("namespace-revenue", namespace=ns, **s.params)
        assert out["namespaces"] == [
            {
                "namespace": b["namespace"],
                "totalSpent": b["charged"],
                "totalCalls": b["calls"],
                "keyCount": b["keys"],
                "percentage": pct(b["charged"], revenue),
            }
            for b in by_revenue
        ]
        assert out["summary"] == {"totalNamespaces": len(base), "totalRevenue": revenue, "topNamespace": top}

        out = w.run("namespace-activity", namespace=ns, limit=2, **s.params)
        assert out["namespaces"] == [
            {
                "namespace": b["namespace"],
                "keyCount": b["keys"],
                "totalSpent": b["charged"],
                "totalCalls": b["calls"],
                "creditsRemaining": b["remaining"],
                "activeKeys": b["active"],
            }
            for b in by_revenue[:2]
        ]
        assert out["summary"] == {"totalNamespaces": len(base), "topNamespace": top}

        by_allocation = sorted(base, key=lambda b: (-b["allocated"], b["namespace"]))
        out = w.run("namespace-comparison", namespace=ns, **s.params)
        assert out["namespaces"] == [
            {
                "namespace": b["namespace"],
                "keyCount": b["keys"],
                "totalAllocated": b["allocated"],
                "totalSpent": b["spent"],
                "totalCalls": b["calls"],
                "creditsRemaining": b["remaining"],
                "utilizationPercent": pct(b["spent"], b["allocated"]),
            }
            for b in by_allocation
        ]
        leader = by_allocation[0]["namespace"] if by_allocation and by_allocation[0]["allocated"] > 0 else None
        assert out["summary"] == {"totalNamespaces": len(base), "leader": leader}


# groups ------------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(histories())
def test_group_reports_equal_a_plain_count(h: History) -> None:
    with world(NOW) as w:
        s = Setup(w, h)
        wanted = {"premium": "grp_1"}.get(h.group or "", h.group)

        def group_of(k: KeyRecord) -> str | None:
            return k.group_id if k.group_id in GROUPS else None

        def figures(gid: str | None) -> dict[str, Any]:
            keys = [k for k in s.live if group_of(k) == gid]
            made = s.calls_where(lambda f: f.key_hash is not None and group_of(s.by_hash[f.key_hash]) == gid)
            return {
                "id": gid,
                "name": GROUPS[gid] if gid else "ungrouped",
                "keys": keys,
                "calls": sum(1 for f in made if admitted(f)),
                "denied": sum(1 for f in made if not admitted(f)),
                "charged": sum(f.credits for f in made),
                "any": len(made),
                "active": len({f.key_hash for f in made if admitted(f)}),
            }

        named = [figures(gid) for gid in GROUPS if wanted in (None, gid)]
        loose = figures(None)
        listed = named + ([loose] if wanted is None and (loose["keys"] or loose["any"]) else [])

        perf = []
        for g in named:
            given_ = sum(k.credits + k.total_spent for k in g["keys"])
            spent = sum(k.total_spent for k in g["keys"])
            perf.append(
                {
                    "groupId": g["id"],
                    "groupName": g["name"],
                    "description": f"{g['name']} keys",
                    "keyCount": len(g["keys"]),
                    "totalAllocated": given_,
                    "totalSpent": spent,
                    "totalRemaining": sum(k.credits for k in g["keys"]),
                    "totalCalls": g["calls"],
                    "deniedCalls": g["denied"],
                    "creditsCharged": g["charged"],
                    "utilizationPct": pct(spent, given_),
                    "policy": {"allowedTools": ["search"], "deniedTools": [], "rateLimitPerMin": 0},
                }
            )
        perf.sort(key=lambda r: (-r["totalSpent"], r["groupName"], r["groupId"]))
        out = w.run("group-performance", group=h.group, **s.params)
        assert out["groups"] == perf
        assert out["summary"] == {"totalGroups": len(perf), "ungroupedKeys": len(loose["keys"])}

        ranked = sorted(listed, key=lambda g: (-g["charged"], g["name"], g["id"] or ""))
        revenue = sum(g["charged"] for g in listed)
        top = ranked[0]["name"] if ranked and ranked[0]["charged"] > 0 else None
        out = w.run("group-revenue", group=h.group, **s.params)
        assert out["groups"] == [
            {
                "group": g["name"],
                "groupId": g["id"],
                "totalSpent": g["charged"],
                "totalCalls": g["calls"],
                "keyCount": len(g["keys"]),
                "percentage": pct(g["charged"], revenue),
            }
            for g in ranked
        ]
        assert out["summary"] == {"totalGroups": len(listed), "totalRevenue": revenue, "topGroup": top}

        out = w.run("group-activity", group=h.group, **s.params)
        assert out["groups"] == [
            {
                "group": g["name"],
                "groupId": g["id"],
                "keyCount": len(g["keys"]),
                "totalSpent": g["charged"],
                "totalCalls": g["calls"],
                "creditsRemaining": sum(k.credits for k in g["keys"]),
                "activeKeys": g["active"],
            }
            for g in ranked
        ]
        assert out["summary"] == {"totalGroups": len(listed), "topGroup": top}
