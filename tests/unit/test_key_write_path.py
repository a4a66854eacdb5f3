"""One write path for key records: every kind of change goes through `KeyService.save`, so a write the
database refuses leaves nothing behind — not in the live record the gate reads, not in the database,
not in the cached effective policy, and no event announces it.

Each case runs an operation over a real store on a file, a real KeyService and an EventHub, with
`store.update_key` failing once; the control runs it without the failure and sees it change the key.
"""

from __future__ import annotations

import copy
import dataclasses
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paygate.admin.backup import BackupService, Mode, checksum
from paygate.billing.service import BillingService
from paygate.compose.doc_checks import restore_doc_checks
from paygate.core.pricing import PriceBook
from paygate.core.records import KeyRecord
from paygate.events.hub import Event, EventHub
from paygate.events.types import EVENT_TYPES
from paygate.keys.auto_topup import AutoTopup
from paygate.keys.expiry import ExpiryScanner, ScannerConfig
from paygate.keys.import_export import KeyImportExport
from paygate.keys.meta import KeyMeta
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.policy.key_policy import KeyPolicy
from paygate.policy.memberships import GROUPS, TEAMS, MembershipService
from paygate.policy.plans import PlanService
from paygate.store.sqlite import SQLiteStore

ADMIN = "admin:test"


@dataclass
class World:
    path: Path
    store: SQLiteStore
    hub: EventHub
    keys: KeyService
    raw: str  # a live key with auto-topup on (threshold 1, no credits): what most cases change
    record: KeyRecord
    paused: KeyRecord  # suspended, in a group
    expiring: KeyRecord  # expires within the hour
    group_id: str
    team_id: str
    seen: list[str]

    def snapshot(self) -> list[dict[str, Any]]:
        return sorted((dataclasses.asdict(r) for r in self.store.list_keys()), key=lambda r: str(r["key_hash"]))

    def reopened(self) -> list[dict[str, Any]]:
        self.store.close()
        fresh = SQLiteStore(self.path)
        fresh.open()
        try:
            return sorted((dataclasses.asdict(r) for r in fresh.list_keys()), key=lambda r: str(r["key_hash"]))
        finally:
            fresh.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.open()
    hub = EventHub(known=EVENT_TYPES)
    keys = KeyService(store, hub.publish)
    new = keys.create("main", 0)
    paused = keys.create("paused", 5).record
    keys.suspend(paused, "checking")
    expiring = keys.create("soon", 5, expires_at=time.time() + 1800).record
    PlanService(keys).upsert("gold", {"rateLimitPerMin": 5}, ADMIN)
    group_id = MembershipService(keys, GROUPS).create({"name": "g"}, ADMIN)["id"]
    MembershipService(keys, GROUPS).assign(paused, group_id, ADMIN)
    team_id = MembershipService(keys, TEAMS).create({"name": "t"}, ADMIN)["id"]
    AutoTopup(store, hub.publish, keys).configure(new.record, 1, 2, 3, ADMIN)
    seen: list[str] = []
    hub.subscribe(lambda event: seen.append(event.type))
    w = World(path, store, hub, keys, new.raw, new.record, paused, expiring, group_id, team_id, seen)
    yield w
    store.close()  # a no-op when a case closed it already


def _backup_with(w: World, change: Callable[[list[dict[str, Any]]], None], mode: Mode) -> None:
    service = BackupService(w.keys, restore_doc_checks(False))
    backup = service.snapshot()
    data = copy.deepcopy(backup["data"])
    change(data["keys"])
    service.restore({**backup, "data": data, "checksum": checksum(data)}, mode, set(), ADMIN)


def _renamed(keys: list[dict[str, Any]], w: World) -> None:
    next(k for k in keys if k["keyHash"] == w.record.key_hash)["name"] = "restored"


def _import_overwrite(w: World) -> None:
    r = w.record
    entry = {
        "key_hash": r.key_hash,
        "key_masked": r.masked,
        "name": "imported",
        "credits": r.credits,
        "notes": [],
        "extra": {},
    }
    KeyImportExport(w.keys).import_keys([entry], [[]], "overwrite", ADMIN)


