"""`paygate-mcp migrate-store`, the real CLI, between a real gateway's SQLite state file and a real redis-server:
into Redis (a gateway there serves the same keys, balances, ledgers, usage, documents and admin keys, and paid
calls go on), back into a new SQLite file (the same again), and every refusal (non-empty destination, a state
file in use, a bad URL or path, two of a kind), each writing nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from paygate.core.records import LedgerEntry
from paygate.store.sqlite import SQLiteStore
from tests.redis_server import RedisServer, running_redis
from tests.support import CLI, ECHO_COMMAND, Gateway, free_port, start_gateway, wait_until

ADMIN = "admin-key-for-the-migration-test"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as s:
        yield s


def migrate(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([CLI, "migrate-store", *args, "--json"], capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def keys_under(server: RedisServer, prefix: str) -> int:
    with redis.Redis.from_url(server.url) as client:
        return len(list(client.scan_iter(match="{" + prefix + "}:*")))


def snapshot(gw: Gateway, keys: list[str]) -> dict[str, Any]:
    """What the API shows: balances, each key's ledger, the usage log, groups, teams."""
    ledgers = {}
    for key in keys:
        history = gw.client.get("/balance/history", params={"limit": 100}, headers={"X-API-Key": key}).json()
        ledgers[key] = history["entries"]
    return {
        "balances": {key: gw.balance(key) for key in keys},
        # what today's and this month's quota counters say (Redis keeps its own: seeded by the move)
        "quotas": {key: _used(gw.client.get("/balance", headers={"X-API-Key": key}).json()) for key in keys},
        "ledgers": ledgers,
        "usage": gw.client.get("/usage", headers=gw.admin()).json()["events"],
        "groups": gw.client.get("/groups", headers=gw.admin()).json(),
        "teams": gw.client.get("/teams", headers=gw.admin()).json()["teams"],
    }


def _used(balance: dict[str, Any]) -> list[int]:
    usage = balance["quotaUsage"]
    return [usage[p][m]["used"] for p in ("daily", "monthly") for m in ("calls", "credits")]


def build_state(path: Path) -> tuple[list[str], str, dict[str, Any]]:
    """A gateway's real activity on a state file: (live keys, an admin key made through the API, the snapshot)."""
    dead_receiver = f"http://127.0.0.1:{free_port()}/hook"  # webhooks pile up in the outbox
    gw = start_gateway(
        "--server",
        ECHO_COMMAND,
        "--state-file",
        str(path),
        "--refund-on-failure",
        "--rate-limit",
        "0",
        "--webhook-url",
        dead_receiver,
        "--webhook-allow-private",
        admin_key=ADMIN,
    )
    try:
        a, b, c, poor = gw.create_key(100), gw.create_key(50), gw.create_key(20), gw.create_key(1)
        for i in range(3):
            assert "result" in gw.call_tool("echo", {"text": f"hi {i}"}, a)
        assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, b)
        assert "result" in gw.call_tool("echo", {"text": "c"}, c)
        assert "result" in gw.call_tool("echo", {"text": "last credit"}, poor)
        assert "error" in gw.call_tool("echo", {"text": "denied"}, poor)  # a denial: a usage row, no charge
        assert gw.call_tool("fail", {"reason": "boom"}, a)["result"]["isError"] is True  # charged, then refunded
        assert gw.client.post("/topup", headers=gw.admin(), json={"key": a, "credits": 25}).status_code == 200
        moved = gw.client.post("/keys/transfer", headers=gw.admin(), json={"from": a, "to": b, "credits": 10})
        assert moved.status_code == 200, moved.text
        rotated = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": c})
        assert rotated.status_code == 200, rotated.text
        new_c = rotated.json()["newKey"]
        assert "result" in gw.call_tool("echo", {"text": "after rotation"}, new_c)
        assert gw.client.post("/groups", headers=gw.admin(), json={"name": "gold"}).status_code == 201
        assert gw.client.post("/teams", headers=gw.admin(), json={"name": "ops"}).status_code == 201
        made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "ops", "role": "admin"})
        assert made.status_code == 201, made.text
        keys = [a, b, new_c, poor]
        shown = snapshot(gw, keys)
        assert len(shown["usage"]) == 9 and len(shown["ledgers"][a]) == 8  # create, 4 charges, refund, topup, transfer
        return keys, made.json()["key"], shown
    finally:
        assert gw.stop() == 0


def ledgers_of(path: Path) -> tuple[dict[str, tuple[int, int, int]], dict[str, list[LedgerEntry]], int]:
    store = SQLiteStore(path)
    store.open()
    try:
        money = {r.key_hash: (r.credits, r.total_spent, r.total_calls) for r in store.list_keys()}
        ledgers = {h: store.ledger(h) for h in money}
        usage = int(store.db.execute("SELECT COUNT(*) FROM usage").fetchone()[0])
        return money, ledgers, usage
    finally:
        store.close()


