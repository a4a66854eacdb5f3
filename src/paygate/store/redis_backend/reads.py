"""The Redis store's reads of shared history (usage, ledger) and its rate windows (a mixin of RedisStore).

Usage is one stream for the whole fleet, capped (lanes.USAGE_CAP, trimmed oldest first): each entry is a
call (`e`) or a refund mark (`r`, so `usage_sums` can take refunded calls back out). A rotated key's old
rows keep its old hash in the stream; reads follow the `rotated` map to the key's current hash.
Rate windows are sorted sets (the callers' clock: scripts.RATE), hit by one script each (scripts.RATE): exact across
instances. With Redis unreachable a window admits (the charge that follows is refused anyway: fail closed).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import orjson
import redis

from paygate.core.ratelimit import WINDOW_SECONDS, RateDecision
from paygate.core.records import LedgerEntry, UsageEvent
from paygate.store.errors import StoreUnavailable
from paygate.store.redis_backend import codec
from paygate.store.redis_backend.codec import ledger_from, usage_from
from paygate.store.redis_backend.names import Names, as_text, guarded
from paygate.store.redis_backend.scripts import RATE, RATE_MOVE
from paygate.store.redis_backend.writer import ChargeWriter, Link

CHUNK = 1000
STREAM_SLACK_MS = 60_000  # rows are stamped by their gateway's clock, ordered by Redis's: scan a minute wider
WINDOW_MS = int(WINDOW_SECONDS * 1000)
_unique = itertools.count(1)


def _matches(event: UsageEvent, since: float | None, key_hash: str | None, namespace: str | None) -> bool:
    return (
        (since is None or event.timestamp >= since)
        and (key_hash is None or event.key_hash == key_hash)
        and (namespace is None or event.namespace == namespace)
    )


def _stream_id(ts: float | None) -> str:
    return "-" if not ts else str(max(int(ts * 1000) - STREAM_SLACK_MS, 0))


class RedisReads:
    client: redis.Redis
    names: Names
    link: Link
    instance: str
    writer: ChargeWriter

    def _init_reads(self) -> None:
        self._rate = self.client.register_script(RATE)
        self._rate_move = self.client.register_script(RATE_MOVE)
        self._unique_prefix = uuid.uuid4().hex[:8]

    def _successors(self) -> dict[str, str]:
        """Old key hash -> the key that holds it now (following rotations of rotations)."""
        raw = guarded(lambda: self.client.hgetall(self.names.rotated))
        step = {as_text(k): as_text(v) for k, v in raw.items()}
        final: dict[str, str] = {}
        for old in step:
            seen, h = {old}, step[old]
            while h in step and h not in seen:
                seen.add(h)
                h = step[h]
            final[old] = h
        return final

    def _rows(self, since: float | None) -> Iterator[tuple[str, Any]]:
        """(field, value) of every stream entry since `since`, newest first, read in chunks."""
        low, high = _stream_id(since), "+"
        while True:
            entries: list[tuple[Any, dict[Any, Any]]] = guarded(
                partial(self.client.xrevrange, self.names.usage, high, low, count=CHUNK)  # type: ignore[arg-type]
            )
            for _, fields in entries:
                for field, value in fields.items():
                    yield as_text(field), value
            if len(entries) < CHUNK:
                return
            high = "(" + as_text(entries[-1][0])

    # usage -------------------------------------------------------------------------------------------------
    def query_usage(
        self,
        since: float | None = None,
        limit: int = 10_000,
        *,
        key_hash: str | None = None,
        namespace: str | None = None,
    ) -> list[UsageEvent]:
        """The newest `limit` events since `since` (oldest first), optionally of one key or namespace."""
        successors = self._successors()
        pending = self._pending_rows()
        found: list[UsageEvent] = []
        for field, value in self._rows(since):
            if field != "e":
                continue
            pending.pop(value, None)  # Redis has it already: counted once, from the stream
            if len(found) >= limit:
                break
            event = usage_from(value)
            event.key_hash = successors.get(event.key_hash, event.key_hash)
            if _matches(event, since, key_hash, namespace):
                found.append(event)
        newest = [e for e in reversed(pending.values()) if _matches(e, since, key_hash, namespace)]
        found = (newest + found)[:limit]
        found.reverse()
        return found

    def _pending_rows(self) -> dict[bytes, UsageEvent]:
        """This instance's decided calls Redis may not hold yet, by the exact row it will write."""
        return {codec.usage_json(e).encode(): e for held in self.writer.unsent() for e in held.events}

    def usage_sums(self, since: float) -> dict[str, tuple[int, int]]:
        """Calls admitted and charged, and their credits, per key since `since`, less refunded calls and
        without shadow mode's rows (as store/usage_queries.py on SQLite)."""
        successors = self._successors()
        calls: dict[str, list[int]] = {}
        pending = self._pending_rows()

        def rows() -> Iterator[tuple[str, Any]]:
            for field, value in self._rows(since):
                if field == "e":
                    pending.pop(value, None)  # Redis has it: counted once, from the stream
                yield field, value
            yield from (("e", e) for e in pending.values())  # what Redis does not have yet

        for field, value in rows():
            if field == "e":
                e = value if isinstance(value, UsageEvent) else usage_from(value)
                if not e.allowed or e.timestamp < since or (e.deny_reason or "").startswith("shadow"):
                    continue
                sums = calls.setdefault(successors.get(e.key_hash, e.key_hash), [0, 0])
                sums[0] += 1
                sums[1] += e.credits
            elif field == "r":
                h, credits, ts = orjson.loads(value)
                if ts >= since:
                    sums = calls.setdefault(successors.get(h, h), [0, 0])
                    sums[0] -= 1
                    sums[1] -= credits
        return {h: (max(n, 0), max(c, 0)) for h, (n, c) in calls.items() if n > 0 or c > 0}

    # ledger ------------------------------------------------------------------------------------------------
    def ledger(self, key_hash: str | None = None) -> list[LedgerEntry]:
        hashes = (
            [key_hash]
            if key_hash is not None
            else [as_text(h) for h in guarded(lambda: self.client.smembers(self.names.keys))]
        )
        pipe = self.client.pipeline(transaction=False)
        for h in hashes:
            pipe.zrange(self.names.ledger(h), 0, -1)
        entries = [ledger_from(h, text) for h, got in zip(hashes, guarded(pipe.execute), strict=True) for text in got]
        entries.sort(key=lambda e: e[0])
        return [entry for _, entry in entries]

    def ledger_page(
        self, key_hash: str, limit: int, *, since: float | None = None, before: int | None = None
    ) -> list[tuple[int, LedgerEntry]]:
        """One key's newest `limit` entries (newest first) since `since`, older than entry `before`."""
        high = f"({before}" if before is not None else "+inf"
        page: list[tuple[int, LedgerEntry]] = []
        while len(page) < limit:
            got: list[bytes] = guarded(
                partial(self.client.zrevrangebyscore, self.names.ledger(key_hash), high, "-inf", start=0, num=CHUNK)  # type: ignore[arg-type]
            )
            for text in got:
                seq, entry = ledger_from(key_hash, text)
                if since is not None and entry.timestamp < since:
                    return page
                page.append((seq, entry))
                if len(page) >= limit:
                    return page
            if len(got) < CHUNK:
                return page
            high = f"({page[-1][0]}"
        return page

    def ledger_count(self, key_hash: str) -> int:
        return int(guarded(lambda: self.client.zcard(self.names.ledger(key_hash))))

    # rate windows ------------------------------------------------------------------------------------------
    def _window(self, subject: str, limit: int, mode: str, now: float) -> RateDecision:
        if limit <= 0:
            return RateDecision(True, 0, 0, 0)
        if not self.link.up:
            return RateDecision(True, limit, limit, int(WINDOW_SECONDS))
        owner = subject.split("\x00", 1)[0]
        unique = f"{self._unique_prefix}{next(_unique)}"
        args = [self.names.base, subject, owner, str(limit), mode, unique, str(WINDOW_MS), str(int(now * 1000))]
        try:
            allowed, remaining, reset = guarded(lambda: self._rate(args=args))
        except StoreUnavailable:
            self.link.up = False
            return RateDecision(True, limit, limit, int(WINDOW_SECONDS))
        return RateDecision(bool(allowed), limit, int(remaining), int(reset))

    def rate_hit(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._window(subject, limit, "hit", now)

    def rate_peek(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._window(subject, limit, "peek", now)

    def rate_undo(self, subject: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # lost with Redis: the window over-counts one call
            guarded(lambda: self.client.zpopmax(self.names.rate(subject)))

    def rate_move(self, old_key: str, new_key: str) -> None:
        guarded(lambda: self._rate_move(args=[self.names.base, old_key, new_key]))

    def rate_sweep(self, now: float) -> None:
        """Nothing to do: every window expires in Redis a minute after its last hit."""
