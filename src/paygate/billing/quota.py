"""Quota counters for keys and teams, in memory on the hot path, rebuilt from the usage log at start.

Subjects: a key hash, `team:<id>`, or `tenant:<id>` (a key bound to a tenant: `extra["tenantId"]`).
Teams also carry an all-time `spent` total for their shared budget (credits charged at admission to current
members since the team was created).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any

from paygate.core import quota
from paygate.core.policy import EffectivePolicy
from paygate.core.records import KeyRecord
from paygate.core.values import iso_seconds
from paygate.store.base import Store
from paygate.store.errors import StoreError

TEAM_DOC = "team"


def team_subject(team_id: str) -> str:
    return f"team:{team_id}"


def tenant_subject(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def tenant_of(key: KeyRecord) -> str | None:
    """The tenant a key is bound to (policy/tenants.py), read from its `extra` (no column of its own)."""
    if not key.extra:
        return None
    held = key.extra.get("tenantId")
    return held if isinstance(held, str) else None


# A store shared by several instances (Redis) keeps the fleet's counters: (counter, team spent all time).
SharedCounters = Callable[[str, float], tuple[quota.Counter, int]]


class QuotaBook:
    def __init__(self) -> None:
        self._counters: dict[str, quota.Counter] = {}
        self._team_spent: dict[str, int] = {}
        # Set on a fleet: what views show (snapshot, shared_team_spent) comes from there; the gate still
        # reads this instance's counters (`used`), and the shared store checks the fleet's as it charges.
        self.shared: SharedCounters | None = None

    def used(self, subject: str, now: float) -> quota.Counter:
        """The live counter (rolled to `now`): read by the gate, never handed out."""
        counter = self._counters.get(subject)
        if counter is None:
            counter = self._counters[subject] = quota.Counter(quota.day_of(now), quota.month_of(now))
        return counter.roll(now)

    def snapshot(self, subject: str, now: float) -> quota.Counter:
        if self.shared is not None:
            try:
                return self.shared(subject, now)[0]
            except StoreError:  # unreachable: this instance's own count is the best there is
                pass
        return copy.copy(self.used(subject, now))

    def shared_team_spent(self, team_id: str) -> int:
        if self.shared is not None:
            try:
                return self.shared(team_subject(team_id), time.time())[1]
            except StoreError:
                pass
        return self.team_spent(team_id)

    def team_spent(self, team_id: str) -> int:
        return self._team_spent.get(team_id, 0)

    def add(self, key: KeyRecord, credits: int, now: float) -> None:
        """Count one admitted call for the key and its team."""
        subjects = self._subjects(key)
        if key.team_id is not None:
            self._team_spent[key.team_id] = self._team_spent.get(key.team_id, 0) + credits
        for subject in subjects:
            counter = self.used(subject, now)
            counter.day_calls += 1
            counter.month_calls += 1
            counter.day_credits += credits
            counter.month_credits += credits

    def remove(self, key: KeyRecord, credits: int, now: float) -> None:
        """Take back one refunded call (as `usage_sums` does on a rebuild); never below zero."""
        subjects = self._subjects(key)
        if key.team_id is not None:
            self._team_spent[key.team_id] = max(self._team_spent.get(key.team_id, 0) - credits, 0)
        for subject in subjects:
            counter = self.used(subject, now)
            counter.day_calls = max(counter.day_calls - 1, 0)
            counter.month_calls = max(counter.month_calls - 1, 0)
            counter.day_credits = max(counter.day_credits - credits, 0)
            counter.month_credits = max(counter.month_credits - credits, 0)

    @staticmethod
    def _subjects(key: KeyRecord) -> list[str]:
        """The counters one call of `key` counts in: its own, its team's, its tenant's."""
        subjects = [key.key_hash]
        if key.team_id is not None:
            subjects.append(team_subject(key.team_id))
        tenant = tenant_of(key)
        if tenant is not None:
            subjects.append(tenant_subject(tenant))
        return subjects

    def move(self, old_subject: str, new_subject: str) -> None:
        counter = self._counters.pop(old_subject, None)
        if counter is not None:
            self._counters[new_subject] = counter

    def rebuild(self, store: Store, now: float) -> None:
        """Recount today's and this month's admitted calls from the usage log."""
        self._counters.clear()
        self._team_spent.clear()
        keys = {k.key_hash: k for k in store.list_keys()}
        day = store.usage_sums(quota.day_start(now))
        month = store.usage_sums(quota.month_start(now))
        for key_hash, (calls, credits) in month.items():
            day_calls, day_credits = day.get(key_hash, (0, 0))
            subjects = self._subjects(keys[key_hash]) if key_hash in keys else [key_hash]
            for subject in subjects:
                c = self.used(subject, now)
                c.month_calls += calls
                c.month_credits += credits
                c.day_calls += day_calls
                c.day_credits += day_credits
        for doc_id, team in store.doc_items(TEAM_DOC):
            members = [k for k in keys.values() if k.team_id == doc_id]
            self._team_spent[doc_id] = _spent_since(store, _created(team), members)


def counters_from_usage(store: Store, now: float) -> dict[str, tuple[quota.Counter, int]]:
    """Every subject's counter (and a team's credits spent since it was created), recounted from the usage
    log as a start does: what a store that keeps the counters itself (Redis) is seeded with on a move."""
    book = QuotaBook()
    book.rebuild(store, now)
    found = {subject: (counter, 0) for subject, counter in book._counters.items()}
    for team_id, spent in book._team_spent.items():
        subject = team_subject(team_id)
        found[subject] = (found.get(subject, (quota.Counter(quota.day_of(now), quota.month_of(now)), 0))[0], spent)
    return found


def quota_view(policy: EffectivePolicy, used: quota.Counter) -> dict[str, Any]:
    """A key's quota usage against its effective limits (0 / null limit: unlimited)."""
    daily_calls, monthly_calls, daily_credits, monthly_credits = quota.limits_of(policy.quota)
    now = time.time()

    def meter(used_: int, limit: int) -> dict[str, int | None]:
        return {"used": used_, "limit": limit or None, "remaining": max(limit - used_, 0) if limit else None}

    return {
        "source": policy.quota_source,
        "quota": policy.quota,
        "daily": {
            "calls": meter(used.day_calls, daily_calls),
            "credits": meter(used.day_credits, daily_credits),
            "period": used.day,
            "resetsAt": iso_seconds(quota.next_day(now)),
        },
        "monthly": {
            "calls": meter(used.month_calls, monthly_calls),
            "credits": meter(used.month_credits, monthly_credits),
            "period": used.month,
            "resetsAt": iso_seconds(quota.next_month(now)),
        },
    }


def _spent_since(store: Store, since: float, members: Iterable[KeyRecord]) -> int:
    hashes = {m.key_hash for m in members}
    if not hashes:
        return 0
    return sum(credits for key_hash, (_, credits) in store.usage_sums(since).items() if key_hash in hashes)


def _created(team: dict[str, object]) -> float:
    """A team document's creation time (epoch seconds, or the ISO `createdAt`)."""
    from datetime import datetime

    raw = team.get("createdTs") or team.get("createdAt")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0
