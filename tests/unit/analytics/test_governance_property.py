"""Governance reports (lifecycle, compliance, audit-summary) against a plain recount: for random keys (states,
namespaces, groups, policies), random audit logs written through the store's audit API (in random time order)
and random calls, every number and list equals a naive pass over the same generated inputs, written here from
the docs (docs/analytics-overview.md), with the range, namespace, group and limit filters."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from paygate.core.records import KeyRecord
from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import World, world

# Half past an hour: the quarter-hour grid every time is drawn on hits the hour boundaries the range is cut
# at (and `now - 1h`, where eventsLastHour starts), and lifetimes are whole quarter hours (exact sums).
NOW = 1_789_999_200.0 + 1800
HOUR = 3600
DAY = 86400
STEP = 900
LIFECYCLE = ("key.created", "key.revoked", "key.suspended", "key.resumed", "key.rotated", "key.cloned")
OTHER_TYPES = ("gate.allow", "gate.deny", "group.created", "admin.auth_failed", "topup")
ACTORS = tuple(f"actor{i:02d}" for i in range(13))  # more than the 10 topActors
GROUPS: dict[str, dict[str, Any]] = {
    "grp_1": {"id": "grp_1", "name": "Premium", "ipAllowlist": ["10.0.0.0/8"], "maxSpendingLimit": 500},
    "grp_2": {"id": "grp_2", "name": "free", "allowedTools": ["t1"], "deniedTools": ["t2"]},
    "grp_off": {"id": "grp_off", "name": "off", "active": False, "ipAllowlist": ["1.2.3.4"], "allowedTools": ["t1"]},
}


@dataclass(frozen=True)
class KeySpec:
    name: str  # names repeat: ties fall to the masked key
    status: str
    namespace: str
    group: str | None
    created_steps_ago: int
    credits: int
    expires_in_h: float | None
    acl: str  # "", "allow", "deny"
    ip: bool
    spending_limit: int
    quota: bool
    twin: bool  # the masked form of key 0 (two revoked twins cannot be told apart)


key_st = st.builds(
    KeySpec,
    st.sampled_from(["ann", "bob", "cy"]),
    st.sampled_from(["live", "live", "revoked", "suspended"]),
    st.sampled_from(["default", "prod"]),
    st.sampled_from([None, None, "grp_1", "grp_2", "grp_off"]),
    st.integers(0, 4 * 24 * 6),
    st.sampled_from([0, 0, 7, 20_000]),
    st.one_of(st.none(), st.sampled_from([-5.0, 0.0, 3.0, 168.0, 169.0, 500.0])),
    st.sampled_from(["", "", "allow", "deny"]),
    st.booleans(),
    st.sampled_from([0, 0, 100]),
    st.booleans(),
    st.integers(0, 5).map(lambda n: n == 0),
)
# (steps ago, type, actor, key index: the key the event names, past the keys: a key no longer known)
audit_st = st.tuples(
    st.integers(0, 4 * 24 * 5),
    st.sampled_from(LIFECYCLE + LIFECYCLE + OTHER_TYPES),
    st.sampled_from(ACTORS),
    st.integers(0, 6),
)
# (steps ago, key index or past the keys: no key, tool, reason)
call_st = st.tuples(
    st.integers(0, 4 * 24 * 5),
    st.integers(0, 6),
    st.sampled_from(["t1", "t2", "t3"]),
    st.sampled_from(["", "", "rate_limited", "shadow"]),
)


@dataclass(frozen=True)
class Range:
    since_steps: int | None  # steps before NOW
    until_steps: int | None

    def params(self) -> dict[str, Any]:
        return {"since": iso_param(self.since_steps), "until": iso_param(self.until_steps)}

    @property
    def start(self) -> float | None:
        """The range's first second: `since` rounded down to its hour."""
        return None if self.since_steps is None else (NOW - self.since_steps * STEP) // HOUR * HOUR

    @property
    def stop(self) -> float | None:
        """The first second after the range: the end of `until`'s hour."""
        return None if self.until_steps is None else ((NOW - self.until_steps * STEP) // HOUR + 1) * HOUR

    def holds(self, ts: float) -> bool:
        return (self.start is None or ts >= self.start) and (self.stop is None or ts < self.stop)


@st.composite
def ranges(draw: st.DrawFn) -> Range:
    since = draw(st.one_of(st.none(), st.integers(0, 4 * 24 * 4)))
    until = draw(st.one_of(st.none(), st.integers(0, since if since is not None else 4 * 24 * 4)))
    return Range(since, until)


def iso_param(steps: int | None) -> str | None:
    return None if steps is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - steps * STEP))


def iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


@dataclass(frozen=True)
class Logged:
    id: int
    ts: float
    type: str
    actor: str
    data: dict[str, Any]


@dataclass
class Built:
    keys: list[KeyRecord]
    log: list[Logged]
    calls: list[CallFact]


def build(w: World, specs: list[KeySpec], audit: list[Any], calls: list[Any]) -> Built:
    for gid, doc in GROUPS.items():
        w.store.doc_put("group", gid, doc)
    keys: list[KeyRecord] = []
    for s in specs:
        twin = {"prefix": keys[0].prefix, "last4": keys[0].last4} if s.twin and keys else {}
        keys.append(
            w.key(
                s.name,
                credits=s.credits,
                active=s.status != "revoked",
                suspended=s.status == "suspended",
                namespace=s.namespace,
                group_id=s.group,
                created_at=NOW - s.created_steps_ago * STEP,
                expires_at=None if s.expires_in_h is None else NOW + s.expires_in_h * HOUR,
                allowed_tools=["t1"] if s.acl == "allow" else [],
                denied_tools=["t2"] if s.acl == "deny" else [],
                ip_allowlist=["192.168.0.1"] if s.ip else [],
                spending_limit=s.spending_limit,
                quota={"dailyCallLimit": 10} if s.quota else None,
                **twin,
            )
        )
    log = []
    # appended in the drawn order, not by time: ids need not follow timestamps (restored rows, skewed clocks)
    for ago, type_, actor, index in audit:
        ts = NOW - ago * STEP
        if type_.startswith("key."):
            data: dict[str, Any] = {"keyMasked": keys[index].masked if index < len(keys) else "pg_gone…0000"}
        elif type_.startswith("gate."):
            data = {"tool": "t1", "reason": "rate_limited"}
        else:
            data = {}
        log.append(Logged(w.store.audit.append(ts, type_, actor, data), ts, type_, actor, data))
    facts = [
        CallFact(NOW - ago * STEP, keys[k].key_hash if k < len(keys) else None, tool, "default", reason)
        for ago, k, tool, reason in calls
    ]
    w.facts(facts)
    return Built(keys, log, facts)


SETTINGS = settings(max_examples=25, deadline=None)


