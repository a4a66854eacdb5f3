"""The tenant's checks in the gate (docs/tenants.md), pure and through BillingService: where they stand in
the order, a malformed tenant document refusing rather than failing open, and dry runs agreeing."""

from __future__ import annotations

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core import gate
from paygate.core.pricing import PriceBook
from paygate.core.quota import Counter
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import SQLiteStore

TENANT = "tnt_1"


def _world(memory_store: SQLiteStore, credits: int = 10, **tenant: object) -> tuple[BillingService, str, KeyRecord]:
    billing = BillingService(memory_store, PriceBook(1, 0, {}), Metrics(), shadow=False, refund_on_failure=False)
    keys = KeyService(memory_store)
    new = keys.create("k", credits)
    record = memory_store.get_key(new.record.key_hash)
    assert record is not None
    memory_store.doc_put("tenant", TENANT, {"id": TENANT, "name": "T", "status": "active", **tenant})
    keys.save(record, extra={"tenantId": TENANT})
    return billing, new.raw, record


def _reason(decision: Admitted | Refused) -> str | None:
    return decision.denial.reason if isinstance(decision, Refused) else None


def test_the_pure_checks() -> None:
    key = KeyRecord("h", "pg_", "abcd", "k", 10, 0.0)
    g = gate.GateInput(key, True, "t", 3, 0.0, tenant={"id": TENANT, "status": "suspended", "name": "T"})
    assert gate.check_tenant_active(g) == gate.Denial("tenant_suspended", "tenant 'T' is suspended")
    g.tenant = {"id": TENANT, "status": "active", "quota": {"dailyCredits": 5}}
    g.tenant_used = Counter("d", "m", day_credits=2)
    assert gate.check_tenant_active(g) is None and gate.check_tenant_quota(g) is None  # 2 + 3 fits 5
    g.price = 4
    denial = gate.check_tenant_quota(g)
    assert denial is not None and denial.reason == "tenant_quota_exceeded"
    g.tenant = None  # a key bound to no tenant
    assert gate.check_tenant_active(g) is None and gate.check_tenant_quota(g) is None


def test_the_keys_own_refusals_come_first_and_the_tenants_before_money(memory_store: SQLiteStore) -> None:
    billing, raw, record = _world(memory_store, credits=0, status="suspended")
    assert _reason(billing.admit(raw, "echo", 0, None)) == "tenant_suspended"  # before insufficient_credits
    record.suspended = True
    memory_store.update_key(record)
    assert _reason(billing.admit(raw, "echo", 0, None)) == "key_suspended"


def test_a_malformed_tenant_refuses_its_keys_instead_of_failing_open(memory_store: SQLiteStore) -> None:
    billing, raw, _ = _world(memory_store, rateLimitPerMin="lots")
    decision = billing.admit(raw, "echo", 0, None)
    assert isinstance(decision, Refused) and decision.denial.reason == "tenant_suspended"
    assert "cannot be read" in decision.denial.detail
    memory_store.doc_put("tenant", TENANT, {"id": TENANT, "name": "T", "status": "frozen"})
    assert _reason(billing.admit(raw, "echo", 0, None)) == "tenant_suspended"


def test_a_binding_whose_tenant_is_gone_is_no_tenant(memory_store: SQLiteStore) -> None:
    billing, raw, _ = _world(memory_store, status="suspended")
    memory_store.doc_delete("tenant", TENANT)
    assert _reason(billing.admit(raw, "echo", 0, None)) is None


def test_dry_runs_agree_with_real_calls(memory_store: SQLiteStore) -> None:
    billing, raw, record = _world(memory_store, rateLimitPerMin=1, quota={"dailyCalls": 5})
    assert billing.dry_run(record, "echo").allowed
    assert _reason(billing.admit(raw, "echo", 0, None)) is None
    verdict = billing.dry_run(record, "echo")
    assert not verdict.allowed and verdict.reason == "tenant_rate_limited"
    assert _reason(billing.admit(raw, "echo", 0, None)) == "tenant_rate_limited"