def test_sqlite_to_redis_and_back(server: RedisServer, tmp_path: Path) -> None:
    original = tmp_path / "paygate.db"
    keys, ops_admin, before = build_state(original)

    code, report = migrate("--from", str(original), "--to", server.url, "--redis-prefix", "moved")
    assert code == 0, report
    copied = report["copied"]
    assert report["verified"] is True and report["mismatches"] == []
    assert copied["keys"] == 5 and copied["rotated"] == 1  # four live keys and the rotated-away one
    assert copied["refundMarks"] == 1 and copied["usage"] == len(before["usage"])
    assert copied["documents"] >= 3 and copied["audit"] > 0  # a group, a team, an admin key, …
    assert copied["webhookQueued"] + copied["webhookBatches"] > 0

    # a gateway on Redis: the same state, the bootstrap admin key (no --admin-key given) and the API-made one
    gw = start_gateway("--server", ECHO_COMMAND, "--redis-url", server.url, "--redis-prefix", "moved", state_file=None)
    gw.admin_key_override = ADMIN
    try:
        assert snapshot(gw, keys) == before
        assert gw.client.get("/usage", headers={"X-Admin-Key": ops_admin}).status_code == 200
        with redis.Redis.from_url(server.url) as client:  # the copied webhooks' partition was adopted
            wait_until(lambda: b"migrated" not in client.smembers("{moved}:outbox-owners"), what="outbox adopted")
        a = keys[0]
        assert "result" in gw.call_tool("echo", {"text": "on redis"}, a)
        assert gw.balance(a) == before["balances"][a] - 1
        wait_until(
            lambda: len(gw.client.get("/usage", headers=gw.admin()).json()["events"]) == len(before["usage"]) + 1
        )
    finally:
        assert gw.stop() == 0

    # and back into a new SQLite file: the original, plus the one call made on Redis
    back = tmp_path / "back.db"
    code, report = migrate("--from", server.url, "--redis-prefix", "moved", "--to", str(back))
    assert code == 0 and report["verified"] is True, report
    money_was, ledgers_was, usage_was = ledgers_of(original)
    money_now, ledgers_now, usage_now = ledgers_of(back)
    assert usage_now == usage_was + 1
    changed = [h for h in money_was if money_now[h] != money_was[h]]
    assert len(changed) == 1 and set(money_now) == set(money_was)
    (h,) = changed
    assert money_now[h] == (money_was[h][0] - 1, money_was[h][1] + 1, money_was[h][2] + 1)
    for key_hash, entries in ledgers_was.items():
        extra = [(e.delta, e.kind) for e in ledgers_now[key_hash][len(entries) :]]
        assert ledgers_now[key_hash][: len(entries)] == entries
        assert extra == ([(-1, "charge")] if key_hash == h else [])


def test_dry_run_counts_and_writes_nothing(server: RedisServer, tmp_path: Path) -> None:
    state = tmp_path / "dry.db"
    store = SQLiteStore(state)
    store.open()
    store.close()
    code, report = migrate("--from", str(state), "--to", server.url, "--redis-prefix", "dry", "--dry-run")
    assert code == 0 and report["dryRun"] is True and report["found"]["keys"] == 0, report
    assert keys_under(server, "dry") == 0


def test_a_destination_that_is_not_empty_is_refused(server: RedisServer, tmp_path: Path) -> None:
    state = tmp_path / "full.db"
    gw = start_gateway("--server", ECHO_COMMAND, "--state-file", str(state), admin_key=ADMIN)
    gw.create_key(10)
    assert gw.stop() == 0
    with redis.Redis.from_url(server.url) as client:
        client.set("{taken}:something", "1")
    code, report = migrate("--from", str(state), "--to", server.url, "--redis-prefix", "taken")
    assert code == 1 and "not empty" in report["error"], report
    assert keys_under(server, "taken") == 1

    # the other way: into a SQLite file that has keys
    code, report = migrate("--from", str(state), "--to", server.url, "--redis-prefix", "full")
    assert code == 0, report
    before = state.read_bytes()
    code, report = migrate("--from", server.url, "--redis-prefix", "full", "--to", str(state))
    assert code == 1 and "not empty (1 keys" in report["error"], report
    code, report = migrate("--from", server.url, "--redis-prefix", "full", "--to", str(state), "--dry-run")
    assert code == 1 and "not empty (1 keys" in report["error"], report
    assert state.read_bytes() == before
    fresh = tmp_path / "fresh.db"  # a dry run into a file not there yet counts, and creates nothing
    code, report = migrate("--from", server.url, "--redis-prefix", "full", "--to", str(fresh), "--dry-run")
    assert code == 0 and report["found"]["keys"] == 1 and not fresh.exists(), report


def test_a_state_file_in_use_is_refused(server: RedisServer, tmp_path: Path) -> None:
    state = tmp_path / "busy.db"
    gw = start_gateway("--server", ECHO_COMMAND, "--state-file", str(state), admin_key=ADMIN)
    try:
        gw.create_key(10)
        code, report = migrate("--from", str(state), "--to", server.url, "--redis-prefix", "busy")
        assert code == 1 and "in use by process" in report["error"], report
        assert keys_under(server, "busy") == 0
    finally:
        assert gw.stop() == 0


