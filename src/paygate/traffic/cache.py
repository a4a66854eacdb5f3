"""The response cache (docs/traffic.md#response-cache): a call stage that answers a repeated tool call
from memory, without running it and without charging it.

Keyed by the tool and its canonical arguments (call_key.py), scoped to the billed key unless the tool is
declared shared (`toolPricing[t].cacheShared`). An answer is served only to a caller the gate would let
make the call (key valid and active, addresses, the tool's ACL and the token's tools: the checks that
charge nothing); a caller it would refuse goes on to the gate, which refuses it as ever. Only successful
results of calls that really ran are kept. A bounded LRU per instance (by entries and by bytes), each
entry with its tool's TTL; the settings an admin sets at runtime are kept in the store.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from paygate.billing.service import BillingService
from paygate.core.domain_errors import Invalid
from paygate.events.hub import EventHub
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.call_key import answered, call_digest
from paygate.traffic.chain import Proceed, ToolCall

DEFAULT_MAX_ENTRIES = 10_000  # when a TTL is set and maxCacheEntries is not
MAX_ENTRY_BYTES = 1 << 20  # a result bigger than this (serialised) is not kept
MAX_TOTAL_BYTES = 64 << 20  # all kept results together; the least recently used go first
META_KEY = "traffic.cache"  # the admin-set {ttlSeconds, maxEntries}
PURGE_EVERY = 30.0  # seconds between sweeps of expired entries
RELOAD_EVERY = 5.0  # seconds between re-reads of the admin-set settings on a shared (Redis) store

Slot = tuple[str, bytes]  # (the key's hash, or "" for a shared tool; the call's digest)


@dataclass(slots=True)
class _Entry:
    body: bytes  # the result, serialised: every hit gets its own copy
    tool: str
    expires: float


class ResponseCache:
    """The `cache` call stage, its entries and its counters."""

    name = "cache"

    def __init__(
        self,
        billing: BillingService,
        store: Store,
        events: EventHub,
        refresh: Callable[[], None],
        *,
        ttl_seconds: int,
        max_entries: int | None,
        tool_ttls: dict[str, int],
        shared_tools: frozenset[str],
        fleet: bool = False,
    ) -> None:
        self.billing = billing
        self.store = store
        self.events = events
        self._refresh = refresh  # Traffic.refresh: the chain follows `enabled`
        self.ttl_seconds = ttl_seconds
        self.max_entries = DEFAULT_MAX_ENTRIES if max_entries is None else max_entries
        self.tool_ttls = tool_ttls  # toolPricing[t].cacheTtlSeconds where set (0: this tool is never cached)
        self.shared_tools = shared_tools
        self.fleet = fleet
        self.clock: Callable[[], float] = time.time
        self.enabled = False
        self._entries: OrderedDict[Slot, _Entry] = OrderedDict()
        self._bytes = 0
        self.hits: Counter[str] = Counter()  # by tool label (metrics.tool_label: bounded)
        self.misses: Counter[str] = Counter()
        self._next_purge = 0.0
        self._next_reload = 0.0
        self._stored: str | None = None
        self._apply()

    # the call path ---------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        ttl = self.tool_ttls.get(call.tool, self.ttl_seconds)
        if ttl <= 0:
            return await proceed(call)
        ctx = call.ctx
        key = self.billing.resolve(ctx.raw_key)
        digest = call_digest(call.tool, call.params)
        if key is None or digest is None:
            return await proceed(call)  # the gate refuses it as ever (or it is never matched)
        slot = ("" if call.tool in self.shared_tools else key.key_hash, digest)
        label = self.billing.metrics.tool_label(call.tool)
        entry = self._entries.get(slot)
        if entry is not None and entry.expires <= self.clock():
            self._drop(slot)
        elif entry is not None and self.billing.check_call_access(ctx.raw_key, call.tool, ctx.client)[1] is None:
            # a caller the gate's access checks refuse is never served: it goes on to the gate's refusal
            self._entries.move_to_end(slot)
            self.hits[label] += 1
            ctx.add_header(b"x-cache", b"HIT")
            ctx.key, ctx.credits = key, key.credits
            call.notes["credits"] = 0  # answered, for nothing (dedup keeps such an answer too)
            return {"jsonrpc": "2.0", "id": call.msg_id, "result": orjson.loads(entry.body)}
        self.misses[label] += 1
        ctx.add_header(b"x-cache", b"MISS")
        reply = await proceed(call)
        if "credits" in call.notes and answered(reply):  # it ran: a real, successful answer
            meta = reply["result"].get("_meta")
            if not (isinstance(meta, dict) and "paygate" in meta):  # not annotated for this one call (shadow)
                self._keep(slot, call.tool, reply["result"], self.clock() + ttl)
        return reply

    def _keep(self, slot: Slot, tool: str, result: dict[str, Any], expires: float) -> None:
        if self.max_entries <= 0:
            return
        try:
            body = orjson.dumps(result)
        except orjson.JSONEncodeError:  # nothing orjson cannot write is ever served from here
            return
        if len(body) > MAX_ENTRY_BYTES:
            return
        self._drop(slot)
        self._entries[slot] = _Entry(body, tool, expires)
        self._bytes += len(body)
        self._trim()

    def _drop(self, slot: Slot) -> None:
        entry = self._entries.pop(slot, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def _trim(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > MAX_TOTAL_BYTES):
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= len(oldest.body)

    # administration --------------------------------------------------------------------------
    def size(self) -> int:
        return len(self._entries)

    def view(self) -> dict[str, Any]:
        hits, misses = sum(self.hits.values()), sum(self.misses.values())
        per_tool: dict[str, dict[str, int]] = {}
        for entry in self._entries.values():
            per_tool.setdefault(entry.tool, {"entries": 0, "hits": 0, "misses": 0})["entries"] += 1
        for counts, field in ((self.hits, "hits"), (self.misses, "misses")):
            for tool, n in counts.items():
                per_tool.setdefault(tool, {"entries": 0, "hits": 0, "misses": 0})[field] = n
        return {
            "enabled": self.enabled,
            "ttlSeconds": self.ttl_seconds,
            "maxEntries": self.max_entries,
            "toolTtlSeconds": dict(sorted(self.tool_ttls.items())),
            "sharedTools": sorted(self.shared_tools),
            "entries": len(self._entries),
            "bytes": self._bytes,
            "hits": hits,
            "misses": misses,
            "hitRate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
            "tools": dict(sorted(per_tool.items())),
        }

    def clear(self, tool: str | None, actor: str) -> int:
        """Drop every entry, or every entry of one tool; the number dropped."""
        if tool is None:
            removed = len(self._entries)
            self._entries.clear()
            self._bytes = 0
        else:
            slots = [slot for slot, entry in self._entries.items() if entry.tool == tool]
            for slot in slots:
                self._drop(slot)
            removed = len(slots)
        self.events.publish("cache.cleared", actor, tool=tool, removed=removed)
        return removed

    def follow_config(self, tool_ttls: dict[str, int], shared_tools: frozenset[str]) -> Callable[[], None] | None:
        """A hot reload's `toolPricing[t].cacheTtlSeconds` / `cacheShared` (admin/reload.py): the commit that
        puts them in force (None: unchanged). A tool whose TTL or sharing changed loses its cached answers
        (they were stored under the old rules: who may read them, how long they live)."""
        if tool_ttls == self.tool_ttls and shared_tools == self.shared_tools:
            return None
        tools = {t for t in tool_ttls.keys() | self.tool_ttls.keys() if tool_ttls.get(t) != self.tool_ttls.get(t)}
        tools |= shared_tools ^ self.shared_tools

        def commit() -> None:
            for slot in [slot for slot, entry in self._entries.items() if entry.tool in tools]:
                self._drop(slot)
            self.tool_ttls, self.shared_tools = dict(tool_ttls), shared_tools
            self._apply()

        return commit

    def configure(self, ttl_seconds: int | None, max_entries: int | None, actor: str) -> None:
        """The global TTL and the bound, from now on and after a restart (kept in the store)."""
        if ttl_seconds is None and max_entries is None:
            raise Invalid("Give ttlSeconds, maxEntries or both")
        if ttl_seconds is not None:
            self.ttl_seconds = ttl_seconds
        if max_entries is not None:
            self.max_entries = max_entries
        self._stored = orjson.dumps({"ttlSeconds": self.ttl_seconds, "maxEntries": self.max_entries}).decode()
        self.store.set_meta(META_KEY, self._stored)
        self._apply()
        self.events.publish("cache.configured", actor, ttlSeconds=self.ttl_seconds, maxEntries=self.max_entries)

    def load(self) -> None:
        """The admin-set settings, if any (at start; on a shared store, every few seconds)."""
        raw = self.store.get_meta(META_KEY)
        if raw is None or raw == self._stored:
            return
        self._stored = raw
        data = orjson.loads(raw)
        self.ttl_seconds, self.max_entries = int(data["ttlSeconds"]), int(data["maxEntries"])
        self._apply()

    def _apply(self) -> None:
        self._trim()
        on = self.max_entries > 0 and (self.ttl_seconds > 0 or any(t > 0 for t in self.tool_ttls.values()))
        if on != self.enabled:
            self.enabled = on
            self._refresh()
        if not on:
            self._entries.clear()
            self._bytes = 0

    def tick(self, now: float) -> None:
        """Once a second: sweep expired entries now and then; follow a fleet peer's settings."""
        if self.fleet and now >= self._next_reload:
            self._next_reload = now + RELOAD_EVERY
            self.load()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            expired = [slot for slot, entry in self._entries.items() if entry.expires <= self.clock()]
            for slot in expired:
                self._drop(slot)


class CacheMetrics(Collector):
    """paygate_cache_entries, paygate_cache_hits_total and paygate_cache_misses_total, read at scrape time."""

    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache

    def collect(self) -> Iterable[Any]:
        cache = self._cache
        yield GaugeMetricFamily("paygate_cache_entries", "Answers held by the response cache", value=cache.size())
        for name, what, counts in (
            ("paygate_cache_hits", "Tool calls answered from the response cache (not run, not charged)", cache.hits),
            ("paygate_cache_misses", "Tool calls the response cache looked up and did not hold", cache.misses),
        ):
            family = CounterMetricFamily(name, what, labels=["tool"])
            for tool, n in sorted(counts.items()):
                family.add_metric([tool], n)
            yield family
