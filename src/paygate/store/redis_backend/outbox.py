"""The webhook outbox on Redis (`Outbox`, as `store/sqlite_outbox.py` on SQLite), one partition per process.

Each gateway's webhook service mirrors and schedules its own queued events and batches in memory, so each
owner (one gateway instance) has a partition of its own, under `{prefix}:outbox:<owner>:`:
- `ev`: HASH event id -> `[ts, kind, type]` JSON, a newline, the event JSON as given;
- `qd`: SET of destinations with queued events; `q:<dest>`: ZSET of their event ids, scored by id;
- `bs`: ZSET of batch ids; `b:<id>`: HASH of one batch (dest, body, n, types, attempt, next_at, created, error);
  `retry`: SET of the batch ids that failed at least once;
- `ds`: ZSET of dead-letter ids; `d:<id>`: HASH of one dead letter (a batch's fields and attempts, failed_at,
  status).
Ids come from one shared HASH of counters (`{prefix}:outbox-ids`), so they are unique across owners and an
adopted partition merges into another without a clash; `{prefix}:outbox-owners` lists the partitions.
Every move is one Lua script (or MULTI), so an event is always in exactly one place; bodies are stored and
returned as the bytes given. Timestamps travel as `repr(float)` strings and come back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import orjson
import redis

from paygate.store.outbox import Batch, DeadLetter, OutboxRow, OutboxState, QueuedEvent
from paygate.store.redis_backend import outbox_scripts as lua
from paygate.store.redis_backend.audit import redis_call, require_bytes
from paygate.store.redis_backend.names import Names


def check_owner(owner: str) -> str:
    if not owner or any(c in owner for c in "{}: \n\t"):
        raise ValueError(f"an outbox owner must be a plain word, not {owner!r}")
    return owner


def _ts(value: float) -> str:
    return repr(float(value))


def _queued(raw_id: bytes | int, value: bytes) -> QueuedEvent:
    head, _, event = value.partition(b"\n")
    ts, kind, type_ = orjson.loads(head)
    return QueuedEvent(int(raw_id), float(ts), str(kind), str(type_), event.decode())


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _batch(raw_id: bytes, f: list[Any]) -> Batch:  # f: lua.BATCH_FIELDS
    return Batch(
        int(raw_id), f[0].decode(), int(f[1]), orjson.loads(f[2]), int(f[3]), float(f[4]), float(f[5]), _text(f[6])
    )


def _dead_letter(raw_id: bytes, f: list[Any]) -> DeadLetter:  # f: lua.DEAD_FIELDS
    return DeadLetter(
        int(raw_id),
        f[0].decode(),
        f[1],
        int(f[2]),
        orjson.loads(f[3]),
        int(f[4]),
        float(f[5]),
        float(f[6]),
        _text(f[7]),
        int(f[8]),
    )


class RedisOutbox:
    """Implements `paygate.store.outbox.Outbox`: the partition of `owner` (this gateway instance)."""

    def __init__(self, client: redis.Redis, names: Names, owner: str) -> None:
        require_bytes(client)
        self._r = client
        self.owner = check_owner(owner)
        self._root = names.sub("outbox")
        self._p = names.sub("outbox", owner)
        self._counters = names.sub("outbox-ids")
        self._owners = names.sub("outbox-owners")
        self._qd, self._ev = f"{self._p}:qd", f"{self._p}:ev"
        self._bs, self._retry, self._ds = f"{self._p}:bs", f"{self._p}:retry", f"{self._p}:ds"
        script = client.register_script
        self._enqueue, self._oldest, self._next = script(lua.ENQUEUE), script(lua.OLDEST), script(lua.NEXT)
        self._form, self._reschedule, self._dead = (
            script(lua.FORM_BATCH),
            script(lua.RESCHEDULE),
            script(lua.DEAD_LETTER),
        )
        self._state, self._letters, self._clear = script(lua.STATE), script(lua.DEAD_LETTERS), script(lua.CLEAR_DEAD)
        self._replay, self._adopt, self._list = script(lua.REPLAY), script(lua.ADOPT), script(lua.OWNERS)
        self._delete_dead = script(lua.DELETE_DEAD)

    def _q(self, dest: str) -> str:
        return f"{self._p}:q:{dest}"

    def _b(self, batch_id: int) -> str:
        return f"{self._p}:b:{int(batch_id)}"

    # events ----------------------------------------------------------------------------------------------
    def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        args: list[str | bytes] = [self._p, self.owner]
        for dest, ts, kind, type_, event in rows:
            args += [dest, orjson.dumps([float(ts), kind, type_]) + b"\n" + event.encode()]
        redis_call(partial(self._enqueue, keys=[self._counters, self._owners, self._qd, self._ev], args=args))

    def oldest(self, dest: str, limit: int) -> list[QueuedEvent]:
        if limit <= 0:
            return []
        ids, values = redis_call(partial(self._oldest, keys=[self._q(dest), self._ev], args=[limit]))
        return [_queued(i, v) for i, v in zip(ids, values, strict=True) if v is not None]

    def next_ts(self, dest: str, after_id: int) -> float | None:
        value = redis_call(partial(self._next, keys=[self._q(dest), self._ev], args=[int(after_id)]))
        return None if value is None else _queued(0, value).ts

    # batches ---------------------------------------------------------------------------------------------
    def form_batch(
        self, dest: str, through_id: int, body: bytes, event_count: int, event_types: list[str], now: float
    ) -> int:
        keys = [self._counters, self._owners, self._qd, self._ev, self._q(dest), self._bs]
        args: list[str | bytes | int] = [
            self._p,
            self.owner,
            dest,
            int(through_id),
            body,
            event_count,
            orjson.dumps(event_types),
            _ts(now),
        ]
        return int(redis_call(partial(self._form, keys=keys, args=args)))

    def batch_body(self, batch_id: int) -> bytes | None:
        return cast("bytes | None", redis_call(partial(self._r.hget, self._b(batch_id), "body")))

    def delivered(self, batch_id: int) -> None:
        def move() -> None:
            with self._r.pipeline(transaction=True) as p:
                p.delete(self._b(batch_id))
                p.zrem(self._bs, int(batch_id))
                p.srem(self._retry, int(batch_id))
                p.execute()

        redis_call(move)

    def reschedule(self, batch_id: int, attempt: int, next_at: float, error: str) -> None:
        args: list[str | int] = [int(batch_id), int(attempt), _ts(next_at), error]
        redis_call(partial(self._reschedule, keys=[self._b(batch_id), self._retry], args=args))

    def dead_letter(self, batch_id: int, attempts: int, error: str, status: int, now: float) -> None:
        keys = [self._counters, self._b(batch_id), self._bs, self._retry, self._ds]
        args: list[str | int] = [self._p, int(batch_id), int(attempts), error, int(status), _ts(now)]
        redis_call(partial(self._dead, keys=keys, args=args))

    # dead letters ----------------------------------------------------------------------------------------
    def dead_letters(self) -> list[DeadLetter]:
        rows = redis_call(partial(self._letters, keys=[self._ds], args=[self._p]))
        return [_dead_letter(i, f) for i, f in rows]

    def clear_dead(self) -> int:
        return int(redis_call(partial(self._clear, keys=[self._ds], args=[self._p])))

    def delete_dead(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        args: list[str | int] = [self._p, *(int(i) for i in ids)]
        return int(redis_call(partial(self._delete_dead, keys=[self._ds], args=args)))

    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[int]:
        if not letters:
            return []
        args: list[str | bytes | int] = [self._p, self.owner, _ts(now)]
        for d in letters:
            args += [int(d.id), d.dest, d.body, int(d.event_count), orjson.dumps(d.event_types), _ts(d.created)]
        ids = redis_call(partial(self._replay, keys=[self._counters, self._owners, self._bs, self._ds], args=args))
        return [int(i) for i in ids]

    # the partition ---------------------------------------------------------------------------------------
    def state(self) -> OutboxState:
        pending, batches, dead = redis_call(
            partial(self._state, keys=[self._qd, self._ev, self._bs, self._ds], args=[self._p])
        )
        return OutboxState(
            {d.decode(): (int(n), _queued(0, v).ts) for d, n, v in pending if v is not None},
            [_batch(i, f) for i, f in batches],
            {d.decode(): int(n) for d, n in dead},
        )

    def health(self) -> tuple[int, int]:
        """(batches waiting for a retry, dead letters) of this partition."""

        def read() -> list[Any]:
            with self._r.pipeline(transaction=True) as p:
                p.scard(self._retry)
                p.zcard(self._ds)
                return p.execute()

        retries, dead = redis_call(read)
        return int(retries), int(dead)

    def adopt(self, dead_owner: str) -> int:
        """Move everything of `dead_owner`'s partition (queued events, batches, dead letters) into this one, in
        one atomic script; how many items moved. For an instance that died: its webhooks are not lost. The
        caller reloads its mirrors afterwards (`WebhookQueue.load`)."""
        if check_owner(dead_owner) == self.owner:
            raise ValueError("an outbox cannot adopt its own partition")
        args = [self._p, self.owner, f"{self._root}:{dead_owner}", dead_owner]
        return int(redis_call(partial(self._adopt, keys=[self._owners], args=args)))

    def owners(self) -> list[str]:
        """The owners whose partition holds anything (queued events, batches or dead letters), sorted."""
        found = redis_call(partial(self._list, keys=[self._owners], args=[self._root]))
        return sorted(o.decode() for o in found)
