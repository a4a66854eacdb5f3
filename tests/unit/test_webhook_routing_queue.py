"""Webhook payload shaping, routing (filters, per-key URLs) and the durable queue's moves."""

from __future__ import annotations

import orjson
import pytest

from paygate.config_events import WebhookFilterConfig
from paygate.core.domain_errors import Conflict
from paygate.core.keys import generate_api_key, hash_key
from paygate.events.hub import Event
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from paygate.webhooks.checks import WebhookError
from paygate.webhooks.payload import batch_body, key_prefix, shape
from paygate.webhooks.queue import WebhookQueue, health_counts
from paygate.webhooks.routing import FilterRule, Routes, config_filter_id


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def allow(masked: str, key_hash: str | None = None) -> Event:
    return Event(
        "gate.allow",
        masked,
        {"tool": "echo", "keyMasked": masked, "credits": 3, "durationMs": 1.5, "requestId": "req_1"},
        1_700_000_000.25,
        7,
        "req_1",
        key_hash,
    )


def test_gate_events_become_usage_events_without_the_key_hash() -> None:
    kind, text = shape(allow("pg_abc1…9f3e", "h" * 64), "prod")
    body = orjson.loads(text)
    assert kind == "usage" and "h" * 64 not in text
    assert body == {
        "id": 7,
        "timestamp": "2023-11-14T22:13:20.250Z",
        "apiKey": "pg_abc1…9f3e",
        "keyName": "prod",
        "tool": "echo",
        "creditsCharged": 3,
        "allowed": True,
        "denyReason": None,
        "requestId": "req_1",
        "durationMs": 1.5,
    }
    deny = Event("gate.deny", "x", {"tool": "t", "keyMasked": None, "reason": "rate_limited"}, 0.0, 8)
    assert orjson.loads(shape(deny)[1])["denyReason"] == "rate_limited"
    assert orjson.loads(shape(deny)[1])["creditsCharged"] == 0


def test_admin_events_keep_type_actor_and_metadata() -> None:
    kind, text = shape(Event("key.topup", "admin", {"keyMasked": "pg_a…b", "creditsAdded": 5}, 0.0, 9))
    assert kind == "admin"
    assert orjson.loads(text) == {
        "id": 9,
        "type": "key.topup",
        "timestamp": "1970-01-01T00:00:00.000Z",
        "actor": "admin",
        "metadata": {"keyMasked": "pg_a…b", "creditsAdded": 5},
    }


def test_a_batch_body_has_both_arrays_in_order() -> None:
    body = batch_body([("usage", '{"a":1}'), ("admin", '{"b":2}'), ("usage", '{"c":3}')])
    assert orjson.loads(body) == {"events": [{"a": 1}, {"c": 3}], "adminEvents": [{"b": 2}]}
    assert orjson.loads(batch_body([])) == {"events": [], "adminEvents": []}


def test_key_prefix_is_the_kept_part_of_a_masked_key() -> None:
    assert key_prefix("pg_abc1…9f3e") == "pg_abc1"
    assert key_prefix(None) is None and key_prefix("nomask") is None


@pytest.mark.parametrize(
    ("events", "prefixes", "type_", "prefix", "hit"),
    [
        (("*",), (), "key.created", None, True),
        (("key.created",), (), "key.created", None, True),
        (("key.created",), (), "key.revoked", None, False),
        (("usage",), (), "gate.deny", "pg_abc1", True),
        (("gate.allow",), (), "gate.allow", "pg_abc1", True),
        (("*",), ("pg_ab",), "gate.allow", "pg_abc1", True),
        (("*",), ("pg_x",), "gate.allow", "pg_abc1", False),
        (("*",), ("pg_",), "team.created", None, False),  # prefixes given: events about no key never match
    ],
)
def test_filter_matching_by_type_and_key_prefix(
    events: tuple[str, ...], prefixes: tuple[str, ...], type_: str, prefix: str | None, hit: bool
) -> None:
    rule = FilterRule("wf_1", "n", events, "https://example.com/", key_prefixes=prefixes)
    assert rule.matches(type_, prefix) is hit
    assert (
        FilterRule("wf_2", "n", events, "https://example.com/", key_prefixes=prefixes, active=False).matches(
            type_, prefix
        )
        is False
    )


def test_routes_send_to_default_matching_filters_and_the_keys_own_url(store: SQLiteStore) -> None:
    keys = KeyService(store)
    new = keys.create("a", 10)
    other = keys.create("b", 10)
    routes = Routes(store, "https://main.example.com/", None, allow_private=False)
    routes.load([WebhookFilterConfig(name="lifecycle", events=["key.created"], url="https://f.example.com/")])
    hook = routes.set_hook(hash_key(new.raw), "https://own.example.com/", "s")
    mine = allow(new.record.masked, hash_key(new.raw))
    assert routes.destinations_for(mine) == ["default", hook.id]
    assert routes.destinations_for(allow(other.record.masked, hash_key(other.raw))) == ["default"]
    created = Event("key.created", "admin", {"keyMasked": new.record.masked})
    assert routes.destinations_for(created) == ["default", config_filter_id("lifecycle"), hook.id]
    destination = routes.destination(hook.id)
    assert destination is not None and destination.key_masked == new.record.masked and destination.secret == "s"
    # rotation moves the hook; its id (the queue's destination) stays
    routes.on_rekey(hash_key(new.raw), "f" * 64)
    assert routes.hooks["f" * 64].id == hook.id and store.doc_get("key_webhook", hash_key(new.raw)) is None
    fresh = Routes(store, None, None, allow_private=False)
    fresh.load([])
    assert set(fresh.hooks) == {"f" * 64} and fresh.filters == {}


