"""Raw reads and writes of a Redis prefix's whole history, for `paygate-mcp migrate-store`.

The layout is the store's own (codec.py, scripts.py, audit.py, outbox.py): a copy written here is what the
scripts would have written, so a gateway starting on it cannot tell. Reads walk every collection a chunk at a
time (score or stream-id cursors); writes go in pipelines of one chunk each. A Redis copy is not one
transaction: a copy that fails leaves a partial prefix, and `abort` says how to clear it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import orjson
import redis

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store.audit_log import AuditEntry
from paygate.store.history import CHUNK, MIGRATED_OWNER, Document, LedgerItem, OnceItem, RefundMark, UsageItem
from paygate.store.outbox import Batch, DeadLetter, QueuedEvent
from paygate.store.redis_backend.audit import RedisAuditLog
from paygate.store.redis_backend.codec import (
    json_text,
    ledger_from,
    record_from,
    record_json,
    ts_text,
    usage_from,
    usage_json,
)
from paygate.store.redis_backend.listener import read_docs, read_keys
from paygate.store.redis_backend.names import Names, as_text
from paygate.store.redis_backend.rollups import RedisRollups
from paygate.store.rollups import CallRollups, RollupRow


def ledger_member(seq: int, ts: float, delta: int, kind: str, balance: int, memo: str | None) -> str:
    """A ledger ZSET member exactly as scripts.MONEY's `ledger()` builds it."""
    return f"[{seq},{float(ts)!r},{delta},{json_text(kind)},{balance},{json_text(memo)}]"


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


