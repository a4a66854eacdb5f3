"""Dedup / idempotency (docs/traffic.md#dedup--idempotency): a call stage that gives a repeated
`X-Idempotency-Key` the first call's answer without running or charging it again.

Scoped to the billed key: two keys using the same idempotency key never see each other's answers. The
same idempotency key with another tool or other arguments is refused (-32602), uncharged. Concurrent
duplicates wait for the first and get its answer, whatever it is. Once a call is done its answer is
kept for the window only if the call was admitted (it ran, or was answered from the cache): a call
refused before any charge leaves nothing behind, so a retry after a top-up runs. Calls without the
header are never merged unless `autoKey` is on (then the key is the call's own digest). Settings an
admin sets at runtime are kept in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from paygate.billing.service import BillingService
from paygate.core import errors
from paygate.core.domain_errors import Invalid
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.call_key import call_digest
from paygate.traffic.chain import Proceed, ToolCall

HEADER = b"x-idempotency-key"
MAX_KEY_LENGTH = 200
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 64 << 20  # all kept answers together; the least recently used go first
META_KEY = "traffic.dedup"  # the admin-set {enabled, windowSeconds, maxEntries, autoKey}
PURGE_EVERY = 30.0
RELOAD_EVERY = 5.0
INVALID_KEY = f"X-Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters; the call was not run"
INTERRUPTED = "The first call with this X-Idempotency-Key was interrupted before it answered; retry it"

Slot = tuple[str, bytes]  # (the billed key's hash, the idempotency key or the call's digest)


@dataclass(slots=True)
class _Entry:
    fingerprint: bytes  # the call's digest: the same key for another call is refused
    waiting: asyncio.Future[bytes] | None  # while the first call runs; its answer (serialised, no id)
    body: bytes = b""
    credits: int = 0  # what the first call cost: saved by every replay
    expires: float = 0.0


def key_problem(raw: bytes) -> bool:
    return not 1 <= len(raw) <= MAX_KEY_LENGTH or any(b < 0x20 or b > 0x7E for b in raw) or not raw.strip()


class Dedup:
    """The `dedup` call stage, its entries and its counters."""

    name = "dedup"

    def __init__(
        self,
        billing: BillingService,
        store: Store,
        events: EventHub,
        refresh: Callable[[], None],
        *,
        enabled: bool,
        window_seconds: int,
        max_entries: int,
        auto_key: bool,
        fleet: bool = False,
    ) -> None:
        self.billing = billing
        self.store = store
        self.events = events
        self._refresh = refresh
        self.enabled = enabled
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self.auto_key = auto_key
        self.fleet = fleet
        self.clock: Callable[[], float] = time.time
        self._entries: OrderedDict[Slot, _Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0  # replays of a finished call
        self.coalesced = 0  # duplicates that waited for the first call
        self.conflicts = 0  # a key reused for another call: refused
        self.credits_saved = 0
        self._next_purge = 0.0
        self._next_reload = 0.0
        self._stored: str | None = None

    # the call path ---------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        ctx = call.ctx
        headers = ctx.client.headers
        given = headers.get(HEADER) if headers else None
        if given is None and not self.auto_key:
            return await proceed(call)
        if given is not None and key_problem(given):
            return jsonrpc.error(call.msg_id, errors.INVALID_PARAMS, INVALID_KEY)
        digest = call_digest(call.tool, call.params)
        if digest is None:
            if given is None:
                return await proceed(call)
            why = "arguments this gateway cannot compare (integers beyond 64 bits)"
            return jsonrpc.error(call.msg_id, errors.INVALID_PARAMS, f"X-Idempotency-Key with {why}")
        key = self.billing.resolve(ctx.raw_key)
        if key is None:
            return await proceed(call)  # the gate refuses it as ever
        slot = (key.key_hash, b"h:" + given if given is not None else b"a:" + digest)
        entry = self._entries.get(slot)
        if entry is not None and entry.waiting is None and entry.expires <= self.clock():
            self._drop(slot)
            entry = None
        if entry is None:
            return await self._first(call, proceed, slot, digest)  # the gate checks it
        if self.billing.check_call_access(ctx.raw_key, call.tool, ctx.client)[1] is not None:
            return await proceed(call)  # nothing replayed to a caller the gate refuses: it refuses it as ever
        if entry.fingerprint != digest:
            self.conflicts += 1
            why = "was used for another call (another tool or other arguments)"
            return jsonrpc.error(
                call.msg_id,
                errors.INVALID_PARAMS,
                f"X-Idempotency-Key {why} in the last {self.window_seconds} s; not run",
            )
        if entry.waiting is not None:
            self.coalesced += 1
            body = await asyncio.shield(entry.waiting)
        else:
            self.hits += 1
            self._entries.move_to_end(slot)
            body = entry.body
        self.credits_saved += entry.credits
        ctx.add_header(b"x-idempotent-replay", b"true")
        ctx.key, ctx.credits = key, key.credits
        call.notes["credits"] = 0
        reply: Message = orjson.loads(body)
        reply["id"] = call.msg_id
        return reply

    async def _first(self, call: ToolCall, proceed: Proceed, slot: Slot, digest: bytes) -> Message:
        waiting: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        entry = _Entry(digest, waiting)
        self._entries[slot] = entry
        try:
            reply = await proceed(call)
            body = orjson.dumps({k: v for k, v in reply.items() if k != "id"})
        except BaseException:  # cancelled (the gateway stopping): the waiters get an error, nothing is kept
            self._forget(slot, entry)
            waiting.set_result(orjson.dumps(jsonrpc.error(None, errors.INTERNAL_ERROR, INTERRUPTED)))
            raise
        entry.waiting = None
        credits = call.notes.get("credits")
        if credits is None:  # refused before any charge: nothing to protect, a retry may run
            self._forget(slot, entry)
        elif self.enabled and self._entries.get(slot) is entry:
            entry.body, entry.credits, entry.expires = body, credits, self.clock() + self.window_seconds
            self._bytes += len(body)
            self._trim()
        waiting.set_result(body)
        return reply

    def _forget(self, slot: Slot, entry: _Entry) -> None:
        if self._entries.get(slot) is entry:
            del self._entries[slot]

    def _drop(self, slot: Slot) -> None:
        entry = self._entries.pop(slot, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def _trim(self) -> None:
        """Least recently used finished entries first; a call still running is never dropped."""
        while len(self._entries) > self.max_entries or self._bytes > MAX_TOTAL_BYTES:
            oldest = next((slot for slot, entry in self._entries.items() if entry.waiting is None), None)
            if oldest is None:
                return
            self._drop(oldest)

    # administration --------------------------------------------------------------------------
    def size(self) -> int:
        return len(self._entries)

    def view(self) -> dict[str, Any]:
        running = sum(1 for entry in self._entries.values() if entry.waiting is not None)
        return {
            **self.settings(),
            "entries": len(self._entries) - running,
            "inFlight": running,
            "bytes": self._bytes,
            "hits": self.hits,
            "coalesced": self.coalesced,
            "conflicts": self.conflicts,
            "creditsSaved": self.credits_saved,
        }

    def settings(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "windowSeconds": self.window_seconds,
            "maxEntries": self.max_entries,
            "autoKey": self.auto_key,
        }

    def clear(self, actor: str) -> int:
        """Forget every finished call (calls still running keep their waiters); the number forgotten."""
        done = [slot for slot, entry in self._entries.items() if entry.waiting is None]
        for slot in done:
            self._drop(slot)
        self.events.publish("dedup.cleared", actor, removed=len(done))
        return len(done)

    def configure(self, changes: dict[str, Any], actor: str) -> None:
        """Any of enabled / windowSeconds / maxEntries / autoKey, from now on and after a restart."""
        if not changes:
            raise Invalid("Give at least one of enabled, windowSeconds, maxEntries, autoKey")
        self._set({**self.settings(), **changes})
        self._stored = orjson.dumps(self.settings()).decode()
        self.store.set_meta(META_KEY, self._stored)
        self.events.publish("dedup.configured", actor, **self.settings())

    def load(self) -> None:
        """The admin-set settings, if any (at start; on a shared store, every few seconds)."""
        raw = self.store.get_meta(META_KEY)
        if raw is None or raw == self._stored:
            return
        self._stored = raw
        self._set(orjson.loads(raw))

    def _set(self, data: dict[str, Any]) -> None:
        was = self.enabled
        self.enabled, self.auto_key = bool(data["enabled"]), bool(data["autoKey"])
        self.window_seconds, self.max_entries = int(data["windowSeconds"]), int(data["maxEntries"])
        if not self.enabled:
            self._entries = OrderedDict((s, e) for s, e in self._entries.items() if e.waiting is not None)
            self._bytes = 0
        self._trim()
        if self.enabled != was:
            self._refresh()

    def tick(self, now: float) -> None:
        """Once a second: sweep expired entries now and then; follow a fleet peer's settings."""
        if self.fleet and now >= self._next_reload:
            self._next_reload = now + RELOAD_EVERY
            self.load()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            clock = self.clock()
            expired = [s for s, e in self._entries.items() if e.waiting is None and e.expires <= clock]
            for slot in expired:
                self._drop(slot)


class DedupMetrics(Collector):
    """paygate_dedup_entries, paygate_dedup_replays_total{kind}, paygate_dedup_credits_saved_total."""

    def __init__(self, dedup: Dedup) -> None:
        self._dedup = dedup

    def collect(self) -> Iterable[Any]:
        d = self._dedup
        yield GaugeMetricFamily(
            "paygate_dedup_entries", "Idempotency keys remembered (finished or running)", value=d.size()
        )
        replays = CounterMetricFamily(
            "paygate_dedup_replays", "Calls answered with an earlier call's answer, not run again", labels=["kind"]
        )
        replays.add_metric(["finished"], d.hits)
        replays.add_metric(["coalesced"], d.coalesced)
        yield replays
        yield CounterMetricFamily(
            "paygate_dedup_conflicts", "Idempotency keys reused for another call: refused", value=d.conflicts
        )
        yield CounterMetricFamily(
            "paygate_dedup_credits_saved", "Credits the replayed calls would have cost", value=d.credits_saved
        )