# lifecycle ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.lists(key_st, max_size=6), st.lists(audit_st, max_size=40), ranges(), st.sampled_from([None, 1, 2, 100]))
def test_lifecycle_equals_a_recount(specs: list[KeySpec], audit: list[Any], r: Range, limit: int | None) -> None:
    with world(NOW) as w:
        b = build(w, specs, audit, [])
        out = w.run("lifecycle", **r.params(), **({} if limit is None else {"limit": limit}))
        mine = [e for e in b.log if e.type in LIFECYCLE and r.holds(e.ts)]
        names = [t.removeprefix("key.") for t in LIFECYCLE]

        counts = Counter(e.type.removeprefix("key.") for e in mine)
        assert out["events"] == {n: counts[n] for n in names}

        by_day: dict[int, Counter[str]] = {}
        for e in mine:
            by_day.setdefault(int(e.ts // DAY), Counter())[e.type.removeprefix("key.")] += 1
        assert out["trends"] == [
            {"date": time.strftime("%Y-%m-%d", time.gmtime(d * DAY)), **{n: by_day[d][n] for n in names}}
            for d in sorted(by_day)
        ]

        lifetimes = []
        for e in mine:
            holders = [k for k in b.keys if not k.active and k.masked == e.data["keyMasked"]]
            if e.type == "key.revoked" and len(holders) == 1:
                lifetimes.append(Fraction(max(0, int(e.ts - holders[0].created_at)), HOUR))
        assert out["averageLifetimeHours"] == (
            round(float(sum(lifetimes) / len(lifetimes)), 1) if lifetimes else None  # a float rounded as Python does
        )

        risks = []
        for k in b.keys:
            if not k.active or k.suspended:
                continue
            if k.expires_at is not None and k.expires_at <= NOW:
                risks.append((0, k.name, k.masked, {"expiresAt": iso(k.expires_at)}))
            elif k.expires_at is not None and k.expires_at <= NOW + 7 * DAY:
                days = round((k.expires_at - NOW) / DAY, 2)
                risks.append((1, k.name, k.masked, {"expiresAt": iso(k.expires_at), "daysRemaining": days}))
            if k.credits <= 0:
                risks.append((2, k.name, k.masked, {"credits": k.credits}))
        kinds = ("expired", "expiring_soon", "zero_credits")
        expected = [
            {"key": m, "name": n, "risk": kinds[r_], "details": d}
            for r_, n, m, d in sorted(risks, key=lambda x: (x[0], x[1], x[2]))
        ]
        assert out["atRisk"] == expected[: limit or 100]


# compliance --------------------------------------------------------------------------------------------------
def effective(k: KeyRecord) -> tuple[bool, bool, bool]:
    """ACL, IP restriction, spending limit: the key's own, else its (active) group's."""
    g = GROUPS.get(k.group_id or "", {})
    if not g.get("active", True):
        g = {}
    acl = bool(k.allowed_tools or k.denied_tools or g.get("allowedTools") or g.get("deniedTools"))
    return acl, bool(k.ip_allowlist or g.get("ipAllowlist")), bool(k.spending_limit or g.get("maxSpendingLimit"))


def plain(**fields: Any) -> KeySpec:
    """A live key of no group with no policy, unless `fields` say otherwise."""
    base: dict[str, Any] = dict(
        name="ann", status="live", namespace="default", group=None, created_steps_ago=10, credits=7,
        expires_in_h=None, acl="", ip=False, spending_limit=0, quota=False, twin=False,
    )  # fmt: skip
    return KeySpec(**{**base, **fields})


@SETTINGS
# 25/6 + 20/6 is 7.5, which rounds up to 8 (in floats it is 7.4999… and rounded to 7)
@example([plain(acl="allow"), plain(ip=True), *[plain()] * 4], [], [], Range(None, None), None, None)
@given(
    st.lists(key_st, max_size=6),
    st.lists(audit_st, max_size=8),
    st.lists(call_st, max_size=20),
    ranges(),
    st.sampled_from([None, "prod", "default"]),
    st.sampled_from([None, None, "grp_1", "premium", "grp_off"]),
)
def test_compliance_equals_a_recount(
    specs: list[KeySpec], audit: list[Any], calls: list[Any], r: Range, space: str | None, group: str | None
) -> None:
    with world(NOW) as w:
        b = build(w, specs, audit, calls)
        params = {**r.params(), "namespace": space, "group": group}
        out = w.run("compliance", **{n: v for n, v in params.items() if v is not None})
        gid = {"premium": "grp_1"}.get(group or "", group)
        keys = [
            k
            for k in b.keys
            if k.active
            and r.holds(k.created_at)
            and (space is None or k.namespace == space)
            and (gid is None or k.group_id == gid)
        ]
        n = len(keys)
        expiry = sum(1 for k in keys if k.expires_at is not None)
        acl = sum(1 for k in keys if effective(k)[0])
        ip = sum(1 for k in keys if effective(k)[1])
        limit = sum(1 for k in keys if effective(k)[2])
        assert out["keyGovernance"] == {"totalKeys": n, "keysWithExpiry": expiry, "keysWithoutExpiry": n - expiry}
        assert out["accessControl"] == {
            "keysWithAcl": acl,
            "keysWithoutAcl": n - acl,
            "keysWithIpRestriction": ip,
            "keysWithoutIpRestriction": n - ip,
            "keysWithSpendingLimit": limit,
            "keysWithoutSpendingLimit": n - limit,
        }
        events = sum(1 for e in b.log if r.holds(e.ts))
        called = [c for c in b.calls if r.holds(c.ts)]
        # the audit trail is the gateway's: namespace and group narrow the keys, not the trail
        assert out["auditTrail"] == {
            "totalEvents": events,
            "uniqueTools": len({c.tool for c in called}),
            "uniqueKeys": len({c.key_hash for c in called if c.key_hash is not None}),
        }

        def share(have: int) -> Fraction:
            return Fraction(have, n) if n else Fraction(1)

        score = 25 * share(expiry) + 25 * share(acl) + 20 * share(ip) + 15 * share(limit) + (15 if events else 0)
        assert out["overallScore"] == math.floor(score + Fraction(1, 2))
        gaps = [n - expiry, n - acl, n - ip, n - limit]
        assert len(out["recommendations"]) == sum(1 for g in gaps if g) + (0 if events else 1)
        assert [int(t.split(" key(s)")[0].split()[-1]) for t in out["recommendations"] if "key(s)" in t] == [
            g for g in gaps if g
        ]


# security: its score is the other one rounded halves up ----------------------------------------------------------
HALF = [plain(ip=True, acl="allow", quota=True) for _ in range(4)]
SECURITY_HALF = [*HALF, plain(ip=True, acl="deny"), plain(ip=True, credits=20_000, quota=True)]


@SETTINGS
# penalties (15 + 10 + 90 + 90 + 20) / 6 = 37.5: the score is 63 (in floats 62.5000…01 or 62.4999… by order)
@example(SECURITY_HALF, None, None, None)
@given(
    st.lists(key_st, max_size=6),
    st.sampled_from([None, "prod"]),
    st.sampled_from([None, "grp_1", "free"]),
    st.sampled_from([None, "warning", "info"]),
)
def test_security_equals_a_recount(
    specs: list[KeySpec], space: str | None, group: str | None, severity: str | None
) -> None:
    with world(NOW) as w:
        b = build(w, specs, [], [])
        params = {"namespace": space, "group": group, "severity": severity}
        out = w.run("security", **{n: v for n, v in params.items() if v is not None})
        gid = {"free": "grp_2"}.get(group or "", group)
        keys = [
            k
            for k in b.keys
            if k.active and (space is None or k.namespace == space) and (gid is None or k.group_id == gid)
        ]
        checks = {  # type: (severity, weight, the keys that have the gap)
            "no_ip_allowlist": ("warning", 25, [k for k in keys if not effective(k)[1]]),
            "no_acl_restriction": ("info", 15, [k for k in keys if not effective(k)[0]]),
            "no_quota": ("info", 10, [k for k in keys if k.quota is None]),
            "no_spending_limit": ("info", 15, [k for k in keys if not effective(k)[2]]),
            "no_expiry": ("info", 15, [k for k in keys if k.expires_at is None]),
            "high_credit_balance": ("warning", 20, [k for k in keys if k.credits >= 10_000]),
        }
        # no keys: nothing to penalise
        penalty = sum((Fraction(weight * len(gap), len(keys) or 1) for _, weight, gap in checks.values()), Fraction(0))
        assert out["score"] == max(0, math.floor(100 - penalty + Fraction(1, 2)))
        shown = [
            {"type": t, "severity": sev, "keys": sorted(k.name for k in gap), "count": len(gap)}
            for t, (sev, _, gap) in sorted(checks.items(), key=lambda c: (c[1][0] != "warning", c[0]))
            if gap and severity in (None, sev)
        ]
        assert [{n: f[n] for n in ("type", "severity", "keys", "count")} for f in out["findings"]] == shown
        assert out["summary"] == {"totalKeys": len(keys), "totalFindings": sum(f["count"] for f in shown)}


# audit-summary -----------------------------------------------------------------------------------------------
def message(e: Logged) -> str:
    if e.type == "gate.allow":
        return "Allowed: t1"
    if e.type == "gate.deny":
        return "Denied: t1 (rate_limited)"
    words = e.type.replace(".", " ").replace("_", " ")
    words = words[0].upper() + words[1:]
    return f"{words}: {e.data['keyMasked']}" if "keyMasked" in e.data else words


@SETTINGS
@given(st.lists(key_st, max_size=3), st.lists(audit_st, max_size=50), ranges(), st.sampled_from([None, 1, 5, 1000]))
def test_audit_summary_equals_a_recount(specs: list[KeySpec], audit: list[Any], r: Range, limit: int | None) -> None:
    with world(NOW) as w:
        b = build(w, specs, audit, [])
        out = w.run("audit-summary", **r.params(), **({} if limit is None else {"limit": limit}))
        mine = [e for e in b.log if r.holds(e.ts)]
        end = NOW if r.stop is None else r.stop - 0.001  # the range ends at `until`'s hour's end, else now
        stamps = [e.ts for e in mine]
        assert out["summary"] == {
            "totalEvents": len(mine),
            "eventsLastHour": sum(1 for t in stamps if end - HOUR <= t <= end),
            "eventsLast24h": sum(1 for t in stamps if end - DAY <= t <= end),
            "oldestEvent": iso(min(stamps)) if stamps else None,
            "newestEvent": iso(max(stamps)) if stamps else None,
        }
        types = Counter(e.type for e in mine)
        assert out["eventsByType"] == [
            {"type": t, "count": c} for t, c in sorted(types.items(), key=lambda x: (-x[1], x[0]))
        ]
        actors = Counter(e.actor for e in mine)
        assert out["topActors"] == [
            {"actor": a, "count": c} for a, c in sorted(actors.items(), key=lambda x: (-x[1], x[0]))[:10]
        ]
        newest_first = sorted(mine, key=lambda e: -e.id)  # the log's order, as GET /audit
        assert out["recentEvents"] == [
            {"id": e.id, "timestamp": iso(e.ts), "type": e.type, "actor": e.actor, "message": message(e)}
            for e in newest_first[: limit or 20]
        ]
