"""Other instances' changes, taken in: pub/sub messages as they happen, and a full refresh as a safety net.

Every script that changes money or a key record, and every document write, publishes one line on the
prefix's channel: `m|instance|hash c s n u v|…` (money, inline), `k|instance|hash|…` (records to read
again), `d|instance|kind|id` (a document to read again). This thread subscribes, reads what a message
names, and hands it to the store on the event loop. Messages of this instance are skipped: it already
applied them. Every `REFRESH_SECONDS`, and after every reconnect (messages sent meanwhile are lost), it
reads every key and document again, so nothing missed stays missed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from paygate.store.redis_backend.codec import MoneyState
from paygate.store.redis_backend.names import LINK_ERRORS, Names, as_text
from paygate.store.redis_backend.writer import MAX_BACKOFF, Link

log = logging.getLogger("paygate.store")

REFRESH_SECONDS = 5.0
ALIVE_SECONDS = 30  # an instance not heard of for this long is dead: its webhook outbox may be adopted
CHUNK = 500

Fields = dict[Any, Any]  # a key's HASH as HGETALL returns it


class Receiver(Protocol):
    """What the store does with what arrives (each called on the event loop)."""

    def remote_money(self, states: list[tuple[str, MoneyState]]) -> None: ...
    def remote_keys(self, records: list[tuple[str, Fields]]) -> None: ...
    def remote_doc(self, kind: str, doc_id: str, body: str | None) -> None: ...
    # `doc_writes`: the receiver's count of document writes when the read began (a read older than a
    # write since must not undo it)
    def remote_all(
        self, records: list[tuple[str, Fields]], docs: dict[str, dict[str, str]], doc_writes: int
    ) -> None: ...

    doc_writes: int


def read_keys(client: redis.Redis, names: Names, hashes: list[str]) -> list[tuple[str, Fields]]:
    found: list[tuple[str, Fields]] = []
    for start in range(0, len(hashes), CHUNK):
        part = hashes[start : start + CHUNK]
        pipe = client.pipeline(transaction=False)
        for h in part:
            pipe.hgetall(names.key(h))
        found += [(h, f) for h, f in zip(part, pipe.execute(), strict=True) if f]
    return found


def read_docs(client: redis.Redis, names: Names) -> dict[str, dict[str, str]]:
    kinds = sorted(as_text(k) for k in client.smembers(names.doc_kinds))
    pipe = client.pipeline(transaction=False)
    for kind in kinds:
        pipe.hgetall(names.docs(kind))
    return {
        kind: {as_text(i): as_text(b) for i, b in got.items()} for kind, got in zip(kinds, pipe.execute(), strict=True)
    }


def read_all(client: redis.Redis, names: Names) -> tuple[list[tuple[str, Fields]], dict[str, dict[str, str]]]:
    hashes = sorted(as_text(h) for h in client.smembers(names.keys))
    return read_keys(client, names, hashes), read_docs(client, names)


class Listener:
    def __init__(
        self,
        client: redis.Redis,
        names: Names,
        instance: str,
        link: Link,
        receiver: Receiver,
        post: Callable[[Callable[[], None]], None],
    ) -> None:
        self.client = client
        self.names = names
        self.instance = instance
        self.link = link
        self.receiver = receiver
        self.post = post
        self.subscribed: bool | None = False  # None: lost, and not subscribed again yet
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="paygate-redis-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        self.link.wake.set()
        with contextlib.suppress(*LINK_ERRORS):  # wakes the thread out of its wait for a message
            self.client.publish(self.names.events, f"q|{self.instance}")
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        pubsub: Any = None
        next_refresh = 0.0
        delay = 0.05
        while not self._closing:
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.names.events)
                    # the store read everything when it opened; after a reconnect, catch up at once
                    next_refresh = 0.0 if self.subscribed is None else time.monotonic() + REFRESH_SECONDS
                    self.subscribed = True
                if time.monotonic() >= next_refresh:
                    self.client.set(self.names.alive(self.instance), "1", ex=ALIVE_SECONDS)
                    writes = self.receiver.doc_writes
                    records, docs = read_all(self.client, self.names)
                    self.post(lambda r=records, d=docs, w=writes: self.receiver.remote_all(r, d, w))  # type: ignore[misc]
                    next_refresh = time.monotonic() + REFRESH_SECONDS
                    self.link.up = True
                    delay = 0.05
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self._handle(as_text(message["data"]))
            except LINK_ERRORS as exc:
                if self.subscribed:
                    log.warning("redis: connection lost (%s); reconnecting", exc)
                self.link.up = False
                self.subscribed = None
                if pubsub is not None:
                    with contextlib.suppress(*LINK_ERRORS):
                        pubsub.close()
                    pubsub = None
                self.link.wake.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            except Exception:  # a malformed message must not stop the listener
                log.exception("redis: could not take in a message")
        if pubsub is not None:
            pubsub.close()

    def _handle(self, data: str) -> None:
        kind, instance, *rest = data.split("|")
        if instance == self.instance:
            return
        if kind == "m":
            states = []
            for entry in rest:
                words = entry.split(" ")
                states.append((words[0], MoneyState.parse(words[1:6])))
            self.post(lambda: self.receiver.remote_money(states))
        elif kind == "k":
            records = read_keys(self.client, self.names, rest)
            self.post(lambda: self.receiver.remote_keys(records))
        elif kind == "d" and len(rest) >= 2:
            doc_kind, doc_id = rest[0], "|".join(rest[1:])
            raw = self.client.hget(self.names.docs(doc_kind), doc_id)
            body = None if raw is None else as_text(raw)
            self.post(lambda: self.receiver.remote_doc(doc_kind, doc_id, body))