def test_bad_urls_paths_and_two_of_a_kind_are_refused(server: RedisServer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    other = tmp_path / "other.db"
    cases = [
        (("--from", str(missing), "--to", server.url), "no SQLite state file"),
        (("--from", "http://127.0.0.1/x", "--to", str(other)), "not a redis://"),
        (("--from", str(other), "--to", f"redis://127.0.0.1:{free_port()}/0"), "no SQLite state file"),
        (("--from", server.url, "--to", f"redis://127.0.0.1:{free_port()}/0"), "both Redis"),
        (("--from", str(missing), "--to", str(other)), "both SQLite"),
        (("--from", server.url, "--redis-prefix", "nothing-here", "--to", str(other)), "nothing under prefix"),
        (("--from", f"redis://127.0.0.1:{free_port()}/0", "--to", str(other)), "redis unreachable"),
        (("--from", server.url, "--redis-prefix", "bad:prefix", "--to", str(other)), "plain word"),
    ]
    for args, message in cases:
        code, report = migrate(*args)
        assert code == 1 and message in report["error"], (args, report)
    assert not missing.exists() and not other.exists()


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, but the file's own charge-journal bookkeeping."""
    store = SQLiteStore(path)
    store.open()
    try:
        tables = {
            "keys": "key_hash",
            "ledger": "id",
            "usage": "id",
            "docs": "kind, id",
            "audit": "id",
            "webhook_outbox": "id",
            "webhook_batches": "id",
            "webhook_dead_letters": "id",
        }
        rows = {t: [tuple(r) for r in store.db.execute(f"SELECT * FROM {t} ORDER BY {o}")] for t, o in tables.items()}
        rows["meta"] = [
            tuple(r) for r in store.db.execute("SELECT * FROM meta WHERE name NOT IN ('db_id', 'journal_seq')")
        ]
        return rows
    finally:
        store.close()


def test_a_store_larger_than_a_chunk_round_trips_row_for_row(server: RedisServer, tmp_path: Path) -> None:
    """Ledger, usage, audit and outbox beyond one chunk (1000), so every cursor moves on; SQLite -> Redis ->
    SQLite gives back every row as it was, and Redis's usage sums (refund marks) agree with SQLite's."""
    from paygate.core.records import KeyRecord, UsageEvent
    from paygate.store.redis_backend.store import RedisStore

    original, back = tmp_path / "big.db", tmp_path / "big-back.db"
    store = SQLiteStore(original)
    store.open()
    t0 = 1_700_000_000.123456789
    try:
        for i in range(3):
            store.create_key(KeyRecord(f"h{i}", "pg_", f"000{i}", f"key {i}", 5000, t0, alias=f"alias{i}"))
        for n in range(1300):
            h = f"h{n % 2}"
            event = UsageEvent(t0 + n / 7, h, f"pg_…000{n % 2}", "k", "echo", 1, True, None, "default", f"req{n}")
            assert store.charge(h, 1, event).ok
        store.record_denial(UsageEvent(t0 + 500, "h1", "pg_…0001", "k", "echo", 0, False, "insufficient_credits"))
        store.refund("h0", 1, "echo failed")
        store.transfer("h0", "h1", 7, 'memo with "quotes" and ünïcode')
        store.rekey("h2", KeyRecord("h3", "pg_", "0003", "key 2", 0, t0 + 1))
        store.doc_put("group", "grp_1", {"name": "gold", "allowedTools": ["echo"]})
        store.set_meta("admin_key_hash", "abc")
        store.audit.append_many(
            [(i, t0 + i, "gate.allow" if i % 2 else "key.topup", "admin", {"i": i}) for i in range(1, 1201)]
        )
        store.outbox.enqueue([("http://a", t0 + i, "usage", "gate.allow", json.dumps({"i": i})) for i in range(1100)])
        batch = store.outbox.form_batch("http://a", 600, b'{"batch": "\xc3\xa9"}', 600, ["gate.allow"], t0)
        store.outbox.reschedule(batch, 2, t0 + 60, "connection refused")
        dead = store.outbox.form_batch("http://a", 700, b'{"dead": 1}', 100, ["gate.allow"], t0)
        store.outbox.dead_letter(dead, 6, "HTTP 500", 500, t0 + 9)
        sums = store.usage_sums(0)
    finally:
        store.close()

    code, report = migrate("--from", str(original), "--to", server.url, "--redis-prefix", "big")
    assert code == 0 and report["verified"] is True, report
    assert report["copied"]["usage"] == 1301 and report["copied"]["audit"] == 1200
    assert report["copied"]["webhookQueued"] == 400 and report["copied"]["webhookDeadLetters"] == 1
    on_redis = RedisStore(server.url, prefix="big")
    on_redis.open()
    try:
        assert on_redis.usage_sums(0) == sums
        assert on_redis.audit.max_id() == 1200 and on_redis.audit.reserve_ids(1) == 1201
    finally:
        on_redis.close()

    code, report = migrate("--from", server.url, "--redis-prefix", "big", "--to", str(back))
    assert code == 0 and report["verified"] is True, report
    assert dump(back) == dump(original)
