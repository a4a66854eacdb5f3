"""The Redis store (`--redis-url`): keys, credits, usage, documents and history shared by a fleet.

Reads of key records and documents come from this process's copy (the gate reads them on every call);
every write goes to Redis first, as one Lua script (scripts.py), and then into the copy. Other instances'
writes arrive by pub/sub and a periodic refresh (listener.py). Redis decides every charge: a call is
admitted on the copy's balance, and forwarded only once Redis has applied its charge (writer.py), so
instances racing for the last credits never spend more than there is. With Redis unreachable, paid calls
are refused (`ChargeNotRecorded`) and writes raise `StoreUnavailable`: nothing is decided on local state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import redis

from paygate.core.records import ChargeLimits, ChargeResult, KeyRecord, UsageEvent
from paygate.store.documents import Doc, DocumentTable
from paygate.store.errors import ChargeNotRecorded, ChargeRefused, Conflict, StoreUnavailable
from paygate.store.redis_backend import codec
from paygate.store.redis_backend.audit import RedisAuditLog
from paygate.store.redis_backend.codec import MoneyState
from paygate.store.redis_backend.documents import RedisDocuments, locked
from paygate.store.redis_backend.lanes import USAGE_CAP, Lane, Reply
from paygate.store.redis_backend.listener import ALIVE_SECONDS, Listener, read_all
from paygate.store.redis_backend.mirror import Mirror
from paygate.store.redis_backend.money_moves import RedisMoneyMoves
from paygate.store.redis_backend.names import Names, as_text, guarded
from paygate.store.redis_backend.outbox import RedisOutbox
from paygate.store.redis_backend.reads import RedisReads
from paygate.store.redis_backend.rollups import RedisRollups
from paygate.store.redis_backend.writer import ChargeWriter, Held, Link, Outcome

if TYPE_CHECKING:
    from paygate.store.base import Store

log = logging.getLogger("paygate.store")
DEFAULT_PREFIX = "paygate"


class RedisStore(RedisDocuments, RedisReads, RedisMoneyMoves):
    """Implements `paygate.store.base.Store` on a Redis server shared by every instance."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, usage_cap: int = USAGE_CAP) -> None:
        self.url = url
        self.names = Names(prefix)
        self.usage_cap = usage_cap
        self.instance = uuid.uuid4().hex[:12]  # this process; its lanes and messages carry it
        self.link = Link()
        self.mirror = Mirror()
        self._documents = DocumentTable()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0
        self._client: redis.Redis | None = None
        self._lock = threading.RLock()
        self.doc_writes = 0  # document writes taken in (listener.Receiver)

    # lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and read every key and document; raises StoreUnavailable when Redis cannot be reached."""
        self._client = client = redis.Redis.from_url(
            self.url, socket_timeout=2.0, socket_connect_timeout=1.0, health_check_interval=15
        )
        records, docs = guarded(lambda: read_all(client, self.names))
        self._admin = Lane(client, self.names, self.instance, "a", self.usage_cap)
        self.writer = ChargeWriter(self.url, self.names, self.instance, self.usage_cap, self.link, self._settle)
        self.mirror.in_flight = lambda: self.writer.in_flight
        self.audit = RedisAuditLog(client, self.names)
        self.outbox = RedisOutbox(client, self.names, self.instance)
        self.rollups = RedisRollups(client, self.names, self._successors)
        self._init_reads()
        guarded(lambda: client.set(self.names.alive(self.instance), "1", ex=ALIVE_SECONDS))
        self.adopt_outboxes()
        self.remote_all(records, docs, self.doc_writes)
        self.listener = Listener(client, self.names, self.instance, self.link, self, self._post)
        self.listener.start()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def adopt_outboxes(self) -> int:
        """Undelivered webhooks of instances that are gone (stopped, or not heard of for ALIVE_SECONDS) are
        taken over, in one atomic move per instance (of instances racing, one gets them): at open, before
        the webhook service reads its outbox, and then now and then (compose/events.py). Items moved."""
        moved = 0
        for owner in self.outbox.owners():
            if owner != self.instance and not guarded(lambda o=owner: self.client.exists(self.names.alive(o))):  # type: ignore[misc]
                got = self.outbox.adopt(owner)
                if got:
                    log.info("redis: took over %d webhook deliveries of instance %s", got, owner)
                moved += got
        return moved

    @property
    def connected(self) -> bool:
        return self.link.up

    @property
    def subscribed(self) -> bool:
        return bool(self.listener.subscribed)

    def bind_loop(self) -> None:
        """Called on the event loop once it runs: from then on the listener's news are applied there."""
        self._bind()

    def durability_problems(self) -> list[str]:
        """What Redis's persistence settings risk, read where the server allows CONFIG GET (docs/redis.md)."""
        try:
            got = {as_text(k): as_text(v) for k, v in self.client.config_get("append*").items()}
        except redis.exceptions.RedisError as exc:
            return [f"could not read the persistence settings ({exc}): make sure appendonly is yes"]
        if got.get("appendonly") != "yes":
            return [
                "appendonly is no: a Redis restart loses every key, credit and charge since its last snapshot "
                "(set appendonly yes, and appendfsync always to survive a power loss too)"
            ]
        if got.get("appendfsync") == "no":
            return ["appendfsync is no: a crash of the Redis host can lose charges (set appendfsync always)"]
        return []

    def close(self) -> None:
        if self._client is None:
            return
        self.writer.close()
        self.listener.close()
        with contextlib.suppress(StoreUnavailable):
            guarded(lambda: self.client.delete(self.names.alive(self.instance)))
        self._client.close()
        self._client = None

    @property
    def client(self) -> redis.Redis:  # type: ignore[override]
        if self._client is None:
            raise RuntimeError("store is not open")
        return self._client

    def _post(self, apply: Callable[[], None]) -> None:
        """Run `apply` on the event loop (the copy is only ever changed there), or at once without one."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(apply)
        else:
            with self._lock:
                apply()

    def _bind(self) -> asyncio.AbstractEventLoop | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if self._loop is not loop:
            self._loop = loop
        return loop

    def _write(self, ops: Sequence[Sequence[str]]) -> Reply:
        if not self.link.up:
            raise StoreUnavailable("redis unreachable: writes are refused until it is back")
        return self._admin.run(ops)

    # key records -------------------------------------------------------------------------------------------
    def get_key(self, key_hash: str) -> KeyRecord | None:
        return self.mirror.keys.get(key_hash)

    def list_keys(self) -> list[KeyRecord]:
        return list(self.mirror.keys.values())

    def _installed(self, record: KeyRecord, line: str) -> None:
        words = line.split(" ")
        if words[0] == "conflict":
            raise Conflict(f"{' '.join(words[1:2]) or 'key'} of {record.masked} is taken")
        self.mirror.install(record, codec.record_json(record), MoneyState.parse(words[1:6]))

    @locked
    def create_key(self, record: KeyRecord, memo: str = "create") -> None:
        reply = self._write([codec.create_op(record, memo, time.time())])
        self._installed(record, reply.lines[0])
        self.generation += 1

    @locked
    def update_key(self, record: KeyRecord) -> None:
        """Write a record's policy fields. Money fields are never written here."""
        op = [
            "update",
            record.key_hash,
            record.alias or "",
            codec.record_json(record),
            codec.ts_text(record.last_used_at),
        ]
        line = self._write([op]).lines[0]
        if line.startswith("conflict"):
            raise Conflict(f"alias of {record.masked} is taken")
        if line.startswith("1 "):
            self._installed(record, line)
        else:
            self.mirror.keys[record.key_hash] = record
        self.generation += 1

    @locked
    def insert_all(self, records: Sequence[KeyRecord], docs: Sequence[tuple[str, str, Doc]], memo: str) -> None:
        now = time.time()
        ops = [codec.check_op(records), *(codec.create_op(r, memo, now) for r in records)]
        ops += [codec.doc_op(kind, doc_id, body) for kind, doc_id, body in docs]
        lines = self._write(ops).lines
        if lines[0].startswith("conflict"):
            raise Conflict(f"import: {lines[0].removeprefix('conflict ')} is taken")
        for record, line in zip(records, lines[1:], strict=False):
            self._installed(record, line)
        for kind, doc_id, body in docs:
            self._documents.remember(kind, doc_id, body)
        self.doc_writes += 1
        self.generation += 1

    # money: admin-path moves, one script each --------------------------------------------------------------
    def _moved(self, key_hash: str, line: str) -> ChargeResult:
        words = line.split(" ")
        if len(words) >= 6:
            state = MoneyState.parse(words[1:6])
            self.mirror.absorb(key_hash, state)
            return ChargeResult(words[0] == "1", state.credits)
        return ChargeResult(False, 0)

    def charge(self, key_hash: str, amount: int, event: UsageEvent) -> ChargeResult:
        """Deduct `amount` if the balance covers it, and record the call, in one script."""
        return self.charge_many(key_hash, ((amount, event),))

    @locked
    def charge_many(
        self, key_hash: str, charges: Sequence[tuple[int, UsageEvent]], limits: ChargeLimits | None = None
    ) -> ChargeResult:
        record = self.mirror.keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        op = self._charge_op(record, charges, limits)
        return self._moved(key_hash, self._write([op]).lines[0])

    @staticmethod
    def _charge_op(
        record: KeyRecord, charges: Sequence[tuple[int, UsageEvent]], limits: ChargeLimits | None
    ) -> list[str]:
        """Without limits from the gate, the key's team is still counted (its quota and budget are shared)."""
        limits = limits or ChargeLimits(team_id=record.team_id)
        if len(charges) == 1:
            return codec.charge_op(record.key_hash, charges[0][0], charges[0][1], limits)
        ts = charges[-1][1].timestamp if charges else time.time()
        return codec.many_op(record.key_hash, charges, ts, limits)

    @locked
    def rekey(self, old_hash: str, new: KeyRecord, memo: str = "rotate") -> None:
        """Rotation, as on SQLite (store/key_moves.py): `new` takes over balance, counters and usage."""
        old = self.mirror.keys[old_hash]
        retired = {**old.extra, "rotatedTo": new.key_hash}
        new.alias = old.alias
        op = [
            "rekey",
            old_hash,
            new.key_hash,
            codec.record_json(new),
            str(new.total_spent),
            str(new.total_calls),
            codec.ts_text(new.last_used_at),
            codec.record_json(dataclasses.replace(old, active=False, alias=None, extra=retired)),
            codec.json_text(memo),
            codec.ts_text(time.time()),
        ]
        line = self._write([op]).lines[0]
        self._installed(new, line)
        old.credits, old.active, old.alias, old.extra = 0, False, None, retired
        self.mirror.policy_json[old_hash] = codec.record_json(old)
        self.generation += 1

    # money: the hot path -----------------------------------------------------------------------------------
    def charge_deferred(
        self, key_hash: str, amount: int, event: UsageEvent, limits: ChargeLimits | None = None
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]:
        return self.charge_many_deferred(key_hash, ((amount, event),), limits)

    def charge_many_deferred(
        self, key_hash: str, charges: Sequence[tuple[int, UsageEvent]], limits: ChargeLimits | None = None
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]:
        """Decided on this process's copy now; applied by Redis, which checks the balance and `limits` again
        across the fleet (a refusal makes the future raise ChargeRefused), before the future resolves."""
        record = self.mirror.keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0), None
        total = sum(amount for amount, _ in charges)
        if record.credits < total:
            return ChargeResult(False, record.credits), None
        loop = self._bind()
        if loop is None:  # no event loop: apply now
            return self.charge_many(key_hash, charges, limits), None
        future: asyncio.Future[None] = loop.create_future()
        if not self.link.up:
            future.set_exception(ChargeNotRecorded("redis unreachable: paid calls are refused until it is back"))
            return ChargeResult(True, record.credits), future
        ts = charges[-1][1].timestamp
        op = self._charge_op(record, charges, limits)
        self.mirror.hold(record, total, len(charges), ts)
        events = tuple(e for _, e in charges)
        self.writer.submit(Held(key_hash, total, len(charges), op, future, ts, events, record.team_id))
        return ChargeResult(True, record.credits), future

    def record_denial(self, event: UsageEvent) -> None:
        op = ["deny", codec.usage_json(event)]
        if self._bind() is None:
            self._write([op])
        elif self.link.up:
            self.writer.submit(Held(event.key_hash, 0, 0, op, None, event.timestamp, (event,)))

    @locked
    def _settle(self, batch: list[Held], outcome: Outcome) -> None:
        """On the event loop: the reply of a batch of hot-path charges (writer.py)."""
        mirror = self.mirror
        touched = {held.key_hash for held in batch if held.future is not None}
        for held in batch:
            mirror.release(held.key_hash, held.credits, held.calls)
        if isinstance(outcome, StoreUnavailable):
            for held in batch:
                if held.future is not None and not held.future.done():
                    held.future.set_exception(ChargeNotRecorded(str(outcome)))
        else:
            for held, line in zip(batch, outcome.lines, strict=False):
                if held.future is None:
                    continue
                words = line.split(" ")
                if len(words) >= 6:
                    mirror.absorb(held.key_hash, MoneyState.parse(words[1:6]))
                if held.future.done():
                    continue
                if words[0] == "1":
                    held.future.set_result(None)
                else:
                    reason = words[6] if len(words) > 6 else "insufficient_credits"
                    held.future.set_exception(ChargeRefused(int(words[1]), reason))
        mirror.settle(touched)


if TYPE_CHECKING:  # mypy checks here that RedisStore implements every role of the Store protocol
    _conforms: type[Store] = RedisStore
