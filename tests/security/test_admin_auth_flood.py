"""Issue 11 item 7: a stranger with wrong admin keys can neither wipe the audit log nor flood it.

Failed authentications have their own retention budget (`auditAuthFailureMaxEntries`) that never
prunes other entries, and an address over `authFailureLimit` failures a minute gets 429 on every
admin route (a correct key included) until its window ends, with one `admin.auth_throttled` entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paygate.admin.auth_throttle import AuthThrottle, address_key
from paygate.audit.service import AuditService
from paygate.events.hub import Event
from paygate.store.audit_log import AuditFilter
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until, write_config

T0 = 1_700_000_000.0
LIMIT = 5


# --- retention: failed authentications have a budget of their own ---------------------------------------


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def test_10500_failed_authentications_leave_every_admin_entry(store: SQLiteStore) -> None:
    audit = AuditService(store.audit, max_entries=10_000, max_auth_failures=1000, clock=lambda: T0)
    admin = [Event("key.created", "admin", {"name": f"k{i}"}, T0 + i, i + 1) for i in range(50)]
    audit.record_batch(admin)
    next_id = 51
    for _ in range(0, 10_500, 500):  # as the bus delivers them: in batches, pruning as bursts pass
        audit.record_batch(
            [Event("admin.auth_failed", "anonymous", {"ip": "10.0.0.9"}, T0 + 100, next_id + i) for i in range(500)]
        )
        next_id += 500
    audit.tick(T0 + 3600)
    kept_admin = store.audit.count(AuditFilter(types=("key.created",)))
    kept_failures = store.audit.count(AuditFilter(types=("admin.auth_failed",)))
    assert kept_admin == 50
    assert kept_failures == 1000


def test_other_pruning_never_counts_failed_authentications(store: SQLiteStore) -> None:
    log = store.audit
    failures = [log.append(T0 + i, "admin.auth_failed", "anonymous", {}) for i in range(8)]
    others = [log.append(T0 + 10 + i, "key.topup", "admin", {}) for i in range(6)]
    throttled = log.append(T0 + 20, "admin.auth_throttled", "anonymous", {})
    assert log.prune(T0 + 30, max_entries=5, max_age_seconds=86_400, max_auth_failures=3) == 1 + 6
    left = {e.id for e in log.query(AuditFilter(), 100)}
    assert left == set(others[-5:]) | {throttled, *failures[-2:]}


# --- the throttle itself ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_refuses_an_address_over_the_limit_until_its_window_ends() -> None:
    clock = Clock()
    t = AuthThrottle(3, clock=clock)
    for _ in range(3):
        assert t.refuse("10.0.0.1") is None
        t.failed("10.0.0.1")
    assert t.refuse("10.0.0.1") == (60, True)
    clock.now += 59.2
    assert t.refuse("10.0.0.1") == (1, False)
    assert t.refuse("10.0.0.2") is None  # another address is not affected
    clock.now += 1
    assert t.refuse("10.0.0.1") is None
    assert (t.failures, t.throttled) == (3, 2)


def test_no_limit_never_refuses() -> None:
    t = AuthThrottle(0)
    for _ in range(1000):
        t.failed("10.0.0.1")
    assert t.refuse("10.0.0.1") is None and len(t) == 0 and t.failures == 1000


def test_the_address_table_is_bounded_and_evicts_the_oldest() -> None:
    clock = Clock()
    t = AuthThrottle(2, max_addresses=100, clock=clock)
    t.failed("10.0.0.1")
    t.failed("10.0.0.1")
    for i in range(5000):
        clock.now += 0.001
        t.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(t) == 100
    assert t.refuse("10.0.0.1") is None  # the oldest window went first


def test_ipv6_addresses_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key(None) == "unknown"


# --- through the app ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("throttle"), {"authFailureLimit": LIMIT})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gateway:
        yield gateway


def test_an_address_over_the_limit_gets_429_even_with_the_right_key_until_the_window_ends(
    gw: InProcessGateway,
) -> None:
    assert gw.rt is not None
    throttle = gw.rt.guard.throttle
    clock = Clock()
    throttle.clock = clock
    wrong = {"X-Admin-Key": "admin_" + "0" * 48}
    for _ in range(LIMIT):
        assert gw.client.get("/keys", headers=wrong).status_code == 401
    for headers in (wrong, {}, gw.admin(), wrong):
        resp = gw.client.get("/keys", headers=headers)
        assert resp.status_code == 429, resp.text
        body = resp.json()
        assert set(body) >= {"error", "requestId"} and body["requestId"] == resp.headers["x-request-id"]
        assert resp.headers["retry-after"] == "60"
    for _ in range(50):
        assert gw.client.post("/keys", headers=wrong, json={}).status_code == 429
    wait_until(lambda: gw.events("admin.auth_throttled"))
    gw.call_in_loop(gw.rt.events.flush)
    assert len(gw.events("admin.auth_failed")) == LIMIT
    [throttled] = gw.events("admin.auth_throttled")
    assert throttled["data"]["ip"] == "127.0.0.1" and throttled["data"]["limit"] == LIMIT
    metrics = gw.client.get("/metrics").text
    assert "paygate_admin_auth_throttled_total 54.0" in metrics
    assert f"paygate_admin_auth_failures_total {LIMIT}.0" in metrics
    audit = gw.client.get("/audit/stats", headers=gw.admin())
    assert audit.status_code == 429  # still this address's window
    clock.now += 61
    assert gw.client.get("/keys", headers=gw.admin()).status_code == 200
    stats = gw.client.get("/audit/stats", headers=gw.admin()).json()
    assert stats["byType"]["admin.auth_failed"] == LIMIT and stats["byType"]["admin.auth_throttled"] == 1


def test_trusted_proxies_count_each_forwarded_client_apart(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"authFailureLimit": 2, "trustedProxies": ["127.0.0.1"]})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        wrong = {"X-Admin-Key": "nope"}
        for _ in range(2):
            assert gw.client.get("/keys", headers={**wrong, "X-Forwarded-For": "203.0.113.7"}).status_code == 401
        assert gw.client.get("/keys", headers={**wrong, "X-Forwarded-For": "203.0.113.7"}).status_code == 429
        assert gw.client.get("/keys", headers={**wrong, "X-Forwarded-For": "203.0.113.8"}).status_code == 401
        ok = {**gw.admin(), "X-Forwarded-For": "203.0.113.8"}
        assert gw.client.get("/keys", headers=ok).status_code == 200
