"""Where each event goes: the default URL, filter rules, per-key URLs.

Destinations have stable ids: `default`, a filter's `wf_…` id, a per-key webhook's `kw_…` id. Queues,
retries, dead letters and stats are kept per destination id, so a destination's URL can change
(filter update, a key's new URL) without orphaning what is queued for it; a destination that is
removed has its queued batches dead-lettered.

- The default URL (`webhookUrl`) receives every event.
- A filter receives the events whose type it lists (or `"*"`; `"usage"` names both per-call types,
  `gate.allow` and `gate.deny`), and, when it lists key prefixes, only events about a key whose
  kept prefix (the first 7 characters; keys are hashed at rest) starts with one of them. Inactive
  filters receive nothing. Filters from the config file (`source: "config"`) are read-only.
- A per-key webhook receives the events about its key: per-call events by the key's hash; admin
  events (which name keys masked) when exactly one key has the masked form they name.

Filters created over the API are documents of kind `webhook_filter`; per-key webhooks documents of
kind `key_webhook` keyed by the key's hash (they follow a rotated key).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from paygate.config_events import WebhookFilterConfig
from paygate.core.values import iso_time
from paygate.events.hub import GATE_EVENTS, Event
from paygate.store.base import Store
from paygate.webhooks.checks import (
    WebhookConflict,
    WebhookError,
    WebhookInvalid,
    WebhookNotFound,
    clean_events,
    clean_prefixes,
    clean_url,
)
from paygate.webhooks.payload import key_prefix, masked_keys
from paygate.webhooks.ssrf import shown

if TYPE_CHECKING:
    from paygate.webhooks.gateway_hooks import GatewayHooks

log = logging.getLogger("paygate.webhooks")

FILTER_DOC = "webhook_filter"
KEY_HOOK_DOC = "key_webhook"
DEFAULT = "default"
MAX_FILTERS = 100


@dataclass(frozen=True, slots=True)
class FilterRule:
    id: str
    name: str
    events: tuple[str, ...]
    url: str
    secret: str | None = None
    key_prefixes: tuple[str, ...] = ()
    active: bool = True
    source: str = "api"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def matches(self, event_type: str, prefix: str | None) -> bool:
        if not self.active:
            return False
        names = self.events
        if not ("*" in names or event_type in names or (event_type in GATE_EVENTS and "usage" in names)):
            return False
        if self.key_prefixes:
            return prefix is not None and prefix.startswith(self.key_prefixes)
        return True

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "events": list(self.events),
            "url": self.url,
            "secret": self.secret,
            "keyPrefixes": list(self.key_prefixes),
            "active": self.active,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def public(self) -> dict[str, Any]:
        """As the API shows it: URL scheme + host only, the secret never."""
        return {
            "id": self.id,
            "name": self.name,
            "events": list(self.events),
            "url": shown(self.url),
            "hasSecret": self.secret is not None,
            "secret": "***" if self.secret else None,
            "keyPrefixes": list(self.key_prefixes),
            "active": self.active,
            "source": self.source,
            "createdAt": iso_time(self.created_at),
            "updatedAt": iso_time(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class KeyHook:
    id: str
    key_hash: str
    url: str
    secret: str | None
    created_at: float
    updated_at: float

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "keyHash": self.key_hash,
            "url": self.url,
            "secret": self.secret,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Destination:
    id: str
    kind: str  # default | filter | key | hook (gateway_hooks.py)
    url: str
    secret: str | None
    name: str | None = None
    key_masked: str | None = None
    timeout: float | None = None  # seconds; None: webhookTimeoutSeconds

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"destination": self.label, "type": self.kind, "url": shown(self.url)}
        if self.name is not None:
            out["name"] = self.name
        if self.key_masked is not None:
            out["keyMasked"] = self.key_masked
        return out

    @property
    def label(self) -> str:
        return f"key:{self.key_masked}" if self.kind == "key" else self.id


def config_filter_id(name: str) -> str:
    """A config file's filter keeps its id across restarts (queued batches name it)."""
    return "wf_cfg_" + hashlib.sha256(name.encode()).hexdigest()[:12]


