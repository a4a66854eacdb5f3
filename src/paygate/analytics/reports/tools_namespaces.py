"""Reports on namespaces: usage, revenue, activity, comparison (docs/analytics-tools.md).

Two sources, said per field in the docs:
* key state (key counts, allocated, spent to date, remaining, utilization) is what keys that can call hold
  now, in the namespace they are in now: a balance belongs where the key is;
* traffic (calls, credits charged in the range) is summed by the namespace each call was made in, from the
  rollups: a call was served, priced and policed there, and moving a key later does not rewrite it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.tools_common import ScopeParams, admitted_by, cut, live_in, namespace_of, summed
from paygate.analytics.shaping import allocated, percent
from paygate.core.records import KeyRecord
from paygate.store.rollups import RollupRow


@dataclass(slots=True)
class Namespace:
    name: str
    keys: list[KeyRecord] = field(default_factory=list)  # keys that can call, in it now
    traffic: RollupRow = field(default_factory=lambda: RollupRow(()))  # calls made in it, in the range
    active_keys: int = 0  # keys with an admitted call made in it, in the range

    @property
    def allocated(self) -> int:
        return sum(allocated(k) for k in self.keys)

    @property
    def spent(self) -> int:
        return sum(k.total_spent for k in self.keys)

    @property
    def remaining(self) -> int:
        return sum(k.credits for k in self.keys)


def namespaces(f: Facts, wanted: str | None) -> list[Namespace]:
    """Every namespace with a key that can call or a call in the range (only `wanted` when given)."""
    keys: dict[str, list[KeyRecord]] = defaultdict(list)
    for k in live_in(f, wanted):
        keys[namespace_of(k)].append(k)
    # One read: the namespace sums are those of its keys' rows (calls without a valid key included).
    by_key = f.rollup("key", "namespace", namespace=wanted)
    traffic = summed(by_key, at=1)
    active = admitted_by(by_key)
    names = sorted(set(keys) | set(traffic))
    return [
        Namespace(name, keys.get(name, []), traffic.get(name, RollupRow(())), len(active.get(name, ())))
        for name in names
    ]


def _top(rows: list[dict[str, Any]], value: str) -> str | None:
    """The first row's namespace when its `value` is above zero (rows are sorted by it)."""
    return rows[0]["namespace"] if rows and rows[0][value] > 0 else None


def namespace_usage(f: Facts, p: ScopeParams) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {
            "namespace": ns.name,
            "keyCount": len(ns.keys),
            "totalAllocated": ns.allocated,
            "totalSpent": ns.spent,
            "totalRemaining": ns.remaining,
            "utilizationPct": percent(ns.spent, ns.allocated),
            "totalCalls": ns.traffic.allowed,
            "deniedCalls": ns.traffic.denied,
            "creditsCharged": ns.traffic.credits,
        }
        for ns in namespaces(f, p.namespace)
    ]
    rows.sort(key=lambda r: (-r["totalSpent"], r["namespace"]))
    return {"summary": {"totalNamespaces": len(rows)}, "namespaces": cut(rows, p.limit), **f.window.echo()}


def namespace_revenue(f: Facts, p: ScopeParams) -> dict[str, Any]:
    found = namespaces(f, p.namespace)
    revenue = sum(ns.traffic.credits for ns in found)
    rows: list[dict[str, Any]] = [
        {
            "namespace": ns.name,
            "totalSpent": ns.traffic.credits,
            "totalCalls": ns.traffic.allowed,
            "keyCount": len(ns.keys),
            "percentage": percent(ns.traffic.credits, revenue),
        }
        for ns in found
    ]
    rows.sort(key=lambda r: (-r["totalSpent"], r["namespace"]))
    return {
        "namespaces": cut(rows, p.limit),
        "summary": {"totalNamespaces": len(rows), "totalRevenue": revenue, "topNamespace": _top(rows, "totalSpent")},
        **f.window.echo(),
    }


def namespace_activity(f: Facts, p: ScopeParams) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {
            "namespace": ns.name,
            "keyCount": len(ns.keys),
            "totalSpent": ns.traffic.credits,
            "totalCalls": ns.traffic.allowed,
            "creditsRemaining": ns.remaining,
            "activeKeys": ns.active_keys,
        }
        for ns in namespaces(f, p.namespace)
    ]
    rows.sort(key=lambda r: (-r["totalSpent"], r["namespace"]))
    return {
        "namespaces": cut(rows, p.limit),
        "summary": {"totalNamespaces": len(rows), "topNamespace": _top(rows, "totalSpent")},
        **f.window.echo(),
    }


def namespace_comparison(f: Facts, p: ScopeParams) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {
            "namespace": ns.name,
            "keyCount": len(ns.keys),
            "totalAllocated": ns.allocated,
            "totalSpent": ns.spent,
            "totalCalls": ns.traffic.allowed,
            "creditsRemaining": ns.remaining,
            "utilizationPercent": percent(ns.spent, ns.allocated),
        }
        for ns in namespaces(f, p.namespace)
    ]
    rows.sort(key=lambda r: (-r["totalAllocated"], r["namespace"]))
    return {
        "namespaces": cut(rows, p.limit),
        "summary": {"totalNamespaces": len(rows), "leader": _top(rows, "totalAllocated")},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "namespace-usage",
        namespace_usage,
        "Per namespace: keys, credits allocated / spent / remaining, utilization; calls and credits of the range.",
        ScopeParams,
        "namespaces",
    ),
    Report(
        "namespace-revenue",
        namespace_revenue,
        "Credits charged in the range by the namespace of each call: calls, keys, share of revenue.",
        ScopeParams,
        "namespaces",
    ),
    Report(
        "namespace-activity",
        namespace_activity,
        "Per namespace: keys, credits spent and calls in the range, keys active, credits remaining.",
        ScopeParams,
        "namespaces",
    ),
    Report(
        "namespace-comparison",
        namespace_comparison,
        "Namespaces side by side by credits allocated: keys, spent, calls in the range, remaining, utilization.",
        ScopeParams,
        "namespaces",
    ),
)
