"""The audit log store class and service: append, filtered queries, stats, retention by count and age."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paygate.audit.service import (
    BURST_SLACK,
    CATEGORIES,
    TRAFFIC_SLACK,
    AuditService,
    category_of,
    message_of,
    to_csv,
)
from paygate.core.csv_cells import csv_cell
from paygate.events.hub import Event, EventHub
from paygate.store.audit_log import AuditFilter, AuditLog
from paygate.store.sqlite import SQLiteStore

DAY = 86_400.0
T0 = 1_700_000_000.0


@pytest.fixture
def audit_log() -> Iterator[AuditLog]:
    store = SQLiteStore()
    store.open()
    try:
        yield store.audit
    finally:
        store.close()


def test_entries_come_back_newest_first_with_their_data(audit_log: AuditLog) -> None:
    audit_log.append(T0, "key.created", "admin", {"keyMasked": "pg_abc1…9f3e", "credits": 5})
    audit_log.append(T0 + 1, "key.topup", "system", {"creditsAdded": 3})
    entries = audit_log.query(AuditFilter(), 10)
    assert [(e.type, e.actor, e.timestamp) for e in entries] == [
        ("key.topup", "system", T0 + 1),
        ("key.created", "admin", T0),
    ]
    assert entries[1].data == {"keyMasked": "pg_abc1…9f3e", "credits": 5}
    assert entries[0].id > entries[1].id


def test_filters_by_type_actor_and_inclusive_time_range(audit_log: AuditLog) -> None:
    for i, (type_, actor) in enumerate(
        [("a.x", "admin"), ("b.y", "admin"), ("a.x", "ak_1234…abcd"), ("c.z", "system")]
    ):
        audit_log.append(T0 + i, type_, actor, {})
    types = [e.type for e in audit_log.query(AuditFilter(types=("a.x", "c.z")), 10)]
    assert types == ["c.z", "a.x", "a.x"]
    assert [e.timestamp for e in audit_log.query(AuditFilter(actor="admin"), 10)] == [T0 + 1, T0]
    window = AuditFilter(since=T0 + 1, until=T0 + 2)
    assert [e.timestamp for e in audit_log.query(window, 10)] == [T0 + 2, T0 + 1]
    assert audit_log.count(window) == 2 and audit_log.count(AuditFilter()) == 4
    assert len(audit_log.query(AuditFilter(), 3)) == 3


def test_stats_count_by_type_and_actor_with_oldest_and_newest(audit_log: AuditLog) -> None:
    empty = audit_log.stats(10)
    assert (empty.total, empty.oldest, empty.newest, empty.by_type) == (0, None, None, {})
    audit_log.append(T0, "a.x", "admin", {})
    audit_log.append(T0 + 5, "a.x", "system", {})
    audit_log.append(T0 + 9, "b.y", "admin", {})
    s = audit_log.stats(1)
    assert (s.total, s.oldest, s.newest) == (3, T0, T0 + 9)
    assert s.by_type == {"a.x": 2, "b.y": 1} and s.by_actor == {"admin": 2}


def test_retention_by_count_keeps_the_newest_entries(audit_log: AuditLog) -> None:
    for i in range(25):
        audit_log.append(T0 + i, "a.x", "admin", {"i": i})
    assert audit_log.prune(T0 + 30, max_entries=10, max_age_seconds=DAY) == 15
    assert [e.data["i"] for e in audit_log.query(AuditFilter(), 100)] == list(range(24, 14, -1))
    assert audit_log.prune(T0 + 30, max_entries=10, max_age_seconds=DAY) == 0


def test_retention_by_age_drops_entries_older_than_the_limit(audit_log: AuditLog) -> None:
    audit_log.append(T0 - 31 * DAY, "old", "admin", {})
    audit_log.append(T0 - 29 * DAY, "recent", "admin", {})
    audit_log.append(T0, "new", "admin", {})
    assert audit_log.prune(T0, max_entries=100, max_age_seconds=30 * DAY) == 1
    assert [e.type for e in audit_log.query(AuditFilter(), 10)] == ["new", "recent"]


def test_the_service_records_hub_events_and_prunes_at_most_once_per_interval(audit_log: AuditLog) -> None:
    hub = EventHub()
    service = AuditService(audit_log, max_entries=3, max_age_days=30, prune_every=60.0, clock=lambda: T0)
    hub.subscribe(service.record)
    for i in range(5):
        hub.publish("key.topup", "admin", keyMasked="pg_abc1…9f3e", n=i)
    service.tick(T0)
    assert audit_log.count(AuditFilter()) == 3
    for i in range(5):
        hub.publish("key.topup", "admin", n=i)
    service.tick(T0 + 30)  # within the interval: nothing pruned yet
    assert audit_log.count(AuditFilter()) == 8
    service.tick(T0 + 61)
    assert audit_log.count(AuditFilter()) == 3


def test_a_burst_of_events_prunes_without_waiting_for_the_interval(audit_log: AuditLog) -> None:
    service = AuditService(audit_log, max_entries=10, prune_every=3600.0, clock=lambda: T0)
    service.tick(T0)
    for i in range(BURST_SLACK + 1):
        service.record(Event("key.topup", "admin", {"i": i}, T0))
    assert audit_log.count(AuditFilter()) == 10


def test_stats_report_categories_and_the_retention_settings(audit_log: AuditLog) -> None:
    service = AuditService(audit_log, max_entries=500, max_age_days=7)
    service.record(Event("key.created", "admin", {}, T0))
    service.record(Event("admin.auth_failed", "anonymous", {}, T0 + 1))
    stats = service.stats()
    assert stats["totalEvents"] == 2 and stats["byCategory"]["access_control"] == 1
    assert stats["byCategory"]["security"] == 1 and set(stats["byCategory"]) == set(CATEGORIES)
    assert stats["retention"] == {
        "maxEntries": 500,
        "maxAgeDays": 7,
        "pruneIntervalSeconds": 60.0,
        "authFailureMaxEntries": 1000,
    }
    assert stats["oldestEvent"] == "2023-11-14T22:13:20.000Z"


@pytest.mark.parametrize(
    ("type_", "category"),
    [
        ("key.created", "access_control"),
        ("key.revoked", "access_control"),
        ("team.key_assigned", "access_control"),
        ("group.key_removed", "access_control"),
        ("oauth.token_issued", "access_control"),
        ("key.topup", "data_processing"),
        ("credits.reserved", "data_processing"),
        ("keys.exported", "data_processing"),
        ("billing.refund", "data_processing"),
        ("maintenance.enabled", "config_change"),
        ("team.created", "config_change"),
        ("plan.deleted", "config_change"),
        ("template.updated", "config_change"),
        ("key.quota_updated", "config_change"),
        ("admin.auth_failed", "security"),
        ("admin_key.created", "security"),
        ("key.rotated", "security"),
        ("key.suspended", "security"),
        ("alert.fired", "security"),
    ],
)
def test_known_event_types_fall_in_their_compliance_category(type_: str, category: str) -> None:
    assert category_of(type_) == category


def test_messages_name_the_subject_of_the_event() -> None:
    assert message_of("key.created", {"name": "prod", "keyMasked": "pg_x"}) == "Key created: prod"
    assert message_of("key.topup", {"keyMasked": "pg_abc1…9f3e"}) == "Key topup: pg_abc1…9f3e"
    assert message_of("maintenance.disabled", {}) == "Maintenance disabled"


def test_csv_cells_that_look_like_formulas_are_made_text() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("\rx") == "' x" and csv_cell("  =1") == "'  =1"
    assert csv_cell("plain") == "plain" and csv_cell(5) == 5
    out = to_csv([{"id": 1, "actor": "=cmd", "metadata": {"a": 1}}], ("id", "actor", "metadata"))
    assert out.splitlines() == ["id,actor,metadata", '1,\'=cmd,"{""a"":1}"']


def test_entries_about_a_key_are_found_by_any_masked_key_field(audit_log: AuditLog) -> None:
    audit_log.append(T0, "key.created", "admin", {"keyMasked": "pg_abc1…9f3e"})
    audit_log.append(T0 + 1, "key.rotated", "admin", {"oldKeyMasked": "pg_abc1…9f3e", "newKeyMasked": "pg_new1…0000"})
    audit_log.append(T0 + 2, "key.created", "admin", {"keyMasked": "pgXabc1…9f3e", "name": "pg_abc1…9f3e"})
    assert [e.type for e in audit_log.about_key("pg_abc1…9f3e", 10)] == ["key.rotated", "key.created"]
    assert [e.type for e in audit_log.about_key("pg_new1…0000", 10)] == ["key.rotated"]
    assert len(audit_log.about_key("pg_abc1…9f3e", 1)) == 1


def test_retention_by_count_keeps_traffic_and_admin_history_apart(audit_log: AuditLog) -> None:
    audit_log.append(T0, "key.created", "admin", {"i": 0})
    for i in range(30):
        audit_log.append(T0 + 1 + i, "gate.allow", "pg_abc…1234", {"i": i})
    audit_log.append(T0 + 40, "key.topup", "admin", {"i": 1})
    audit_log.prune(T0 + 50, max_entries=5, max_age_seconds=DAY)
    kept = audit_log.query(AuditFilter(), 100)
    assert [e.type for e in kept if not e.type.startswith("gate.")] == ["key.topup", "key.created"]
    assert [e.data["i"] for e in kept if e.type == "gate.allow"] == [29, 28, 27, 26, 25]


def test_a_batch_keeps_the_ids_the_bus_gave_its_events(audit_log: AuditLog) -> None:
    service = AuditService(audit_log)
    service.record_batch([Event("key.created", "admin", {}, T0, 501), Event("gate.deny", "k", {}, T0, 502)])
    assert [e.id for e in audit_log.query(AuditFilter(), 10)] == [502, 501]
    assert audit_log.max_id() == 502


def test_gate_events_can_be_kept_out_of_the_audit_log(audit_log: AuditLog) -> None:
    service = AuditService(audit_log, gate_events=False)
    service.record_batch(
        [
            Event("gate.allow", "k", {}, T0, 1),
            Event("key.created", "admin", {}, T0, 2),
            Event("gate.deny", "k", {}, T0, 3),
        ]
    )
    assert [e.type for e in audit_log.query(AuditFilter(), 10)] == ["key.created"]


def test_traffic_is_trimmed_to_the_count_limit_as_it_arrives_without_touching_admin_rows(audit_log: AuditLog) -> None:
    service = AuditService(audit_log, max_entries=100, prune_every=3600.0, clock=lambda: T0)
    service.record_batch([Event("key.created", "admin", {}, T0, 1)])
    next_id = 2
    for _ in range(10):  # 10 batches of 50 calls: 500 traffic rows in all
        service.record_batch([Event("gate.allow", "k", {}, T0, i) for i in range(next_id, next_id + 50)])
        next_id += 50
        kept = audit_log.count(AuditFilter(types=("gate.allow",)))
        assert kept <= 100 + TRAFFIC_SLACK
    ids = [e.id for e in audit_log.query(AuditFilter(types=("gate.allow",)), 1000)]
    assert ids[0] == next_id - 1 and len(ids) >= 100  # the newest are kept
    assert [e.type for e in audit_log.query(AuditFilter(types=("key.created",)), 10)] == ["key.created"]
