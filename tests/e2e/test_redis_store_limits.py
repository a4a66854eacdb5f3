"""Two Redis stores on one real redis-server, as two instances of a fleet would hold them: charges decided
on each one's copy are applied by Redis, which alone sees both, so the fleet never spends past a balance,
a spending limit, a quota or a team budget; refunds give quota back; both copies end equal to Redis.
(The gateway-level fleet tests run three real CLI processes: test_redis_fleet*.py.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.core.records import ChargeLimits, KeyRecord, UsageEvent
from paygate.store.errors import ChargeRefused
from paygate.store.redis_backend.store import RedisStore

_prefixes = itertools.count(1)


@pytest.fixture
def pair(redis_url: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    prefix = f"limits{next(_prefixes)}_{time.monotonic_ns()}"
    a, b = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    a.open()
    b.open()
    yield a, b
    a.close()
    b.close()


def record(credits: int, team: str | None = None) -> KeyRecord:
    h = f"h{time.monotonic_ns()}"
    return KeyRecord(h, "pg_", h[-4:], "fleet", credits, time.time(), team_id=team)


def call(h: str, credits: int) -> UsageEvent:
    return UsageEvent(time.time(), h, "pg_…", "fleet", "echo", credits, True)


async def both_see(stores: tuple[RedisStore, ...], h: str, deadline: float = 10.0) -> None:
    """Poll until every store's copy of the key exists (pub/sub, or the refresh)."""
    end = time.monotonic() + deadline
    while any(s.get_key(h) is None for s in stores):
        assert time.monotonic() < end, "the key never reached every instance"
        await asyncio.sleep(0.01)


async def race(stores: tuple[RedisStore, ...], h: str, calls: int, price: int, limits: ChargeLimits) -> list[str]:
    """`calls` charges per store, all decided before any reaches Redis: what each one came to."""
    futures = []
    outcomes: list[str] = []
    for _ in range(calls):
        for store in stores:
            result, done = store.charge_deferred(h, price, call(h, price), limits)
            if not result.ok:
                outcomes.append("local")
            elif done is not None:
                futures.append(done)
            else:
                outcomes.append("ok")
    for got in await asyncio.gather(*futures, return_exceptions=True):
        outcomes.append("ok" if got is None else got.reason if isinstance(got, ChargeRefused) else repr(got))
    return outcomes


async def converged(stores: tuple[RedisStore, ...], h: str, expected: int) -> None:
    end = time.monotonic() + 10.0
    while any(s.get_key(h).credits != expected for s in stores):  # type: ignore[union-attr]
        assert time.monotonic() < end, [s.get_key(h) for s in stores]
        await asyncio.sleep(0.01)


