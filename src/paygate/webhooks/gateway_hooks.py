"""Gateway hooks: outbound HTTP calls on chosen events (GET/POST/DELETE /admin/gateway-hooks).

A gateway hook is one more webhook destination (id `gh_…`, kind `hook`) with an event filter: it is
routed by `Routes.destinations_for`, queued in the same durable outbox, sent by the same worker
(batched, signed with its own secret, retried with backoff, dead-lettered into the same DLQ, replayable
from /webhooks/replay and /admin/webhook-replay), and its URL passes the same SSRF checks (at creation and
at every delivery, `webhookAllowPrivate` included). What it adds: event patterns checked against the
bus's vocabulary (`events/types.py`), an `enabled` switch, a per-hook timeout, a bound on what may wait
for it, and its own counters. Hooks are documents of kind `gateway_hook` (they survive a restart).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from paygate.core.values import iso_time
from paygate.events.types import EVENT_TYPES
from paygate.store.base import Store
from paygate.store.outbox import OutboxRow
from paygate.webhooks.checks import WebhookConflict, WebhookInvalid, WebhookNotFound, clean_url
from paygate.webhooks.routing import Destination

log = logging.getLogger("paygate.webhooks")

HOOK_DOC = "gateway_hook"
HOOK_PREFIX = "gh_"
MAX_HOOKS = 50
MAX_PATTERNS = 50
MAX_QUEUED = 10_000  # events waiting for one hook (not yet in a batch); past this new ones are dropped, counted
DEFAULT_TIMEOUT_MS = 5_000


def clean_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """`"*"`, an event type the gateway publishes, or a prefix `"key.*"` that names at least one."""
    names = tuple(dict.fromkeys(p.strip() for p in patterns))
    if not names or len(names) > MAX_PATTERNS:
        raise WebhookInvalid(f'Invalid request: events must list 1 to {MAX_PATTERNS} event types, prefixes or "*"')
    for name in names:
        if name == "*" or name in EVENT_TYPES:
            continue
        if name.endswith(".*") and any(t.startswith(name[:-1]) for t in EVENT_TYPES):
            continue
        raise WebhookInvalid(
            f"Invalid request: events: {name[:64]!r} is not an event type the gateway publishes, "
            'a prefix like "key.*", or "*" (see docs/events.md)'
        )
    return names


def matches(patterns: tuple[str, ...], event_type: str) -> bool:
    return any(p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])) for p in patterns)


@dataclass(frozen=True, slots=True)
class GatewayHook:
    id: str
    name: str
    url: str
    events: tuple[str, ...]
    secret: str | None = None
    enabled: bool = True
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "secret": self.secret,
            "enabled": self.enabled,
            "timeoutMs": self.timeout_ms,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    @staticmethod
    def of(doc: Mapping[str, Any]) -> GatewayHook:
        return GatewayHook(
            str(doc["id"]),
            str(doc["name"]),
            str(doc["url"]),
            tuple(doc["events"]),
            doc.get("secret"),
            bool(doc.get("enabled", True)),
            int(doc.get("timeoutMs") or DEFAULT_TIMEOUT_MS),
            float(doc.get("createdAt") or 0),
            float(doc.get("updatedAt") or 0),
        )

    def public(self) -> dict[str, Any]:
        """As the API shows it: URL scheme + host only (`shown`), the secret never."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.destination().public()["url"],
            "events": list(self.events),
            "hasSecret": self.secret is not None,
            "enabled": self.enabled,
            "timeoutMs": self.timeout_ms,
            "createdAt": iso_time(self.created_at),
            "updatedAt": iso_time(self.updated_at),
        }

    def destination(self) -> Destination:
        return Destination(self.id, "hook", self.url, self.secret, name=self.name, timeout=self.timeout_ms / 1000)


