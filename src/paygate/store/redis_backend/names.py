"""Where each piece of state lives in Redis, and the one way the store talks to it synchronously.

Every name starts with the prefix in braces (`{paygate}:…`): a Redis Cluster hash tag, so all of one
gateway's keys sit in one slot and every Lua script may touch any of them. Several gateways (or test
cases) share one Redis by using different prefixes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

from paygate.store.errors import StoreUnavailable

T = TypeVar("T")

# What a lost or refused connection raises (redis-py wraps socket errors in these).
LINK_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class Names:
    def __init__(self, prefix: str) -> None:
        if not prefix or any(c in prefix for c in "{}: \n"):
            raise ValueError(f"redis prefix must be a plain word, not {prefix!r}")
        self.base = "{" + prefix + "}"
        self.keys = f"{self.base}:keys"  # SET of key hashes
        self.aliases = f"{self.base}:aliases"  # HASH alias -> key hash
        self.rotated = f"{self.base}:rotated"  # HASH old key hash -> its successor (usage rows follow it)
        self.seq = f"{self.base}:seq"  # ledger entry numbers
        self.usage = f"{self.base}:usage"  # STREAM of usage rows and refund marks
        self.applied = f"{self.base}:applied"  # HASH instance lane -> last applied op batch
        self.doc_kinds = f"{self.base}:dockinds"  # SET of document kinds
        self.meta = f"{self.base}:meta"  # HASH
        self.once = f"{self.base}:once"  # HASH once id -> "requested moved" (Money.move_once, scripts.MONEY)
        self.events = f"{self.base}:events"  # pub/sub channel: what changed, for other instances' caches
        self.event_ids = f"{self.base}:eventids"  # counter: blocks of event ids, unique across the fleet

    def key(self, key_hash: str) -> str:
        return f"{self.base}:k:{key_hash}"

    def ledger(self, key_hash: str) -> str:
        return f"{self.base}:l:{key_hash}"

    def docs(self, kind: str) -> str:
        return f"{self.base}:d:{kind}"

    def quota(self, subject: str) -> str:
        """A quota counter (HASH d dc dk m mc mk spent) of a key hash or `team:<id>`."""
        return f"{self.base}:q:{subject}"

    def rate(self, subject: str) -> str:
        return f"{self.base}:rw:{subject}"

    def alive(self, instance: str) -> str:
        """Present while the instance runs (refreshed by its listener, with a time to live)."""
        return f"{self.base}:alive:{instance}"

    def rate_subjects(self, key_hash: str) -> str:
        return f"{self.base}:rs:{key_hash}"

    def sub(self, *parts: str) -> str:
        """A name of a store part of its own (the audit log, the outbox): `{prefix}:part:…`."""
        return ":".join((self.base, *parts))


def guarded(call: Callable[[], T]) -> T:
    """Run one synchronous Redis command (or pipeline); a lost connection becomes StoreUnavailable."""
    try:
        return call()
    except LINK_ERRORS as exc:
        raise StoreUnavailable(f"redis unreachable: {exc}") from exc


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