async def test_racing_instances_never_spend_more_than_the_balance(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    key = record(10)
    a.create_key(key)
    await both_see(pair, key.key_hash)
    outcomes = await race(pair, key.key_hash, 8, 1, ChargeLimits())
    assert outcomes.count("ok") == 10
    assert set(outcomes) <= {"ok", "local", "insufficient_credits"}
    await converged(pair, key.key_hash, 0)
    assert sum(e.delta for e in a.ledger(key.key_hash)) == 0
    assert len(b.query_usage(key_hash=key.key_hash)) == 10


async def test_a_daily_quota_holds_across_instances(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    key = record(100)
    a.create_key(key)
    await both_see(pair, key.key_hash)
    outcomes = await race(pair, key.key_hash, 5, 2, ChargeLimits(quota=(3, 0, 0, 0)))
    assert outcomes.count("ok") == 3 and outcomes.count("quota_exceeded") == 7
    counter, _ = b.quota_counter(key.key_hash, time.time())
    assert (counter.day_calls, counter.day_credits, counter.month_calls) == (3, 6, 3)
    await converged(pair, key.key_hash, 94)


async def test_a_spending_limit_and_a_monthly_credit_quota_hold(pair: tuple[RedisStore, RedisStore]) -> None:
    a, _ = pair
    spender, quoted = record(100), record(100)
    a.create_key(spender)
    a.create_key(quoted)
    await both_see(pair, quoted.key_hash)
    outcomes = await race(pair, spender.key_hash, 4, 3, ChargeLimits(spending_limit=10))
    assert outcomes.count("ok") == 3 and outcomes.count("spending_limit_exceeded") == 5
    outcomes = await race(pair, quoted.key_hash, 4, 3, ChargeLimits(quota=(0, 0, 0, 7)))
    assert outcomes.count("ok") == 2 and outcomes.count("quota_exceeded") == 6


async def test_a_team_budget_is_shared_by_its_keys_on_every_instance(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    first, second = record(50, team="t1"), record(50, team="t1")
    a.create_key(first)
    b.create_key(second)
    await both_see(pair, second.key_hash)
    await both_see(pair, first.key_hash)
    limits = ChargeLimits(team_id="t1", team_budget=9)
    futures = []
    for store, key in ((a, first), (b, second), (a, second), (b, first)) * 2:
        _, done = store.charge_deferred(key.key_hash, 2, call(key.key_hash, 2), limits)
        assert done is not None
        futures.append(done)
    got = await asyncio.gather(*futures, return_exceptions=True)
    assert got.count(None) == 4  # 4 x 2 = 8 <= 9; a fifth would pass the budget
    assert all(isinstance(g, ChargeRefused) and g.reason == "team_budget_exceeded" for g in got if g is not None)
    assert a.quota_counter("team:t1", time.time())[1] == 8


async def test_a_refund_gives_the_call_back_to_the_quota(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    key = record(20, team="t2")
    a.create_key(key)
    await both_see(pair, key.key_hash)
    limits = ChargeLimits(quota=(1, 0, 0, 0), team_id="t2")
    _, done = b.charge_deferred(key.key_hash, 5, call(key.key_hash, 5), limits)
    assert done is not None
    await done
    _, refused = a.charge_deferred(key.key_hash, 5, call(key.key_hash, 5), limits)
    assert refused is not None
    with pytest.raises(ChargeRefused):
        await refused
    assert a.refund(key.key_hash, 5, "backend failed").ok
    assert b.quota_counter(key.key_hash, time.time())[0].day_calls == 0
    assert b.quota_counter("team:t2", time.time())[1] == 0
    _, again = a.charge_deferred(key.key_hash, 5, call(key.key_hash, 5), limits)
    assert again is not None
    await again


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial=st.integers(0, 30),
    plan=st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(["charge", "topup", "refund"]), st.integers(0, 7))),
)
def test_two_instances_conserve_credits(
    pair: tuple[RedisStore, RedisStore], initial: int, plan: list[tuple[str, str, int]]
) -> None:
    """Any interleaving of charges (deferred, racing), topups and refunds on two instances: Redis's balance
    is the initial credits plus topups and refunds less the charges it accepted, equals the ledger's sum,
    never goes below zero, and both copies come to show it."""
    a, b = pair
    key = record(initial)
    a.create_key(key)
    h = key.key_hash

    async def run() -> int:
        await both_see(pair, h)
        expected, futures = initial, []
        for who, op, amount in plan:
            store = a if who == "a" else b
            if op == "charge":
                result, done = store.charge_deferred(h, amount, call(h, amount))
                if result.ok and done is not None:
                    futures.append((amount, done))
            elif op == "topup" and amount:
                assert store.topup(h, amount, "t").ok
                expected += amount
            elif op == "refund" and amount:
                assert store.refund(h, amount, "r").ok
                expected += amount
        for amount, done in futures:
            try:
                await done
                expected -= amount
            except ChargeRefused:
                pass
        await converged(pair, h, expected)
        return expected

    expected = asyncio.run(run())
    assert sum(e.delta for e in a.ledger(h)) == expected >= 0


def test_instances_importing_the_same_key_at_start_create_it_once(pair: tuple[RedisStore, RedisStore]) -> None:
    """`--import-key` on every instance of a fleet: the second to start finds it taken, and goes on."""
    from paygate.core.keys import hash_key
    from paygate.keys.service import KeyService

    a, b = pair
    raw = f"pg_imported_{time.monotonic_ns()}_0123456789abcdef"
    assert KeyService(a).import_key(raw, 10) is not None
    b.mirror.keys.pop(hash_key(raw), None)  # b has not heard of it yet (its message is on the way)
    assert KeyService(b).import_key(raw, 10) is None
    assert int(a.client.hget(a.names.key(hash_key(raw)), "c") or 0) == 10
    assert [e.kind for e in a.ledger(hash_key(raw))] == ["import"]


def test_a_running_instance_takes_over_the_webhooks_of_one_that_stopped(redis_url: str) -> None:
    prefix = f"adopt{next(_prefixes)}_{time.monotonic_ns()}"
    gone, alive = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    gone.open()
    alive.open()
    try:
        gone.outbox.enqueue([("default", time.time(), "admin", "key.created", '{"n": 1}')])
        assert alive.adopt_outboxes() == 0  # its owner is alive: nothing taken
        gone.close()  # stopped (or silent for ALIVE_SECONDS): its partition is up for adoption
        assert alive.adopt_outboxes() == 1
        assert alive.outbox.state().pending["default"][0] == 1
        assert alive.adopt_outboxes() == 0  # moved once
    finally:
        gone.close()
        alive.close()