class RedisHistory:
    """A `HistoryReader` and a `HistoryWriter` (store/history.py) on one prefix; the outbox is written into the
    partition of `owner`, one no gateway is running under, so the first gateway to start adopts it."""

    def __init__(self, client: redis.Redis, names: Names, owner: str = MIGRATED_OWNER) -> None:
        self.r = client
        self.names = names
        self.owner = owner
        self._outbox = names.sub("outbox", owner)
        self._max_seq = 0
        self._max_ids = {"event": 0, "batch": 0, "dead": 0}
        self._last_id = (0, 0)  # the usage stream's last entry id written
        self._audit: RedisAuditLog | None = None
        self._rollups: RedisRollups | None = None

    # reading -----------------------------------------------------------------------------------------------
    def _hashes(self) -> list[str]:
        return sorted(as_text(h) for h in self.r.smembers(self.names.keys))

    def keys(self) -> list[KeyRecord]:
        records = [record_from(fields) for _, fields in read_keys(self.r, self.names, self._hashes())]
        return sorted(records, key=lambda r: (r.created_at, r.key_hash))

    def rollups(self, moved: dict[str, str]) -> CallRollups:
        """Read as a store reads them: a rotated key's rows (kept under its old hash) answer as its successor's."""
        return RedisRollups(self.r, self.names, lambda: moved)

    def _by_score(self, key: str) -> Iterator[tuple[bytes, float]]:
        """(member, score) of a ZSET, lowest score first, a chunk per round trip."""
        low = "-inf"
        while True:
            got = cast(
                "list[tuple[bytes, float]]",
                self.r.zrangebyscore(key, low, "+inf", start=0, num=CHUNK, withscores=True),
            )
            yield from got
            if len(got) < CHUNK:
                return
            low = f"({int(got[-1][1])}"

    def ledger(self) -> Iterator[LedgerItem]:
        for h in self._hashes():
            for member, _ in self._by_score(self.names.ledger(h)):
                yield ledger_from(h, member)

    def usage(self) -> Iterator[UsageItem]:
        low = "-"
        while True:
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]", self.r.xrange(self.names.usage, low, "+", count=CHUNK)
            )
            for _, fields in entries:
                for field, value in fields.items():
                    if field == b"e":
                        yield usage_from(value)
                    elif field == b"r":
                        h, credits, ts = orjson.loads(value)
                        yield RefundMark(str(h), int(credits), float(ts))
            if len(entries) < CHUNK:
                return
            low = "(" + as_text(entries[-1][0])

    def documents(self) -> Iterator[Document]:
        for kind, docs in read_docs(self.r, self.names).items():
            for doc_id, body in sorted(docs.items()):
                yield kind, doc_id, body

    def meta(self) -> list[tuple[str, str]]:
        return sorted((as_text(k), as_text(v)) for k, v in self.r.hgetall(self.names.meta).items())

    def audit(self) -> Iterator[AuditEntry]:
        ids = (int(score) for _, score in self._by_score(self.names.sub("audit", "all")))
        while chunk := [i for _, i in zip(range(CHUNK), ids, strict=False)]:
            values = cast("list[bytes | None]", self.r.hmget(self.names.sub("audit", "e"), chunk))
            for i, value in zip(chunk, values, strict=True):
                if value is not None:
                    head, _, data = value.partition(b"\n")
                    ts, type_, actor = orjson.loads(head)
                    yield AuditEntry(i, float(ts), str(type_), str(actor), orjson.loads(data))

    def _partitions(self) -> list[str]:
        owners = sorted(as_text(o) for o in self.r.smembers(self.names.sub("outbox-owners")))
        return [self.names.sub("outbox", o) for o in owners]

    def queued(self) -> Iterator[tuple[str, QueuedEvent]]:
        for p in self._partitions():
            for dest in sorted(as_text(d) for d in self.r.smembers(f"{p}:qd")):
                ids = (int(score) for _, score in self._by_score(f"{p}:q:{dest}"))
                while chunk := [i for _, i in zip(range(CHUNK), ids, strict=False)]:
                    values = cast("list[bytes | None]", self.r.hmget(f"{p}:ev", chunk))
                    for i, value in zip(chunk, values, strict=True):
                        if value is not None:
                            head, _, event = value.partition(b"\n")
                            ts, kind, type_ = orjson.loads(head)
                            yield dest, QueuedEvent(i, float(ts), str(kind), str(type_), event.decode())

    def _hashes_of(self, p: str, index: str, item: str) -> Iterator[tuple[int, dict[bytes, bytes]]]:
        ids = [int(score) for _, score in self._by_score(f"{p}:{index}")]
        for start in range(0, len(ids), CHUNK):
            pipe = self.r.pipeline(transaction=False)
            for i in ids[start : start + CHUNK]:
                pipe.hgetall(f"{p}:{item}:{i}")
            for i, fields in zip(ids[start : start + CHUNK], pipe.execute(), strict=True):
                if fields:
                    yield i, fields

    def batches(self) -> Iterator[Batch]:
        for p in self._partitions():
            for i, f in self._hashes_of(p, "bs", "b"):
                yield Batch(
                    i,
                    f[b"dest"].decode(),
                    int(f[b"n"]),
                    orjson.loads(f[b"types"]),
                    int(f[b"attempt"]),
                    float(f[b"next_at"]),
                    float(f[b"created"]),
                    _text(f.get(b"error")),
                    f[b"body"],
                )

    def dead_letters(self) -> Iterator[DeadLetter]:
        for p in self._partitions():
            for i, f in self._hashes_of(p, "ds", "d"):
                yield DeadLetter(
                    i,
                    f[b"dest"].decode(),
                    f[b"body"],
                    int(f[b"n"]),
                    orjson.loads(f[b"types"]),
                    int(f[b"attempts"]),
                    float(f[b"created"]),
                    float(f[b"failed_at"]),
                    _text(f.get(b"error")),
                    int(f[b"status"]),
                )

    def once_moves(self) -> Iterator[OnceItem]:
        """The key hash is not kept in Redis (a duplicate's answer needs only the amounts): ""."""
        for once_id, value in self.r.hscan_iter(self.names.once, count=CHUNK):
            requested, moved = as_text(value).split(" ")
            yield as_text(once_id), "", int(requested), int(moved)

    # writing -----------------------------------------------------------------------------------------------
    def empty(self) -> str | None:
        pattern = f"{self.names.base}:*"
        cursor = 0
        while True:
            cursor, found = self.r.scan(cursor, match=pattern, count=1000)
            if found:
                return f"keys under {self.names.base}: (for one, {as_text(found[0])})"
            if cursor == 0:
                return None

    def _pipe(self) -> Any:
        return self.r.pipeline(transaction=False)

    def write_keys(self, records: Sequence[KeyRecord]) -> None:
        n = self.names
        for start in range(0, len(records), CHUNK):
            pipe = self._pipe()
            for rec in records[start : start + CHUNK]:
                fields = {
                    "c": str(rec.credits),
                    "s": str(rec.total_spent),
                    "n": str(rec.total_calls),
                    "u": ts_text(rec.last_used_at),
                    "r": record_json(rec),
                    "a": rec.alias or "",
                    "v": "1",
                }
                pipe.hset(n.key(rec.key_hash), mapping=fields)
                pipe.sadd(n.keys, rec.key_hash)
                if rec.alias:
                    pipe.hset(n.aliases, rec.alias, rec.key_hash)
                successor = rec.extra.get("rotatedTo")
                if successor:  # usage rows keep the old hash here; reads follow this map (reads.py)
                    pipe.hset(n.rotated, rec.key_hash, str(successor))
            pipe.execute()

    def write_ledger(self, items: Sequence[LedgerItem]) -> None:
        pipe = self._pipe()
        for seq, e in items:
            member = ledger_member(seq, e.timestamp, e.delta, e.kind, e.balance_after, e.memo)
            pipe.zadd(self.names.ledger(e.key_hash), {member: seq})
            self._max_seq = max(self._max_seq, seq)
        pipe.execute()

    def _next_id(self, ts: float) -> str:
        """A stream id at the entry's own time (later if the log is out of order): reads scan the stream from
        `since`'s time on (reads.py), so an entry's id must not be earlier than its time."""
        ms, seq = max(int(ts * 1000), 0), 0
        last_ms, last_seq = self._last_id
        if ms <= last_ms:
            ms, seq = last_ms, last_seq + 1
        if (ms, seq) == (0, 0):
            seq = 1
        self._last_id = (ms, seq)
        return f"{ms}-{seq}"

    def write_usage(self, items: Sequence[UsageItem]) -> None:
        pipe = self._pipe()
        for item in items:
            if isinstance(item, UsageEvent):
                pipe.xadd(self.names.usage, {"e": usage_json(item)}, id=self._next_id(item.timestamp))
            else:
                mark = json_text([item.key_hash, item.credits, item.ts])
                pipe.xadd(self.names.usage, {"r": mark}, id=self._next_id(item.ts))
        pipe.execute()

    def write_documents(self, docs: Sequence[Document]) -> None:
        pipe = self._pipe()
        for kind, doc_id, body in docs:
            pipe.hset(self.names.docs(kind), doc_id, body)
            pipe.sadd(self.names.doc_kinds, kind)
        pipe.execute()

    def write_meta(self, values: Sequence[tuple[str, str]]) -> None:
        if values:
            self.r.hset(self.names.meta, mapping=dict(values))

    def write_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Through the audit log's own script (every index, and the fleet's event-id counter raised to the
        highest id, so ids handed out later never collide with a copied one)."""
        if self._audit is None:
            self._audit = RedisAuditLog(self.r, self.names)
        self._audit.append_many([(e.id, e.timestamp, e.type, e.actor, e.data) for e in entries])

    def write_queued(self, events: Sequence[tuple[str, QueuedEvent]]) -> None:
        p, pipe = self._outbox, self._pipe()
        for dest, e in events:
            value = orjson.dumps([float(e.ts), e.kind, e.type]) + b"\n" + e.event.encode()
            pipe.hset(f"{p}:ev", str(e.id), value)
            pipe.zadd(f"{p}:q:{dest}", {str(e.id): e.id})
            pipe.sadd(f"{p}:qd", dest)
            self._max_ids["event"] = max(self._max_ids["event"], e.id)
        pipe.execute()

    def write_batches(self, batches: Sequence[Batch]) -> None:
        p, pipe = self._outbox, self._pipe()
        for b in batches:
            fields: dict[str, str | bytes | int] = {
                "dest": b.dest,
                "body": b.body or b"",
                "n": b.event_count,
                "types": orjson.dumps(b.event_types),
                "attempt": b.attempt,
                "next_at": repr(float(b.next_at)),
                "created": repr(float(b.created)),
            }
            if b.last_error is not None:
                fields["error"] = b.last_error
            pipe.hset(f"{p}:b:{b.id}", mapping=fields)
            pipe.zadd(f"{p}:bs", {str(b.id): b.id})
            if b.attempt > 0:
                pipe.sadd(f"{p}:retry", str(b.id))
            self._max_ids["batch"] = max(self._max_ids["batch"], b.id)
        pipe.execute()

    def write_once_moves(self, items: Sequence[OnceItem]) -> None:
        if items:
            self.r.hset(self.names.once, mapping={i[0]: f"{i[2]} {i[3]}" for i in items})

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        p, pipe = self._outbox, self._pipe()
        for d in letters:
            fields: dict[str, str | bytes | int] = {
                "dest": d.dest,
                "body": d.body,
                "n": d.event_count,
                "types": orjson.dumps(d.event_types),
                "attempts": d.attempts,
                "created": repr(float(d.created)),
                "failed_at": repr(float(d.failed_at)),
                "status": d.last_status,
            }
            if d.last_error is not None:
                fields["error"] = d.last_error
            pipe.hset(f"{p}:d:{d.id}", mapping=fields)
            pipe.zadd(f"{p}:ds", {str(d.id): d.id})
            self._max_ids["dead"] = max(self._max_ids["dead"], d.id)
        pipe.execute()

    def write_rollups(self, rows: Sequence[RollupRow]) -> None:
        """Into every level, by the store's own script (each chunk atomic, as a gateway's batch is)."""
        if self._rollups is None:
            self._rollups = RedisRollups(self.r, self.names, dict)  # writes never read the rotations
        self._rollups.record_sums(rows)

    def finish(self) -> None:
        """The counters: ledger entry numbers and outbox ids go on from the highest copied."""
        pipe = self._pipe()
        if self._max_seq:
            pipe.set(self.names.seq, self._max_seq)
        if any(self._max_ids.values()):
            pipe.hset(self.names.sub("outbox-ids"), mapping=self._max_ids)
            pipe.sadd(self.names.sub("outbox-owners"), self.owner)
        pipe.execute()

    def abort(self) -> str:
        return (
            f"the prefix now holds a partial copy: delete every key under {self.names.base}: "
            f"(redis-cli --scan --pattern '{self.names.base}:*' | xargs redis-cli del) before trying again"
        )
