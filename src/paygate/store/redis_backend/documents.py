"""The Redis store's documents, meta and quota counters, and what it takes in of other instances' changes
(a mixin of RedisStore, store.py).

Documents are mirrored here (the gate reads groups, plans and teams on every call) and written through
one `doc` operation of the `a` lane; `doc_writes` counts every change taken in, so a refresh read before
one never undoes it (listener.py).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import redis

from paygate.core import quota
from paygate.store.documents import Doc, DocumentTable
from paygate.store.redis_backend import codec
from paygate.store.redis_backend.codec import MoneyState
from paygate.store.redis_backend.lanes import Reply
from paygate.store.redis_backend.listener import Fields
from paygate.store.redis_backend.mirror import Mirror
from paygate.store.redis_backend.names import Names, as_text, guarded

F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Writes and what the listener takes in are serialized: with an event loop they all run on it anyway;
    without one (scripts, tests) the listener's thread applies its news directly, under this lock."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class RedisDocuments:
    client: redis.Redis
    names: Names
    mirror: Mirror
    generation: int
    doc_writes: int
    _documents: DocumentTable
    _lock: threading.RLock

    def _write(self, ops: Any) -> Reply:
        raise NotImplementedError  # RedisStore's

    # documents and meta ------------------------------------------------------------------------------------
    def doc_get(self, kind: str, doc_id: str) -> Doc | None:
        return self._documents.get(kind, doc_id)

    def doc_peek(self, kind: str, doc_id: str) -> Doc | None:
        return self._documents.peek(kind, doc_id)

    def doc_list(self, kind: str) -> list[Doc]:
        return self._documents.all(kind)

    def doc_scan(self, kind: str) -> list[Doc]:
        return self._documents.scan(kind)

    def doc_kinds(self) -> list[str]:
        return self._documents.kinds()

    def doc_items(self, kind: str) -> list[tuple[str, Doc]]:
        return self._documents.items(kind)

    @locked
    def doc_put(self, kind: str, doc_id: str, body: Doc) -> None:
        self._write([codec.doc_op(kind, doc_id, body)])
        self._documents.remember(kind, doc_id, body)
        self.doc_writes += 1
        self.generation += 1

    @locked
    def doc_delete(self, kind: str, doc_id: str) -> bool:
        if self._documents.peek(kind, doc_id) is None:
            return False
        deleted = self._write([codec.doc_op(kind, doc_id, None)]).lines[0] == "1"
        self._documents.forget(kind, doc_id)
        self.doc_writes += 1
        self.generation += 1
        return deleted  # another instance may have deleted it first: only one caller gets True

    @locked
    def doc_create(self, kind: str, doc_id: str, body: Doc) -> bool:
        if self._write([["docnew", kind, doc_id, codec.json_text(body)]]).lines[0] != "1":
            return False
        self._documents.remember(kind, doc_id, body)
        self.doc_writes += 1
        self.generation += 1
        return True

    @locked
    def doc_put_if(self, kind: str, doc_id: str, body: Doc, field: str, expected: str) -> bool:
        op = ["docif", kind, doc_id, codec.json_text(body), field, expected]
        if self._write([op]).lines[0] != "1":
            return False
        self._documents.remember(kind, doc_id, body)
        self.doc_writes += 1
        self.generation += 1
        return True

    def quota_counter(self, subject: str, now: float) -> tuple[quota.Counter, int]:
        """The fleet's quota counter of a key hash or `team:<id>` (as the charge scripts keep it), and the
        team's credits spent all time."""
        raw = guarded(lambda: self.client.hmget(self.names.quota(subject), "d", "dc", "dk", "m", "mc", "mk", "spent"))
        day, day_calls, day_credits, month, month_calls, month_credits, spent = (
            None if v is None else as_text(v) for v in raw
        )
        counter = quota.Counter(quota.day_of(now), quota.month_of(now))
        if day == counter.day:
            counter.day_calls, counter.day_credits = int(day_calls or 0), int(day_credits or 0)
        if month == counter.month:
            counter.month_calls, counter.month_credits = int(month_calls or 0), int(month_credits or 0)
        return counter, int(spent or 0)

    def seed_quota_counters(self, counters: dict[str, tuple[quota.Counter, int]]) -> None:
        """Write counters recounted from the usage log (a store moved here from SQLite, which keeps none)."""
        pipe = self.client.pipeline(transaction=False)
        for subject, (c, spent) in counters.items():
            fields: dict[str, str | int] = {"d": c.day, "dc": c.day_calls, "dk": c.day_credits, "m": c.month}
            fields.update(mc=c.month_calls, mk=c.month_credits, spent=spent)
            pipe.hset(self.names.quota(subject), mapping=fields)  # type: ignore[arg-type]
        guarded(pipe.execute)

    def get_meta(self, name: str) -> str | None:
        raw = guarded(lambda: self.client.hget(self.names.meta, name))
        return None if raw is None else as_text(raw)

    def set_meta(self, name: str, value: str) -> None:
        guarded(lambda: self.client.hset(self.names.meta, name, value))

    def claim_meta(self, name: str, value: str) -> str:
        guarded(lambda: self.client.hsetnx(self.names.meta, name, value))
        return self.get_meta(name) or value

    # other instances' changes (listener.py), on the event loop ---------------------------------------------
    def remote_money(self, states: list[tuple[str, MoneyState]]) -> None:
        for key_hash, state in states:
            self.mirror.absorb(key_hash, state)

    def remote_keys(self, records: list[tuple[str, Fields]]) -> None:
        changed = False
        for key_hash, fields in records:
            got = {as_text(k): as_text(v) for k, v in fields.items()}
            state = MoneyState.parse([got["c"], got["s"], got["n"], got["u"], got["v"]])
            known = self.mirror.truth.get(key_hash)
            if known is not None and known.version > state.version:
                continue  # read before a change this process has already taken in
            if self.mirror.policy_json.get(key_hash) == got["r"]:
                self.mirror.absorb(key_hash, state)
            else:
                self.mirror.install(codec.record_from(fields), got["r"], state)
                changed = True
        if changed:
            self.generation += 1

    def remote_doc(self, kind: str, doc_id: str, body: str | None) -> None:
        if body is None:
            self._documents.forget(kind, doc_id)
        else:
            self._documents.remember(kind, doc_id, orjson.loads(body))
        self.doc_writes += 1
        self.generation += 1

    def remote_all(self, records: list[tuple[str, Fields]], docs: dict[str, dict[str, str]], doc_writes: int) -> None:
        self.remote_keys(records)
        if doc_writes != self.doc_writes:
            return  # documents were written since this was read: the next refresh reads them again
        changed = False
        for kind in set(docs) | set(self._documents.kinds()):
            stored = docs.get(kind, {})
            for doc_id, _ in self._documents.items(kind):
                if doc_id not in stored:
                    self._documents.forget(kind, doc_id)
                    changed = True
            for doc_id, body in stored.items():
                parsed = orjson.loads(body)
                if self._documents.peek(kind, doc_id) != parsed:
                    self._documents.remember(kind, doc_id, parsed)
                    changed = True
        if changed:
            self.generation += 1
