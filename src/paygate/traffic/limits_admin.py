"""Runtime administration of the concurrency limits and the priority queue (GET/POST /admin/concurrency,
GET/POST /admin/priority-queue): the views, the changes (audited as `concurrency.updated` and
`priority_queue.updated`), and their persistence in the store's meta table, so a restart keeps what an
admin set (it wins over the config file's values) and a Redis fleet's instances pick it up within
`RELOAD_SECONDS` (each still counts only its own calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from paygate.core.domain_errors import Invalid, NotFound
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.traffic.concurrency import CAUSES, LIMITS, ConcurrencyLimits
from paygate.traffic.priority import DEFAULT_TIER, TIERS, QueueConfig

META_LIMITS = "traffic.concurrency"
META_QUEUE = "traffic.priority_queue"
RELOAD_SECONDS = 5.0
MAX_KEY_TIERS = 10_000
SHOWN_KEYS = 100  # keys listed with their calls in flight (the busiest)


class LimitsAdmin:
    def __init__(
        self,
        limits: ConcurrencyLimits,
        store: Store,
        events: EventHub,
        find_key: Callable[[str], KeyRecord | None],
        on_switch: Callable[[], None],
    ) -> None:
        self.limits = limits
        self.store = store
        self.events = events
        self.find_key = find_key  # a raw key or an alias → its record
        self.on_switch = on_switch  # the stage was switched on or off: the traffic chains are rebuilt
        self._seen: dict[str, str | None] = {}
        self._last_reload = 0.0

    # persistence ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """What an admin set before (it overrides the config file's values), at start and from peers."""
        raw = self._seen[META_LIMITS] = self.store.get_meta(META_LIMITS)
        if raw:
            doc = orjson.loads(raw)
            self._apply_limits(_limit(doc.get("maxConcurrentPerKey")), _limit(doc.get("maxConcurrentPerTool")))
        raw = self._seen[META_QUEUE] = self.store.get_meta(META_QUEUE)
        if raw:
            self.limits.queue.config = QueueConfig.from_doc(orjson.loads(raw))
            self.limits.queue_changed()

    def reload(self, now: float) -> None:
        """A ticker: apply a change another instance of the fleet wrote (a cheap read when nothing did)."""
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        if any(self.store.get_meta(name) != seen for name, seen in self._seen.items()):
            self.load()

    def _put(self, name: str, doc: dict[str, Any]) -> None:
        raw = orjson.dumps(doc).decode()
        self.store.set_meta(name, raw)
        self._seen[name] = raw

    def _apply_limits(self, per_key: int, per_tool: int) -> None:
        was = self.limits.enabled
        self.limits.set_limits(per_key, per_tool)
        if self.limits.enabled != was:
            self.on_switch()

    # concurrency ---------------------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        limits = self.limits
        busiest = sorted(limits.keys.items(), key=lambda kv: -kv[1])[:SHOWN_KEYS]
        by_key = []
        for key_hash, count in busiest:
            key = self.store.get_key(key_hash)
            by_key.append({"key": key.masked if key else None, "name": key.name if key else None, "inFlight": count})
        rejections = {
            limit: {cause: limits.rejections[limit, cause] for cause in CAUSES} | {"total": self._refused(limit)}
            for limit in LIMITS
        }
        return {
            "enabled": limits.enabled,
            "maxConcurrentPerKey": limits.per_key,
            "maxConcurrentPerTool": limits.per_tool,
            "scope": "instance",
            "inFlight": {"total": limits.in_flight, "byKey": by_key, "byTool": dict(sorted(limits.tools.items()))},
            "queued": limits.queue.depth(),
            "retryAfterSeconds": limits.retry_after(),
            "rejections": {**rejections, "total": sum(limits.rejections.values())},
        }

    def _refused(self, limit: str) -> int:
        return sum(v for (lim, _), v in self.limits.rejections.items() if lim == limit)

    def update(self, per_key: int | None, per_tool: int | None, actor: str) -> dict[str, Any]:
        if per_key is None and per_tool is None:
            raise Invalid("Give maxConcurrentPerKey and/or maxConcurrentPerTool (0 = no limit)")
        new_key = self.limits.per_key if per_key is None else per_key
        new_tool = self.limits.per_tool if per_tool is None else per_tool
        self._put(META_LIMITS, {"maxConcurrentPerKey": new_key, "maxConcurrentPerTool": new_tool})
        self._apply_limits(new_key, new_tool)
        self.events.publish("concurrency.updated", actor, maxConcurrentPerKey=new_key, maxConcurrentPerTool=new_tool)
        return self.view()

    # priority queue ------------------------------------------------------------------------------------
    def queue_view(self) -> dict[str, Any]:
        queue = self.limits.queue
        config = queue.config
        assigned = []
        for key_hash, tier in sorted(config.key_tiers.items(), key=lambda kv: (TIERS.index(kv[1]), kv[0])):
            key = self.store.get_key(key_hash)
            assigned.append({"key": key.masked if key else None, "name": key.name if key else None, "tier": tier})
        return {
            "enabled": config.enabled,
            "tiers": list(TIERS),
            "defaultTier": DEFAULT_TIER,
            "maxQueueDepth": config.max_queue_depth,
            "maxWaitMs": dict(config.max_wait_ms),
            "promoteAfterMs": config.promote_after_ms,
            "keyTiers": assigned,
            "queued": {"total": queue.depth(), "byTier": queue.depth_by_tier()},
            "stats": queue.stats(),
            "scope": "instance",
        }

    def update_queue(
        self, changes: dict[str, Any], key_tiers: Mapping[str, str | None] | None, actor: str
    ) -> dict[str, Any]:
        """`changes`: any of enabled, maxQueueDepth, maxWaitMs (per tier, merged), promoteAfterMs;
        `key_tiers`: key or alias → tier (None: back to the default). Every key is found before anything
        changes."""
        if not changes and not key_tiers:
            raise Invalid("Nothing to change: give enabled, maxQueueDepth, maxWaitMs, promoteAfterMs or keyTiers")
        old = self.limits.queue.config
        doc = old.to_doc()
        doc.update({k: v for k, v in changes.items() if k != "maxWaitMs"})
        doc["maxWaitMs"] = {**old.max_wait_ms, **changes.get("maxWaitMs", {})}
        tiers: dict[str, str] = dict(old.key_tiers)
        for ref, tier in (key_tiers or {}).items():
            key = self.find_key(ref)
            if key is None:
                raise NotFound("keyTiers: API key or alias not found")
            if tier is None or tier == DEFAULT_TIER:
                tiers.pop(key.key_hash, None)
            else:
                tiers[key.key_hash] = tier
        if len(tiers) > MAX_KEY_TIERS:
            raise Invalid(f"keyTiers: at most {MAX_KEY_TIERS} keys may have a tier of their own")
        doc["keyTiers"] = tiers
        self._put(META_QUEUE, doc)
        self.limits.queue.config = QueueConfig.from_doc(doc)
        self.limits.queue_changed()
        self.events.publish(
            "priority_queue.updated",
            actor,
            changed=sorted([*changes, *(["keyTiers"] if key_tiers else [])]),
            enabled=doc["enabled"],
            keysAssigned=len(key_tiers or {}),
        )
        return self.queue_view()


def _limit(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
