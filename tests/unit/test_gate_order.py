"""The whole gate through BillingService on a real SQLite store: which reason wins when several
apply (the evaluation order), shadow mode applied once, and dry runs agreeing with real calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from paygate.billing.facts import ClientFacts
from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import SQLiteStore

PROXY = "10.0.0.1"
OUTSIDE = ClientFacts("203.0.113.7")
FROM_DE = ClientFacts(PROXY, b"198.51.100.4", {b"cf-ipcountry": b"DE"})


@dataclass
class World:
    store: SQLiteStore
    key: KeyRecord

    def set(self, **fields: object) -> None:
        for name, value in fields.items():
            setattr(self.key, name, value)
        self.store.update_key(self.key)

    def team(self, **team: object) -> None:
        self.store.doc_put("team", "team_1", {"id": "team_1", "active": True, **team})
        self.set(team_id="team_1")

    def group(self, **group: object) -> None:
        self.store.doc_put("group", "grp_1", {"id": "grp_1", "active": True, **group})
        self.set(group_id="grp_1")

    def plan(self, **plan: object) -> None:
        self.store.doc_put("plan", "free", {"name": "free", **plan})
        self.set(plan="free")

    def spend_all(self) -> None:
        self.store.adjust(self.key.key_hash, -self.key.credits, "test", "spend it all")


Setup = Callable[[World], None]
NO_QUOTA = {"dailyCallLimit": 0, "monthlyCallLimit": 0, "dailyCreditLimit": 0, "monthlyCreditLimit": 0}


def broke_with_limit(w: World) -> None:
    w.set(spending_limit=1, total_spent=1)
    w.spend_all()


def limit_and_quota(w: World) -> None:
    w.set(spending_limit=1, total_spent=1, quota={**NO_QUOTA, "dailyCreditLimit": 1})


CASES: list[tuple[str, Setup, ClientFacts, str | None]] = [
    ("fine", lambda w: None, OUTSIDE, None),
    ("suspended beats IP", lambda w: w.set(suspended=True, ip_allowlist=["10.9.0.0/16"]), OUTSIDE, "key_suspended"),
    ("expired beats IP", lambda w: w.set(expires_at=1.0, ip_allowlist=["10.9.0.0/16"]), OUTSIDE, "api_key_expired"),
    (
        "IP beats country",
        lambda w: w.set(ip_allowlist=["10.9.0.0/16"], allowed_countries=["US"]),
        OUTSIDE,
        "ip_not_allowed",
    ),
    ("IP allowed through a trusted proxy", lambda w: w.set(ip_allowlist=["198.51.100.0/24"]), FROM_DE, None),
    (
        "country beats ACL",
        lambda w: w.set(allowed_countries=["US"], denied_tools=["add"]),
        FROM_DE,
        "country_not_allowed",
    ),
    ("unknown country fails closed", lambda w: w.set(allowed_countries=["DE"]), OUTSIDE, "country_not_allowed"),
    ("denied country", lambda w: w.set(denied_countries=["DE"]), FROM_DE, "country_not_allowed"),
    ("allowed country", lambda w: w.set(allowed_countries=["DE"]), FROM_DE, None),
    ("ACL beats credits", lambda w: (w.set(denied_tools=["add"]), w.spend_all())[0], OUTSIDE, "tool_not_allowed"),
    ("credits beat spending limit", broke_with_limit, OUTSIDE, "insufficient_credits"),
    ("spending limit beats quota", limit_and_quota, OUTSIDE, "spending_limit_exceeded"),
    (
        "an all-zero quota and team limits are unlimited",
        lambda w: (w.set(quota=NO_QUOTA), w.team(budget=0))[0],
        OUTSIDE,
        None,
    ),
    ("group denies the tool", lambda w: w.group(deniedTools=["add"]), OUTSIDE, "tool_not_allowed"),
    ("group IP allowlist", lambda w: w.group(ipAllowlist=["10.9.0.0/16"]), OUTSIDE, "ip_not_allowed"),
    ("inactive group is ignored", lambda w: w.group(active=False, deniedTools=["add"]), OUTSIDE, None),
    ("plan denies the tool", lambda w: w.plan(deniedTools=["add"]), OUTSIDE, "tool_not_allowed"),
    (
        "group price over the balance",
        lambda w: w.group(toolPricing={"add": {"creditsPerCall": 11}}),
        OUTSIDE,
        "insufficient_credits",
    ),
    ("plan multiplier over the balance", lambda w: w.plan(creditMultiplier=10.5), OUTSIDE, "insufficient_credits"),
]


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def world(store: SQLiteStore, setup: Setup) -> tuple[World, str]:
    new = KeyService(store).create("k", 10)
    w = World(store, new.record)
    setup(w)
    return w, new.raw


def billing(store: SQLiteStore, shadow: bool = False) -> BillingService:
    return BillingService(
        store,
        PriceBook(1, 0, {"add": ToolPrice(1)}),
        Metrics(),
        shadow=shadow,
        refund_on_failure=False,
        trusted_proxies=(PROXY,),
    )


@pytest.mark.parametrize(("label", "setup", "client", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_first_failing_check_in_order_decides(
    store: SQLiteStore, label: str, setup: Setup, client: ClientFacts, expected: str | None
) -> None:
    w, raw = world(store, setup)
    before = w.key.credits
    verdict = billing(store).dry_run(
        w.key, "add", 0, billing(store).facts.client_ip(client), billing(store).facts.country(client)
    )
    assert verdict.reason == expected  # the dry run predicts the real call
    assert w.key.credits == before  # and charged nothing
    decision = billing(store).admit(raw, "add", 0, None, client)
    if expected is None:
        assert isinstance(decision, Admitted) and decision.charged == 1
    else:
        assert isinstance(decision, Refused) and decision.denial.reason == expected
        assert w.key.credits == before


@pytest.mark.parametrize(
    ("label", "setup", "client", "expected"), [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]]
)
def test_shadow_mode_turns_every_denial_into_one_shadow_allow(
    store: SQLiteStore, label: str, setup: Setup, client: ClientFacts, expected: str
) -> None:
    w, raw = world(store, setup)
    before = w.key.credits
    decision = billing(store, shadow=True).admit(raw, "add", 0, None, client)
    assert isinstance(decision, Admitted)
    assert decision.shadow_reason == f"shadow:{expected}" and decision.charged == 0
    assert w.key.credits == before


def test_quota_and_team_limits_count_admitted_calls(store: SQLiteStore) -> None:
    w, raw = world(store, lambda w: w.set(quota={"dailyCallLimit": 2}))
    b = billing(store)
    assert isinstance(b.admit(raw, "add", 0, None), Admitted)
    assert isinstance(b.admit(raw, "add", 0, None), Admitted)
    third = b.admit(raw, "add", 0, None)
    assert isinstance(third, Refused) and third.denial.reason == "quota_exceeded"
    assert b.quota_status(w.key)["daily"]["calls"] == {"used": 2, "limit": 2, "remaining": 0}

    _, other_raw = world(store, lambda o: o.team(budget=3))
    w.set(quota=None)
    w.team(budget=3)  # both keys share team_1's budget of 3 credits
    assert isinstance(b.admit(other_raw, "add", 0, None), Admitted)
    assert isinstance(b.admit(raw, "add", 0, None), Admitted)
    assert isinstance(b.admit(other_raw, "add", 0, None), Admitted)
    over = b.admit(raw, "add", 0, None)
    assert isinstance(over, Refused) and over.denial.reason == "team_budget_exceeded"
    assert b.team_usage("team_1")["spent"] == 3


def test_counters_are_rebuilt_from_the_usage_log(tmp_path: object) -> None:
    path = f"{tmp_path}/s.db"
    s = SQLiteStore(path)
    s.open()
    raw = KeyService(s).create("k", 10, quota={"dailyCallLimit": 2}).raw
    b = billing(s)
    assert isinstance(b.admit(raw, "add", 0, None), Admitted)
    assert isinstance(b.admit(raw, "add", 0, None), Admitted)
    s.close()
    again = SQLiteStore(path)
    again.open()
    try:
        fresh = billing(again)
        fresh.start()
        refused = fresh.admit(raw, "add", 0, None)
        assert isinstance(refused, Refused) and refused.denial.reason == "quota_exceeded"
    finally:
        again.close()
