"""Tenants (GET/POST/DELETE /admin/tenants, docs/tenants.md): isolation of keys, usage and limits for a
platform's customers.

A tenant is a membership document (policy/memberships.py, kind `TENANTS`) with a status (active or
suspended), a calls/min limit and daily/monthly call and credit limits shared by all its keys. The gate
reads it (billing/facts.py `tenant_of`): a suspended tenant's keys are refused (`tenant_suspended`), the
limits refuse like a team's quota (`tenant_rate_limited`, `tenant_quota_exceeded`) — all before any
charge. A key names its tenant in `extra["tenantId"]`, so the binding travels with the key through the
store, backups and rotations. Usage (today, this month) is the billing service's tenant counter, counted
in the same step as each charge and rebuilt from the usage log at start.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.billing.quota import QuotaBook, tenant_subject
from paygate.core.domain_errors import Conflict
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyService
from paygate.policy.memberships import TENANTS, Doc, MembershipService

STATUSES = ("active", "suspended")


class TenantConflict(Conflict):
    pass


class Tenants:
    def __init__(self, keys: KeyService, quotas: QuotaBook) -> None:
        self.keys = keys
        self.store = keys.store
        self.quotas = quotas
        self.members = MembershipService(keys, TENANTS)

    # --- lifecycle (names, caps, bind/unbind and the events are the membership service's) --------------
    def create(self, fields: Doc, actor: str) -> Doc:
        return self._shown(self.members.create(fields, actor))

    def update(self, tenant_id: str, changes: Doc, actor: str) -> Doc:
        return self._shown(self.members.update(tenant_id, changes, actor))

    def delete(self, tenant_id: str, actor: str) -> tuple[Doc, int]:
        return self.members.delete(tenant_id, actor)

    def bind(self, tenant_id: str, record: KeyRecord, actor: str) -> None:
        self.members.assign(record, tenant_id, actor)

    def unbind(self, record: KeyRecord, actor: str, tenant_id: str | None) -> str:
        return self.members.remove(record, actor, tenant_id)

    def set_status(self, tenant_id: str, status: str, actor: str, reason: str | None = None) -> Doc:
        """Suspend or activate; announced as `tenant.suspended` / `tenant.activated`. The gate refuses a
        suspended tenant's keys from the next call on (the document cache is the store's)."""
        doc = self.members.get(tenant_id)
        if doc.get("status") == status:
            raise TenantConflict(f"tenant is already {status}")
        now = iso_time(time.time())
        doc.update(status=status, updatedAt=now)
        if status == "suspended":
            doc.update(suspendedAt=now, suspendReason=reason)
        else:
            doc.pop("suspendedAt", None)
            doc.pop("suspendReason", None)
        self.store.doc_put(TENANTS.doc, tenant_id, doc)
        word = "suspended" if status == "suspended" else "activated"
        self.keys.publish(f"tenant.{word}", actor, tenantId=tenant_id, name=doc["name"], reason=reason)
        return self._shown(self.members.view(doc))

    # --- views --------------------------------------------------------------------------------------
    def usage(self, tenant_id: str, now: float) -> dict[str, dict[str, int]]:
        """Calls and credits admitted for the tenant's keys today and this month (UTC)."""
        # This instance's own counter: the one its gate enforces (a Redis store keeps shared counters for
        # keys and teams only; see docs/tenants.md on fleets). `used` is live: read, never kept.
        used = self.quotas.used(tenant_subject(tenant_id), now)
        return {
            "today": {"calls": used.day_calls, "credits": used.day_credits},
            "month": {"calls": used.month_calls, "credits": used.month_credits},
        }

    def detail(self, tenant_id: str, now: float) -> Doc:
        """One tenant with its keys (masked) and usage."""
        doc = self._shown(self.members.view(self.members.get(tenant_id)))
        keys = [
            {
                "keyMasked": k.masked,
                "name": k.name,
                "credits": k.credits,
                "totalSpent": k.total_spent,
                "totalCalls": k.total_calls,
                "suspended": k.suspended,
            }
            for k in self.members.members(tenant_id)
        ]
        return {**doc, "keys": keys, "usage": self.usage(tenant_id, now)}

    def report(self, now: float, only: str | None = None) -> Doc:
        """Every tenant with its key count and usage, and the totals across tenants (cross-tenant report);
        `only`: just that tenant (what an admin key scoped to it sees)."""
        listed = [d for d in self.members.listing() if only is None or d["id"] == only]
        tenants = [{**self._shown(d), "usage": self.usage(str(d["id"]), now)} for d in listed]
        totals: Doc = {
            "tenants": len(tenants),
            **{s: sum(1 for t in tenants if t.get("status") == s) for s in STATUSES},
            "keys": sum(int(t["keyCount"]) for t in tenants),
        }
        for period in ("today", "month"):
            totals[period] = {
                field: sum(int(t["usage"][period][field]) for t in tenants) for field in ("calls", "credits")
            }
        return {
            "tenants": tenants,
            "count": len(tenants),
            "totals": totals,
            "limits": {"maxTenants": TENANTS.max_docs, "maxKeysPerTenant": TENANTS.max_members},
        }

    def counts(self) -> dict[str, int]:
        """Tenants by status, and keys bound (for /metrics; read at scrape time)."""
        out = dict.fromkeys(STATUSES, 0)
        for doc in self.store.doc_scan(TENANTS.doc):
            status = doc.get("status")
            if status in out:
                out[status] += 1
        out["keys"] = sum(1 for k in self.store.list_keys() if k.active and self.members.member_of(k) is not None)
        return out

    @staticmethod
    def _shown(doc: Doc) -> Doc:
        """The document as the API shows it: `keyCount` (the membership service's memberCount), no `active`
        (a tenant is erased when deleted; `status` is what suspends it)."""
        out = {k: v for k, v in doc.items() if k not in ("memberCount", "active")}
        out["keyCount"] = doc.get("memberCount", 0)
        return out


class TenantCollector(Collector):
    """/metrics: tenants by status and the keys bound to one, read at scrape time (nothing on the call path).
    Refusals are counted with every other deny reason (`paygate_denials_total{reason="tenant_…"}`)."""

    def __init__(self, tenants: Tenants) -> None:
        self.tenants = tenants

    def collect(self) -> Iterable[Metric]:
        counts = self.tenants.counts()
        total = GaugeMetricFamily("paygate_tenants_total", "Tenants, by status", labels=["status"])
        for status in STATUSES:
            total.add_metric([status], counts[status])
        yield total
        yield GaugeMetricFamily("paygate_tenant_keys_bound", "Active keys bound to a tenant", value=counts["keys"])