class GatewayHooks:
    """The hooks, kept in the store; `Routes` asks it where an event goes and what a `gh_…` id is."""

    def __init__(self, store: Store, allow_private: bool) -> None:
        self.store = store
        self.allow_private = allow_private
        self.hooks: dict[str, GatewayHook] = {}
        self.dropped: dict[str, int] = {}  # events not queued because the hook's queue was full

    def reload(self) -> None:
        hooks = {}
        for doc in self.store.doc_list(HOOK_DOC):
            try:
                hook = GatewayHook.of(doc)
            except (KeyError, TypeError, ValueError):  # e.g. a hand-edited backup: skip it, keep the rest
                log.warning("ignoring a malformed gateway hook document")
                continue
            hooks[hook.id] = hook
        self.hooks = hooks

    # routing ---------------------------------------------------------------------------------
    def destinations_for(self, event_type: str) -> list[str]:
        return [h.id for h in self.hooks.values() if h.enabled and matches(h.events, event_type)]

    def destination(self, dest_id: str) -> Destination | None:
        hook = self.hooks.get(dest_id)
        return hook.destination() if hook is not None else None

    def bound(self, rows: list[OutboxRow], queued: Mapping[str, int]) -> list[OutboxRow]:
        """`rows` without the events for a hook that already has `MAX_QUEUED` waiting (a dead receiver
        must not grow the outbox without end); what is left out is counted per hook."""
        if not self.hooks:
            return rows
        counts: dict[str, int] = {}
        kept = []
        for row in rows:
            dest = row[0]
            if dest.startswith(HOOK_PREFIX):
                n = counts.setdefault(dest, queued.get(dest, 0))
                if n >= MAX_QUEUED:
                    self.dropped[dest] = self.dropped.get(dest, 0) + 1
                    continue
                counts[dest] = n + 1
            kept.append(row)
        return kept

    # changes (each persisted before it applies) ------------------------------------------------
    def create(
        self, name: str, url: str, events: Sequence[str], secret: str | None, enabled: bool, timeout_ms: int
    ) -> GatewayHook:
        if len(self.hooks) >= MAX_HOOKS:
            raise WebhookInvalid(f"Invalid request: at most {MAX_HOOKS} gateway hooks")
        if any(h.name == name for h in self.hooks.values()):
            raise WebhookConflict(f"a gateway hook named {name!r} already exists")
        hook = GatewayHook(
            HOOK_PREFIX + secrets.token_hex(8),
            name,
            clean_url(url, self.allow_private),
            clean_patterns(events),
            secret,
            enabled,
            timeout_ms,
        )
        self.store.doc_put(HOOK_DOC, hook.id, hook.doc())
        self.hooks[hook.id] = hook
        return hook

    def get(self, hook_id: str) -> GatewayHook:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise WebhookNotFound("Gateway hook not found")
        return hook

    def update(self, hook_id: str, changes: Mapping[str, Any]) -> GatewayHook:
        """Apply `changes` (type-checked values by camelCase name; `secret` None removes it)."""
        hook = self.get(hook_id)
        values: dict[str, Any] = {}
        if "name" in changes and changes["name"] != hook.name:
            if any(h.name == changes["name"] for h in self.hooks.values()):
                raise WebhookConflict(f"a gateway hook named {changes['name']!r} already exists")
            values["name"] = changes["name"]
        if "url" in changes:
            values["url"] = clean_url(changes["url"], self.allow_private)
        if "events" in changes:
            values["events"] = clean_patterns(changes["events"])
        if "secret" in changes:
            values["secret"] = changes["secret"]
        if "enabled" in changes:
            values["enabled"] = changes["enabled"]
        if "timeoutMs" in changes:
            values["timeout_ms"] = changes["timeoutMs"]
        updated = replace(hook, **values, updated_at=time.time())
        self.store.doc_put(HOOK_DOC, updated.id, updated.doc())
        self.hooks[updated.id] = updated
        return updated

    def delete(self, hook_id: str) -> GatewayHook:
        hook = self.get(hook_id)
        self.store.doc_delete(HOOK_DOC, hook_id)
        del self.hooks[hook_id]
        self.dropped.pop(hook_id, None)
        return hook


class HookMetrics(Collector):
    """paygate_gateway_hooks, paygate_gateway_hook_deliveries_total{hook,result} and
    paygate_gateway_hook_dropped_total{hook}, read at scrape time."""

    def __init__(self, hooks: GatewayHooks, stats: Any) -> None:
        self._hooks = hooks
        self._stats = stats  # Worker.stats_for

    def collect(self) -> Iterable[Any]:
        hooks = self._hooks.hooks
        yield GaugeMetricFamily(
            "paygate_gateway_hooks", "Gateway hooks configured", value=sum(1 for h in hooks.values() if h.enabled)
        )
        deliveries = CounterMetricFamily(
            "paygate_gateway_hook_deliveries", "Gateway hook delivery attempts by result", labels=["hook", "result"]
        )
        dropped = CounterMetricFamily(
            "paygate_gateway_hook_dropped", "Events not queued for a gateway hook whose queue was full", labels=["hook"]
        )
        for hook in hooks.values():
            s = self._stats(hook.id)
            deliveries.add_metric([hook.name, "success"], s.delivered)
            deliveries.add_metric([hook.name, "failure"], s.failed)
            dropped.add_metric([hook.name], self._hooks.dropped.get(hook.id, 0))
        yield deliveries
        yield dropped
