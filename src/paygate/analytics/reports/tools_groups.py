"""Reports on key groups: performance, revenue, activity (docs/analytics-tools.md).

Groups are documents (`facts.groups()`); a key names its group by `group_id`. Calls are not recorded with a
group, so a key's calls in the range count for the group the key is in now (a key that moved brings its
history along). Key state (members, allocated, spent to date, remaining) is that of member keys that can call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.tools_common import UNGROUPED, GroupParams, cut
from paygate.analytics.shaping import allocated, percent
from paygate.core.records import KeyRecord
from paygate.store.documents import Doc
from paygate.store.rollups import RollupRow


@dataclass(slots=True)
class Group:
    id: str | None  # None: the keys in no group
    doc: Doc
    keys: list[KeyRecord] = field(default_factory=list)  # members that can call
    traffic: RollupRow = field(default_factory=lambda: RollupRow(()))  # its members' calls in the range
    active_keys: int = 0  # members with an admitted call in the range

    @property
    def name(self) -> str:
        return UNGROUPED if self.id is None else str(self.doc.get("name", self.id))

    @property
    def spent(self) -> int:
        return sum(k.total_spent for k in self.keys)


def groups(f: Facts) -> dict[str | None, Group]:
    """Every group by id, and the ungrouped keys under None. A key naming a group that no longer exists
    counts as ungrouped."""
    docs = f.groups()
    out: dict[str | None, Group] = {gid: Group(gid, doc) for gid, doc in docs.items()}
    out[None] = Group(None, {})

    def group_of(record: KeyRecord | None) -> Group:
        gid = record.group_id if record is not None and record.group_id in docs else None
        return out[gid]

    for k in f.live_keys():
        group_of(k).keys.append(k)
    by_hash = f.key_by_hash()
    for row in f.rollup("key"):
        key_hash = row.group[0]
        if not isinstance(key_hash, str):
            continue  # a call without a valid key is no group's
        group = group_of(by_hash.get(key_hash))
        group.traffic.merge(row)
        group.active_keys += 1 if row.allowed else 0
    return out


def _listed(f: Facts, p: GroupParams) -> list[Group]:
    """The group asked for; else every group, and the ungrouped keys when there are any or they made calls."""
    wanted = None if p.group is None else f.find_group(p.group)
    found = groups(f)
    if wanted is not None:
        return [found[wanted]]
    ungrouped = found[None]
    named = [g for gid, g in found.items() if gid is not None]
    return [*named, ungrouped] if ungrouped.keys or ungrouped.traffic.calls else named


def _top(rows: list[dict[str, Any]]) -> str | None:
    return rows[0]["group"] if rows and rows[0]["totalSpent"] > 0 else None


def group_performance(f: Facts, p: GroupParams) -> dict[str, Any]:
    wanted = None if p.group is None else f.find_group(p.group)
    found = groups(f)
    rows: list[dict[str, Any]] = []
    for g in (g for gid, g in found.items() if gid is not None and wanted in (None, gid)):
        given = sum(allocated(k) for k in g.keys)
        rows.append(
            {
                "groupId": g.id,
                "groupName": g.name,
                "description": str(g.doc.get("description") or ""),
                "keyCount": len(g.keys),
                "totalAllocated": given,
                "totalSpent": g.spent,
                "totalRemaining": sum(k.credits for k in g.keys),
                "totalCalls": g.traffic.allowed,
                "deniedCalls": g.traffic.denied,
                "creditsCharged": g.traffic.credits,
                "utilizationPct": percent(g.spent, given),
                "policy": {
                    "allowedTools": list(g.doc.get("allowedTools") or []),
                    "deniedTools": list(g.doc.get("deniedTools") or []),
                    "rateLimitPerMin": int(g.doc.get("rateLimitPerMin") or 0),
                },
            }
        )
    rows.sort(key=lambda r: (-r["totalSpent"], r["groupName"], r["groupId"]))
    return {
        "summary": {"totalGroups": len(rows), "ungroupedKeys": len(found[None].keys)},
        "groups": cut(rows, p.limit),
        **f.window.echo(),
    }


def group_revenue(f: Facts, p: GroupParams) -> dict[str, Any]:
    listed = _listed(f, p)
    revenue = sum(g.traffic.credits for g in listed)
    rows: list[dict[str, Any]] = [
        {
            "group": g.name,
            "groupId": g.id,
            "totalSpent": g.traffic.credits,
            "totalCalls": g.traffic.allowed,
            "keyCount": len(g.keys),
            "percentage": percent(g.traffic.credits, revenue),
        }
        for g in listed
    ]
    rows.sort(key=lambda r: (-r["totalSpent"], r["group"], r["groupId"] or ""))
    return {
        "groups": cut(rows, p.limit),
        "summary": {"totalGroups": len(rows), "totalRevenue": revenue, "topGroup": _top(rows)},
        **f.window.echo(),
    }


def group_activity(f: Facts, p: GroupParams) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {
            "group": g.name,
            "groupId": g.id,
            "keyCount": len(g.keys),
            "totalSpent": g.traffic.credits,
            "totalCalls": g.traffic.allowed,
            "creditsRemaining": sum(k.credits for k in g.keys),
            "activeKeys": g.active_keys,
        }
        for g in _listed(f, p)
    ]
    rows.sort(key=lambda r: (-r["totalSpent"], r["group"], r["groupId"] or ""))
    return {
        "groups": cut(rows, p.limit),
        "summary": {"totalGroups": len(rows), "topGroup": _top(rows)},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "group-performance",
        group_performance,
        "Per group: members, credits allocated / spent / remaining, utilization, calls of the range, policy.",
        GroupParams,
        "groups",
    ),
    Report(
        "group-revenue",
        group_revenue,
        "Credits charged in the range by the group of each key: calls, members, share of revenue.",
        GroupParams,
        "groups",
    ),
    Report(
        "group-activity",
        group_activity,
        "Per group: members, credits spent and calls in the range, members active, credits remaining.",
        GroupParams,
        "groups",
    ),
)