def test_an_ambiguous_masked_key_routes_an_admin_event_nowhere(store: SQLiteStore) -> None:
    keys = KeyService(store)
    raw = generate_api_key()
    twin = raw[:7] + "0" * (len(raw) - 11) + raw[-4:]  # same first 7 and last 4: same masked form
    one, two = keys.import_key(raw, 1), keys.import_key(twin, 1)
    assert one is not None and two is not None and one.masked == two.masked
    routes = Routes(store, None, None, allow_private=False)
    routes.set_hook(one.key_hash, "https://own.example.com/", None)
    assert routes.destinations_for(Event("key.topup", "admin", {"keyMasked": one.masked})) == []
    assert routes.destinations_for(allow(one.masked, one.key_hash)) != []  # calls route by hash


def test_filter_validation_errors_are_400_and_config_filters_are_read_only(store: SQLiteStore) -> None:
    routes = Routes(store, None, None, allow_private=False)
    with pytest.raises(WebhookError, match="duplicate"):
        routes.load(
            [
                WebhookFilterConfig(name="x", events=["*"], url="https://a.example/"),
                WebhookFilterConfig(name="x", events=["*"], url="https://b.example/"),
            ]
        )
    with pytest.raises(WebhookError, match=r"webhookFilters\[0\].*loopback"):
        routes.load([WebhookFilterConfig(name="x", events=["*"], url="http://127.0.0.1/")])
    routes.load([WebhookFilterConfig(name="cfg", events=["*"], url="https://a.example/")])
    with pytest.raises(WebhookError) as conflict:
        routes.delete_filter(config_filter_id("cfg"))
    assert isinstance(conflict.value, Conflict)
    made = routes.create_filter("api", ["key.created"], "https://b.example/", None, [], True)
    with pytest.raises(WebhookError) as dup:
        routes.create_filter("api", ["*"], "https://b.example/", None, [], True)
    assert isinstance(dup.value, Conflict)
    with pytest.raises(WebhookError, match="1 to 7"):
        routes.update_filter(made.id, {"keyPrefixes": ["pg_abcdefgh"]})
    assert routes.filters[made.id] == made  # nothing changed


def test_the_queue_moves_events_to_batches_to_dead_letters_and_back(store: SQLiteStore) -> None:
    q = WebhookQueue(store.outbox)
    q.load(0.0)
    q.enqueue(
        [("d", float(i), "usage", "gate.allow", f'{{"n":{i}}}') for i in range(12)]
        + [("d", 12.0, "admin", "key.created", '{"t":"k"}')]
    )
    assert q.buffered == 13 and q.pending["d"].oldest == 0.0
    batch = q.take_batch("d", 10, 100.0)
    assert batch is not None and batch.event_count == 10 and batch.event_types == ["usage"]
    assert q.buffered == 3 and q.pending["d"].oldest == 10.0
    assert orjson.loads(q.body(batch))["events"][0] == {"n": 0}
    q.reschedule(batch, 1, 200.0, "HTTP 500")
    assert health_counts(store) == {"pendingRetries": 1, "deadLetterCount": 0}
    q.dead_letter(batch, "HTTP 500", 500, 300.0)
    assert q.dead_count == 1 and q.batches == {}
    [letter] = q.dead_letters()
    assert letter.attempts == 2 and letter.last_status == 500 and letter.event_count == 10
    again = q.replay([letter], 400.0)
    assert q.dead_count == 0 and again[0].attempt == 0 and q.body(again[0]) == letter.body
    rest = q.take_batch("d", 10, 500.0)
    assert rest is not None and rest.event_types == ["usage", "key.created"] and "d" not in q.pending
    # a restart reads the same state, and a batch waiting for a retry is due at once
    q.reschedule(rest, 3, 10_000.0, "down")
    reloaded = WebhookQueue(store.outbox)
    reloaded.load(600.0)
    assert set(reloaded.batches) == {again[0].id, rest.id} and reloaded.batches[rest.id].next_at == 600.0
    assert reloaded.batches[rest.id].body is None and reloaded.body(reloaded.batches[rest.id]) == q.body(rest)
    assert reloaded.head("d") is not None and reloaded.head("d").id == again[0].id  # type: ignore[union-attr]
    reloaded.delivered(again[0])
    assert q.clear_dead() == 0 and set(reloaded.batches) == {rest.id}
