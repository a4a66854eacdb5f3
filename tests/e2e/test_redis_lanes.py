"""Lanes on a real redis-server: a batch sent again is applied at most once; a batch whose reply was lost
is settled by a fence (applied, with its reply, or never); the charge writer refunds the charges of a lost
batch that had been applied, since their calls were never forwarded."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store.errors import ChargeNotRecorded, StoreUnavailable
from paygate.store.redis_backend import codec
from paygate.store.redis_backend.codec import MoneyState
from paygate.store.redis_backend.lanes import Lane, Reply
from paygate.store.redis_backend.store import RedisStore
from paygate.store.redis_backend.writer import NOT_FORWARDED, ChargeWriter, Held, Link
from tests.redis_server import running_redis
from tests.support import wait_until

_prefixes = itertools.count(1)


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    s = RedisStore(redis_url, prefix=f"lanes{next(_prefixes)}_{time.monotonic_ns()}")
    s.open()
    yield s
    s.close()


def funded(store: RedisStore, credits: int) -> str:
    h = f"h{time.monotonic_ns()}"
    store.create_key(KeyRecord(h, "pg_", h[-4:], "lanes", credits, time.time()))
    return h


def charge(h: str, amount: int) -> list[str]:
    event = UsageEvent(time.time(), h, "pg_…", "lanes", "echo", amount, True)
    return codec.charge_op(h, amount, event, codec.ChargeLimits())


def credits(store: RedisStore, h: str) -> int:
    return int(store.client.hget(store.names.key(h), "c") or -1)


def test_a_batch_sent_again_is_answered_from_memory_not_applied_twice(store: RedisStore) -> None:
    h = funded(store, 10)
    lane = Lane(store.client, store.names, "test-instance", "c", 1000)
    first = lane.run([charge(h, 3)])
    lane.seq -= 1  # the same number again: what a retry after a lost reply sends
    again = lane.run([charge(h, 3)])
    assert again.lines == first.lines and credits(store, h) == 7
    assert MoneyState.parse(first.lines[0].split(" ")[1:6]).credits == 7


def test_a_lost_reply_is_settled_by_a_fence(store: RedisStore) -> None:
    h = funded(store, 10)
    lane = Lane(store.client, store.names, "test-instance", "c", 1000)
    applied = lane.run([charge(h, 4)])
    lane.doubtful = lane.seq  # its reply "lost": the fence finds it applied, with that reply
    reply = lane.settle_doubt()
    assert reply is not None and reply.lines == applied.lines and lane.doubtful is None
    lane.doubtful = lane.seq + 1  # a batch that never reached Redis: fenced, so it never can apply
    assert lane.settle_doubt() is None
    late = Lane(store.client, store.names, "test-instance", "c", 1000)
    late.seq = lane.seq  # the lost batch, arriving after the fence: answered from memory, not applied
    late.run([charge(h, 4)])
    assert credits(store, h) == 6


async def test_the_writer_refunds_an_applied_batch_whose_reply_was_lost(store: RedisStore) -> None:
    h = funded(store, 10)
    writer = ChargeWriter(store.url, store.names, "test-instance", 1000, Link(), lambda *_: None)
    try:
        ops = [charge(h, 2), charge(h, 3)]
        writer.seq = 1
        await writer._money(ops, 1)  # applied in Redis ...
        writer.doubtful = 1  # ... but the reply never came back: the calls were refused, not forwarded
        loop = asyncio.get_running_loop()
        batch = [Held(h, 2, 1, ops[0], loop.create_future(), time.time(), ())]
        batch.append(Held(h, 3, 1, ops[1], loop.create_future(), time.time(), ()))
        await writer._recover(batch, StoreUnavailable("lost"))
        assert credits(store, h) == 10 and writer.doubtful is None
        refunds = [e for e in store.ledger(h) if e.kind == "refund"]
        assert [(e.delta, e.memo) for e in refunds] == [(2, NOT_FORWARDED), (3, NOT_FORWARDED)]
        await writer._recover(batch, StoreUnavailable("lost"))  # settled already: nothing is refunded twice
        assert credits(store, h) == 10
        writer.doubtful = writer.seq + 1  # a batch that never reached Redis: fenced, nothing to refund
        await writer._recover(batch, StoreUnavailable("lost"))
        assert credits(store, h) == 10 and writer.doubtful is None
    finally:
        writer.close()


FILL = """
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do redis.call('SET', 'fill:' .. i, '') end
"""


def settle_futures(batch: list[Held], outcome: Reply | StoreUnavailable) -> None:
    """What the store does with a batch's outcome, as far as the calls waiting on it can tell."""
    for held in batch:
        if held.future is None or held.future.done():
            continue
        if isinstance(outcome, StoreUnavailable):
            held.future.set_exception(ChargeNotRecorded(str(outcome)))
        else:
            held.future.set_result(None)


async def test_a_redis_still_loading_its_data_refuses_charges_until_it_is_back() -> None:
    """After a crash, redis-server answers `LOADING` until it has read its files back: a batch sent then is
    refused (its call not forwarded), the lane's doubt is settled once loading ends, and charges go on."""
    with running_redis(appendonly=True, appendfsync="always") as server:
        with server.client() as client:
            for start in range(1, 400_000, 100_000):  # enough keys that reading them back takes a while
                client.eval(FILL, 0, start, start + 99_999)
        store = RedisStore(server.url, prefix="loading")
        store.open()
        h = funded(store, 10)
        store.close()
        loop = asyncio.get_running_loop()
        writer = ChargeWriter(server.url, store.names, "test-instance", 1000, Link(), settle_futures)

        async def paid(amount: int) -> asyncio.Future[None]:
            held = Held(h, amount, 1, charge(h, amount), loop.create_future(), time.time(), ())
            writer.submit(held)
            assert held.future is not None
            await asyncio.wait((held.future,), timeout=20)
            return held.future

        try:
            assert (await paid(1)).exception() is None
            server.restart(crash=True, loaded=False)
            assert server.loading()
            refused = await paid(2)
            assert refused.done() and isinstance(refused.exception(), ChargeNotRecorded)
            await asyncio.to_thread(wait_until, lambda: not server.loading(), 20.0, "redis to finish loading")
            assert (await paid(3)).exception() is None
            assert writer.doubtful is None
            with server.client() as client:
                assert int(client.hget(store.names.key(h), "c") or -1) == 10 - 1 - 3
        finally:
            writer.close()