class Routes:
    def __init__(self, store: Store, default_url: str | None, default_secret: str | None, allow_private: bool) -> None:
        self.store = store
        self.allow_private = allow_private
        self.default = Destination(DEFAULT, "default", default_url, default_secret) if default_url else None
        self.filters: dict[str, FilterRule] = {}
        self.hooks: dict[str, KeyHook] = {}  # by key hash
        self._hooks_by_id: dict[str, KeyHook] = {}
        self.gateway: GatewayHooks | None = None  # set by open_webhooks

    # loading ---------------------------------------------------------------------------------
    def load(self, configured: list[WebhookFilterConfig]) -> None:
        """Config filters (validated: a bad one is a start-up error), then the stored ones."""
        self.filters = {}
        seen: set[str] = set()
        for i, f in enumerate(configured):
            where = f"webhookFilters[{i}]"
            if f.name in seen:
                raise WebhookInvalid(f"{where}: duplicate filter name {f.name!r}")
            seen.add(f.name)
            try:
                rule = FilterRule(
                    config_filter_id(f.name),
                    f.name,
                    clean_events(f.events),
                    clean_url(f.url, self.allow_private),
                    f.secret,
                    clean_prefixes(f.key_prefixes),
                    f.active,
                    "config",
                )
            except WebhookError as exc:
                raise WebhookInvalid(f"{where}: {str(exc).removeprefix('Invalid request: ')}") from exc
            self.filters[rule.id] = rule
        self.reload()

    def reload(self) -> None:
        """Re-read the stored filters and per-key webhooks (at start and after a backup restore)."""
        self.filters = {k: v for k, v in self.filters.items() if v.source == "config"}
        for doc in self.store.doc_list(FILTER_DOC):
            try:
                self.filters[doc["id"]] = FilterRule(
                    doc["id"],
                    doc["name"],
                    tuple(doc["events"]),
                    doc["url"],
                    doc.get("secret"),
                    tuple(doc.get("keyPrefixes") or ()),
                    bool(doc.get("active", True)),
                    "api",
                    float(doc.get("createdAt") or 0),
                    float(doc.get("updatedAt") or 0),
                )
            except (KeyError, TypeError, ValueError):  # e.g. a hand-edited backup: skip it, keep the rest
                log.warning("ignoring a malformed webhook filter document")
        self.hooks = {}
        for key_hash, doc in self.store.doc_items(KEY_HOOK_DOC):
            try:
                self.hooks[key_hash] = KeyHook(
                    doc["id"],
                    key_hash,
                    doc["url"],
                    doc.get("secret"),
                    float(doc.get("createdAt") or 0),
                    float(doc.get("updatedAt") or 0),
                )
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed per-key webhook document")
        self._hooks_by_id = {h.id: h for h in self.hooks.values()}
        if self.gateway is not None:
            self.gateway.reload()

    # routing ---------------------------------------------------------------------------------
    @property
    def any(self) -> bool:
        gateway = self.gateway is not None and bool(self.gateway.hooks)
        return self.default is not None or bool(self.filters) or bool(self.hooks) or gateway

    def destinations_for(self, event: Event) -> list[str]:
        out: list[str] = [DEFAULT] if self.default is not None else []
        masks = masked_keys(event)
        if self.filters:
            prefix = key_prefix(masks[0]) if masks else None
            out += [rule.id for rule in self.filters.values() if rule.matches(event.type, prefix)]
        if self.hooks:
            hook = self.hooks.get(event.key_hash) if event.key_hash else self._hook_by_mask(masks)
            if hook is not None:
                out.append(hook.id)
        if self.gateway is not None and self.gateway.hooks:
            out += self.gateway.destinations_for(event.type)
        return out

    def _hook_by_mask(self, masks: list[str]) -> KeyHook | None:
        """The per-key webhook of the one key an admin event names by its masked form (an ambiguous
        masked form, shared by two keys, routes nowhere rather than to a possibly wrong key)."""
        for mask in masks:
            for key_hash, hook in self.hooks.items():
                record = self.store.get_key(key_hash)
                if record is not None and record.masked == mask:
                    if sum(1 for r in self.store.list_keys() if r.masked == mask) == 1:
                        return hook
                    return None
        return None

    def destination(self, dest_id: str) -> Destination | None:
        if dest_id == DEFAULT:
            return self.default
        rule = self.filters.get(dest_id)
        if rule is not None:
            return Destination(rule.id, "filter", rule.url, rule.secret, name=rule.name)
        hook = self._hooks_by_id.get(dest_id)
        if hook is not None:
            record = self.store.get_key(hook.key_hash)
            return Destination(hook.id, "key", hook.url, hook.secret, key_masked=record.masked if record else "unknown")
        return self.gateway.destination(dest_id) if self.gateway is not None else None

    def destination_ids(self) -> list[str]:
        gateway = list(self.gateway.hooks) if self.gateway is not None else []
        return ([DEFAULT] if self.default else []) + list(self.filters) + list(self._hooks_by_id) + gateway

    # filters ---------------------------------------------------------------------------------
    def create_filter(
        self, name: str, events: list[str], url: str, secret: str | None, key_prefixes: list[str], active: bool
    ) -> FilterRule:
        if len(self.filters) >= MAX_FILTERS:
            raise WebhookInvalid(f"Invalid request: at most {MAX_FILTERS} webhook filters")
        if any(r.name == name for r in self.filters.values()):
            raise WebhookConflict(f"a webhook filter named {name!r} already exists")
        rule = FilterRule(
            "wf_" + secrets.token_hex(8),
            name,
            clean_events(events),
            clean_url(url, self.allow_private),
            secret,
            clean_prefixes(key_prefixes),
            active,
        )
        self.store.doc_put(FILTER_DOC, rule.id, rule.doc())
        self.filters[rule.id] = rule
        return rule

    def editable_filter(self, filter_id: str) -> FilterRule:
        rule = self.filters.get(filter_id)
        if rule is None:
            raise WebhookNotFound("Webhook filter not found")
        if rule.source == "config":
            raise WebhookConflict("this filter comes from the config file (webhookFilters); change it there")
        return rule

    def update_filter(self, filter_id: str, changes: dict[str, Any]) -> tuple[FilterRule, list[str]]:
        """Apply `changes` (already type-checked field values, camelCase names) to a filter."""
        rule = self.editable_filter(filter_id)
        values: dict[str, Any] = {}
        if "name" in changes and changes["name"] != rule.name:
            if any(r.name == changes["name"] for r in self.filters.values()):
                raise WebhookConflict(f"a webhook filter named {changes['name']!r} already exists")
            values["name"] = changes["name"]
        if "events" in changes:
            values["events"] = clean_events(changes["events"])
        if "url" in changes:
            values["url"] = clean_url(changes["url"], self.allow_private)
        if "secret" in changes:
            values["secret"] = changes["secret"]
        if "keyPrefixes" in changes:
            values["key_prefixes"] = clean_prefixes(changes["keyPrefixes"] or [])
        if "active" in changes:
            values["active"] = changes["active"]
        updated = replace(rule, **values, updated_at=time.time())
        self.store.doc_put(FILTER_DOC, updated.id, updated.doc())
        self.filters[updated.id] = updated
        return updated, sorted(changes)

    def delete_filter(self, filter_id: str) -> FilterRule:
        rule = self.editable_filter(filter_id)
        self.store.doc_delete(FILTER_DOC, filter_id)
        del self.filters[filter_id]
        return rule

    # per-key webhooks ------------------------------------------------------------------------
    def set_hook(self, key_hash: str, url: str, secret: str | None) -> KeyHook:
        clean_url(url, self.allow_private)
        now = time.time()
        old = self.hooks.get(key_hash)
        hook = KeyHook(
            old.id if old else "kw_" + secrets.token_hex(8), key_hash, url, secret, old.created_at if old else now, now
        )
        self.store.doc_put(KEY_HOOK_DOC, key_hash, hook.doc())
        self.hooks[key_hash] = hook
        self._hooks_by_id[hook.id] = hook
        return hook

    def remove_hook(self, key_hash: str) -> KeyHook | None:
        hook = self.hooks.pop(key_hash, None)
        if hook is not None:
            self.store.doc_delete(KEY_HOOK_DOC, key_hash)
            self._hooks_by_id.pop(hook.id, None)
        return hook

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's webhook follows it to the new key (same destination id)."""
        hook = self.hooks.get(old_hash)
        if hook is None:
            return
        moved = replace(hook, key_hash=new_hash, updated_at=time.time())
        self.store.doc_put(KEY_HOOK_DOC, new_hash, moved.doc())
        self.store.doc_delete(KEY_HOOK_DOC, old_hash)
        del self.hooks[old_hash]
        self.hooks[new_hash] = moved
        self._hooks_by_id[moved.id] = moved
