"""Alert rules: each check at its boundary, rule-set limits, the bounded queue, cooldowns, spikes, persistence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paygate.alerts import rules as alerts
from paygate.alerts.rules import KeyFacts, Rule, RuleError, check_rules
from paygate.alerts.service import ALERT_DOC, RULES_ID, Alert, AlertQueue, AlertService
from paygate.core.records import KeyRecord, UsageEvent
from paygate.events.hub import Event, EventHub
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def facts(**changes: object) -> KeyFacts:
    base: dict[str, object] = {"name": "k", "credits": 20, "total_spent": 80, "expires_at": None, "now": T0}
    return KeyFacts(**{**base, **changes})  # type: ignore[arg-type]


# --- the checks ----------------------------------------------------------------------------------


def test_spending_threshold_fires_at_exactly_the_percentage_spent_and_not_above_it() -> None:
    found = alerts.spending_threshold(facts(), 80)
    assert found is not None and found.value == 80.0 and found.metadata["totalBudget"] == 100
    assert alerts.spending_threshold(facts(), 80.1) is None


def test_spending_threshold_never_fires_for_a_key_that_never_had_credits() -> None:
    assert alerts.spending_threshold(facts(credits=0, total_spent=0), 0) is None


def test_credits_low_fires_only_below_the_threshold() -> None:
    assert alerts.credits_low(facts(credits=50), 50) is None
    found = alerts.credits_low(facts(credits=50), 51)
    assert found is not None and found.value == 50


def test_quota_warning_fires_at_the_daily_call_percentage_and_never_without_a_quota() -> None:
    found = alerts.quota_warning(facts(daily_calls=9, daily_call_limit=10), 90)
    assert (
        found is not None
        and found.value == 90.0
        and found.metadata == {"quotaType": "dailyCalls", "used": 9, "limit": 10}
    )
    assert alerts.quota_warning(facts(daily_calls=9, daily_call_limit=10), 91) is None
    assert alerts.quota_warning(facts(daily_calls=1000, daily_call_limit=0), 0) is None


def test_key_expiry_soon_fires_within_the_window_and_not_for_expired_or_unexpiring_keys() -> None:
    found = alerts.key_expiry_soon(facts(expires_at=T0 + 3600), 3600)
    assert found is not None and found.value == 3600
    assert alerts.key_expiry_soon(facts(expires_at=T0 + 3600), 3599) is None
    assert alerts.key_expiry_soon(facts(expires_at=T0), 3600) is None  # already expired
    assert alerts.key_expiry_soon(facts(expires_at=None), 10**9) is None


def test_rate_limit_spike_fires_at_the_denial_count_and_needs_at_least_one_denial() -> None:
    found = alerts.rate_limit_spike(facts(rate_denials=3), 3)
    assert found is not None and found.value == 3
    assert alerts.rate_limit_spike(facts(rate_denials=3), 4) is None
    assert alerts.rate_limit_spike(facts(rate_denials=0), 0) is None


# --- rule sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        [Rule("spending_threshold", 100.5)],
        [Rule("quota_warning", 101)],
        [Rule("nope", 1)],
        [Rule("credits_low", -1)],
        [Rule("credits_low", float("inf"))],
        [Rule("credits_low", float("nan"))],
        [Rule("credits_low", True)],
        [Rule("credits_low", 1, cooldown_seconds=-1)],
        [Rule("credits_low", 1, cooldown_seconds=1.5)],  # type: ignore[arg-type]
        [Rule("credits_low", 5), Rule("credits_low", 5, cooldown_seconds=10)],
        [Rule("credits_low", i) for i in range(51)],
    ],
)
def test_rule_sets_outside_the_limits_are_refused(rules: list[Rule]) -> None:
    with pytest.raises(RuleError):
        check_rules(rules)


def test_fifty_distinct_rules_with_percentages_up_to_100_are_accepted() -> None:
    check_rules([Rule("credits_low", i) for i in range(49)] + [Rule("spending_threshold", 100)])


# --- the queue -----------------------------------------------------------------------------------


def alert(n: int) -> Alert:
    return Alert("credits_low", T0 + n, "pg_abcd...", "pg_abcd…wxyz", "k", f"alert {n}", 5, n, {})


def test_the_queue_keeps_the_newest_alerts_and_counts_the_dropped_until_drained() -> None:
    queue = AlertQueue(limit=3)
    for n in range(5):
        queue.push(alert(n))
    drained, dropped = queue.drain()
    assert [a.message for a in drained] == ["alert 2", "alert 3", "alert 4"] and dropped == 2
    assert queue.drain() == ([], 0)


# --- the service ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = SQLiteStore()
    s.open()
    try:
        yield s
    finally:
        s.close()


def spend(store: SQLiteStore, key: KeyRecord, amount: int) -> None:
    event = UsageEvent(T0, key.key_hash, key.masked, key.name, "echo", amount, True)
    assert store.charge(key.key_hash, amount, event).ok


def gate(type_: str, key: KeyRecord, reason: str | None = None, at: float = T0) -> Event:
    data = {"tool": "echo", "keyMasked": key.masked}
    if reason is not None:
        data["reason"] = reason
    return Event(type_, key.masked, data, at, key_hash=key.key_hash)


def fired(hub: EventHub) -> list[Event]:
    seen: list[Event] = []
    hub.subscribe(lambda e: seen.append(e) if e.type == "alert.fired" else None)
    return seen


def test_a_rule_fires_once_per_key_per_cooldown_and_again_after_it(store: SQLiteStore) -> None:
    clock, hub = Clock(), EventHub()
    published = fired(hub)
    key = KeyService(store).create("alpha", 100).record
    service = AlertService(store, hub, [Rule("spending_threshold", 50, cooldown_seconds=60)], clock=clock)
    spend(store, key, 60)
    service.on_batch([gate("gate.allow", key)])
    service.on_batch([gate("gate.allow", key)])
    clock.now += 59.9
    service.on_batch([gate("gate.allow", key)])
    assert len(service.queue) == 1 and len(published) == 1
    clock.now += 0.1
    service.on_batch([gate("gate.allow", key)])
    drained, _ = service.drain()
    assert [a.value for a in drained] == [60.0, 60.0]
    data = published[0].data
    assert data["alertType"] == "spending_threshold" and data["value"] == 60.0 and data["threshold"] == 50
    assert data["keyMasked"] == key.masked and data["keyPrefix"] == f"{key.prefix}..."
    assert published[0].actor == "system" and published[0].key_hash == key.key_hash


def test_cooldowns_are_per_key(store: SQLiteStore) -> None:
    keys = KeyService(store)
    a, b = keys.create("a", 3).record, keys.create("b", 3).record
    service = AlertService(store, EventHub(), [Rule("credits_low", 10)], clock=Clock())
    service.on_batch([gate("gate.allow", a), gate("gate.allow", b), gate("gate.allow", a)])
    assert sorted(x.key_name for x in service.drain()[0]) == ["a", "b"]


def test_rate_limit_denials_count_within_five_minutes_only(store: SQLiteStore) -> None:
    clock = Clock()
    key = KeyService(store).create("spiky", 100).record
    service = AlertService(store, EventHub(), [Rule("rate_limit_spike", 3, cooldown_seconds=0)], clock=clock)
    service.on_batch(
        [
            gate("gate.deny", key, "rate_limited", T0 - 301),
            gate("gate.deny", key, "rate_limited"),
            gate("gate.deny", key, "tool_rate_limited"),
            gate("gate.deny", key, "insufficient_credits"),
        ]
    )
    assert service.drain()[0] == []  # one denial is out of the window, one is not a rate limit
    service.on_batch([gate("gate.deny", key, "rate_limited")])
    drained, _ = service.drain()
    assert [(a.type, a.value) for a in drained] == [("rate_limit_spike", 3)]


def test_no_rules_means_no_work_and_other_events_and_revoked_keys_are_ignored(store: SQLiteStore) -> None:
    keys = KeyService(store)
    key = keys.create("gone", 1).record
    service = AlertService(store, EventHub(), [Rule("credits_low", 10)], clock=Clock())
    service.on_batch([Event("key.created", "admin", {}, T0, key_hash=key.key_hash)])
    key.active = False
    store.update_key(key)
    service.on_batch([gate("gate.allow", key)])
    assert service.drain() == ([], 0)


def test_quota_warning_reads_the_daily_calls_it_is_given(store: SQLiteStore) -> None:
    key = KeyService(store).create("q", 100).record
    service = AlertService(
        store, EventHub(), [Rule("quota_warning", 80)], clock=Clock(), daily_calls=lambda k, now: (8, 10)
    )
    service.on_batch([gate("gate.allow", key)])
    assert [a.value for a in service.drain()[0]] == [80.0]


def test_the_config_rules_apply_until_rules_are_set_and_stored_rules_win_after(store: SQLiteStore) -> None:
    defaults = [Rule("credits_low", 5)]
    first = AlertService(store, EventHub(), defaults)
    assert first.rules == defaults and first.source == "config"
    first.configure([])
    again = AlertService(store, EventHub(), defaults)  # as after a restart
    assert again.rules == [] and again.source == "api"
    assert store.doc_get(ALERT_DOC, RULES_ID) is not None


def test_a_refused_rule_set_leaves_the_stored_one(store: SQLiteStore) -> None:
    service = AlertService(store, EventHub())
    service.configure([Rule("credits_low", 5, cooldown_seconds=30)])
    with pytest.raises(RuleError):
        service.configure([Rule("quota_warning", 150)])
    assert service.rules == [Rule("credits_low", 5, cooldown_seconds=30)]
    assert AlertService(store, EventHub()).rules == service.rules


def test_a_restore_reloads_the_rules_and_a_bad_stored_set_falls_back_to_the_config(store: SQLiteStore) -> None:
    hub = EventHub()
    service = AlertService(store, hub, [Rule("credits_low", 1)])
    hub.subscribe(service.on_event)
    store.doc_put(ALERT_DOC, RULES_ID, {"rules": [{"type": "key_expiry_soon", "threshold": 60}]})
    hub.publish("backup.restored", "admin")
    assert service.rules == [Rule("key_expiry_soon", 60)]
    store.doc_put(ALERT_DOC, RULES_ID, {"rules": [{"type": "bogus", "threshold": 60}]})
    hub.publish("backup.restored", "admin")
    assert service.rules == [Rule("credits_low", 1)] and service.source == "config"


def test_sweep_forgets_ended_cooldowns_and_old_denials(store: SQLiteStore) -> None:
    clock = Clock()
    key = KeyService(store).create("s", 1).record
    service = AlertService(
        store, EventHub(), [Rule("credits_low", 10, cooldown_seconds=60), Rule("rate_limit_spike", 1)], clock=clock
    )
    service.on_batch([gate("gate.deny", key, "rate_limited")])
    assert service._last_fired and service._denials
    service.sweep(T0 + 301)
    assert not service._last_fired and not service._denials
