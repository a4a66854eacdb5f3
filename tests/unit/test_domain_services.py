"""The service methods routers now call (the operation, its refusal kind and its event), without HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from paygate.admin.admin_keys import AdminKeys
from paygate.admin.auth import AdminAuth, AdminKeyConflict, AdminKeyInvalid, AdminKeyNotFound
from paygate.admin.config_view import ConfigView
from paygate.admin.maintenance import Maintenance
from paygate.alerts.rules import Rule, RuleError
from paygate.alerts.service import AlertService
from paygate.config import Settings
from paygate.core.domain_errors import Conflict, Invalid, NotFound, TooMany, Unavailable
from paygate.events.hub import Event, EventHub
from paygate.events.stream import EventStreamHub
from paygate.serving import ServingState
from paygate.store.sqlite import SQLiteStore


def recorded(hub: EventHub) -> list[Event]:
    seen: list[Event] = []
    hub.subscribe(seen.append)
    return seen


def test_setting_alert_rules_publishes_who_set_them_and_a_bad_set_is_invalid_and_changes_nothing(
    store: SQLiteStore,
) -> None:
    hub = EventHub()
    seen = recorded(hub)
    service = AlertService(store, hub)
    rules = service.set_rules([Rule("credits_low", 5), Rule("spending_threshold", 80)], "admin")
    assert [r.type for r in rules] == ["credits_low", "spending_threshold"] and service.source == "api"
    assert [(e.type, e.actor, e.data) for e in seen] == [
        ("admin.alerts_configured", "admin", {"ruleCount": 2, "types": ["credits_low", "spending_threshold"]})
    ]
    with pytest.raises(RuleError) as refused:
        service.set_rules([Rule("quota_warning", 120)], "admin")
    assert isinstance(refused.value, Invalid) and refused.value.message.startswith("Invalid request: rules.0.")
    assert len(service.rules) == 2 and len(seen) == 1


def test_pending_alerts_are_read_after_a_flush_and_the_sweep_runs_at_most_once_a_minute(store: SQLiteStore) -> None:
    hub = EventHub()
    service = AlertService(store, hub, [Rule("credits_low", 50)])
    hub.subscribe_batch(service.on_batch)
    hub.emit("gate.allow", "system", {"tool": "echo"}, key_hash="h")  # deferred: not delivered yet
    alerts, dropped = service.take_pending()
    assert [a.type for a in alerts] == ["credits_low"] and dropped == 0
    swept: list[float] = []
    service.sweep = swept.append  # type: ignore[method-assign]
    for now in (100.0, 130.0, 160.0, 161.0):
        service.tick(now)
    assert swept == [100.0, 160.0]


def test_admin_keys_announce_creation_and_revocation_with_masked_keys_only(store: SQLiteStore) -> None:
    hub = EventHub()
    seen = recorded(hub)
    auth = AdminAuth(store, "admin_" + "b" * 40, None)
    keys = AdminKeys(auth, hub)
    raw, doc = keys.create("ops", "viewer", "admin")
    boss = auth.identify("admin_" + "b" * 40)
    assert boss is not None
    keys.revoke(doc["keyMasked"], boss)
    assert [(e.type, e.actor, e.data["keyMasked"]) for e in seen] == [
        ("admin_key.created", "admin", doc["keyMasked"]),
        ("admin_key.revoked", "admin", doc["keyMasked"]),
    ]
    assert all(raw not in str(e.data) for e in seen)
    with pytest.raises(AdminKeyConflict):
        keys.revoke(raw, boss)
    with pytest.raises(AdminKeyNotFound) as missing:
        keys.revoke("ak_nope", boss)
    with pytest.raises(AdminKeyInvalid):
        keys.create("x", "root", "admin")
    assert isinstance(missing.value, NotFound) and len(seen) == 2


def test_the_config_export_is_masked_and_audited() -> None:
    hub = EventHub()
    seen = recorded(hub)
    view = ConfigView(Settings(server_command="node", webhook_secret="s3cret"), hub).export("admin:ops")
    assert view["webhookSecret"] == "***" and view["serverCommand"] == "***"
    assert [(e.type, e.actor, e.data) for e in seen] == [("config.export", "admin:ops", {"fields": len(view)})]


@dataclass
class FakeBackend:
    ready: bool = True
    tools: Any = ()


def test_serving_state_is_ready_only_when_the_backend_is_up_and_neither_draining_nor_in_maintenance(
    store: SQLiteStore,
) -> None:
    backend = FakeBackend()
    maintenance = Maintenance(store, EventHub())
    serving = ServingState(backend, maintenance, started=100.0)  # type: ignore[arg-type]
    assert serving.ready and serving.status == "healthy" and serving.uptime(142.9) == 42
    maintenance.set(True, None, "admin")
    assert not serving.ready and serving.status == "maintenance"
    serving.drain()
    assert serving.status == "draining"
    maintenance.set(False, None, "admin")
    assert not serving.ready
    assert not ServingState(FakeBackend(ready=False), maintenance).ready  # type: ignore[arg-type]


def test_a_full_or_closing_stream_hub_refuses_with_its_domain_kind() -> None:
    hub = EventStreamHub(max_streams=1)
    hub.open()
    with pytest.raises(TooMany, match=r"^Too many admin event streams: at most 1 "):
        hub.open()
    hub.shut()
    with pytest.raises(Unavailable, match=r"^The gateway is shutting down$"):
        hub.open()
    assert not isinstance(TooMany("x"), Conflict)