# name -> the operation (each changes at least one key record through one write)
CHANGES: dict[str, Callable[[World], object]] = {
    "acl": lambda w: KeyPolicy(w.keys).set_acl(w.raw, ["search"], ["delete"], ADMIN),
    "expiry": lambda w: KeyPolicy(w.keys).set_expiry(w.raw, time.time() + 600, ADMIN),
    "ip allowlist": lambda w: KeyPolicy(w.keys).set_ips(w.raw, ["10.0.0.1"], ADMIN),
    "countries": lambda w: KeyPolicy(w.keys).set_countries(w.raw, ["US"], ["FR"], ADMIN),
    "countries cleared": lambda w: KeyPolicy(w.keys).set_countries(w.raw, None, ["FR"], ADMIN),
    "spending limit": lambda w: KeyPolicy(w.keys).set_spending_limit(w.raw, 50, ADMIN),
    "quota": lambda w: KeyPolicy(w.keys).set_quota(w.raw, {"dailyCallLimit": 5}, ADMIN),
    "suspend": lambda w: w.keys.suspend(w.record, "why", ADMIN),
    "resume": lambda w: w.keys.resume(w.paused, ADMIN),
    "revoke": lambda w: w.keys.revoke(w.raw, ADMIN),
    "alias": lambda w: w.keys.set_alias(w.record, "nick", ADMIN),
    "note": lambda w: KeyMeta(w.keys).add_note(w.record, "hello", ADMIN),
    "tags": lambda w: KeyMeta(w.keys).set_tags(w.raw, {"env": "prod"}, ADMIN),
    "auto-topup config": lambda w: AutoTopup(w.store, w.hub.publish, w.keys).configure(w.record, 5, 10, 1, ADMIN),
    "auto-topup off": lambda w: AutoTopup(w.store, w.hub.publish, w.keys).disable(w.record, ADMIN),
    "auto-topup refill": lambda w: AutoTopup(w.store, w.hub.publish, w.keys).maybe_topup(
        w.record.key_hash, time.time()
    ),
    "plan": lambda w: PlanService(w.keys).assign(w.record, "gold", ADMIN),
    "group join": lambda w: MembershipService(w.keys, GROUPS).assign(w.record, w.group_id, ADMIN),
    "group leave": lambda w: MembershipService(w.keys, GROUPS).remove(w.paused, ADMIN),
    "group delete": lambda w: MembershipService(w.keys, GROUPS).delete(w.group_id, ADMIN),
    "team join": lambda w: MembershipService(w.keys, TEAMS).assign(w.record, w.team_id, ADMIN),
    "expiry scan": lambda w: ExpiryScanner(w.store, w.hub.publish, ScannerConfig(), w.keys).scan(time.time()),
    "import overwrite": _import_overwrite,
    "restore overwrite": lambda w: _backup_with(w, lambda keys: _renamed(keys, w), "overwrite"),
    "restore full": lambda w: _backup_with(
        w, lambda keys: keys.remove(next(k for k in keys if k["keyHash"] == w.paused.key_hash)), "full"
    ),
}


def fail_next_write(monkeypatch: pytest.MonkeyPatch, store: SQLiteStore) -> list[str]:
    """`store.update_key` raises once (as SQLITE_BUSY after the timeout would), then works again."""
    real = store.update_key
    attempts: list[str] = []

    def broken(record: KeyRecord) -> None:
        attempts.append(record.key_hash)
        monkeypatch.setattr(store, "update_key", real)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "update_key", broken)
    return attempts


def _billing(store: SQLiteStore) -> BillingService:
    return BillingService(store, PriceBook(1, 100, {}), Metrics(), shadow=False, refund_on_failure=False)


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_refused_write_leaves_the_key_as_it_was(world: World, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    billing = _billing(world.store)
    policies = {r.key_hash: billing.policy_for(r) for r in world.store.list_keys()}
    generation = world.store.generation
    before = world.snapshot()
    attempts = fail_next_write(monkeypatch, world.store)

    with pytest.raises(sqlite3.OperationalError):
        CHANGES[change](world)

    assert attempts, "the operation never wrote a key record"
    assert world.snapshot() == before  # the live records, which the gate reads
    assert world.store.generation == generation
    assert all(billing.policy_for(r) is policies[r.key_hash] for r in world.store.list_keys())
    assert [t for t in world.seen if t.startswith(("key.", "keys.", "group.", "team.", "plan.", "backup."))] == []
    assert world.reopened() == before  # and the database


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_same_change_without_the_failure_takes_effect_and_is_announced(world: World, change: str) -> None:
    before = world.snapshot()
    generation = world.store.generation

    CHANGES[change](world)

    after = world.snapshot()
    assert after != before and world.store.generation > generation
    assert world.seen, "nothing was announced"
    assert world.reopened() == after


def test_an_event_carries_what_was_written(world: World) -> None:
    events: list[Event] = []
    world.hub.subscribe(events.append)
    KeyPolicy(world.keys).set_acl(world.raw, ["search"], None, ADMIN)
    assert [(e.type, e.actor, e.data) for e in events] == [
        ("key.acl_updated", ADMIN, {"keyMasked": world.record.masked, "allowedTools": ["search"], "deniedTools": []})
    ]
