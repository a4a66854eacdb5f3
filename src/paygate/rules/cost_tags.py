"""Cost tags (GET/POST/DELETE /admin/cost-tags, GET /admin/cost-tags/report; docs/money-rules.md#cost-tags).

A caller sends `X-Cost-Tags: {"team": "search", "project": "q4"}` with a tools/call; the call's final cost
(up-front charge, less a refund, plus an output surcharge) is attributed to those tags. What the admin sets:
the tags each key's calls must carry, the tag names allowed, how many distinct values a tag may take, the
header's size and number of tags. A call breaking any of them is refused before any charge (-32602).

Attribution is kept apart from the usage log (whose rows and journal format carry no tags): calls and credits
per (UTC day, key, tool, tag set), in memory, written every few seconds and at shutdown to one document per
day and process (kind `cost_tags.day`, id `<day>/<process>`), so instances of a fleet never overwrite each
other. Reports read every process's documents. A day holds at most `MAX_ROWS` tag sets per process (beyond,
calls are counted under the tag `_overflow`); days older than `retentionDays` are deleted.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from paygate.core import cost_tags as ct
from paygate.core.domain_errors import Invalid
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate.rules")
META_KEY = "rules.cost_tags"
KIND = "cost_tags.day"
MAX_ROWS = 20_000  # tag sets per day and process
MAX_REQUIRED_KEYS = 10_000
FLUSH_SECONDS = 5.0
RELOAD_SECONDS = 5.0
LIMIT_FIELDS = {  # field -> (default, lowest, highest)
    "maxHeaderBytes": (1024, 16, 8192),
    "maxTagsPerRequest": (10, 1, 50),
    "maxValueLength": (64, 1, 256),
    "maxCardinality": (1000, 1, 100_000),
    "retentionDays": (90, 1, 3660),
}
DEFAULTS: dict[str, Any] = {"enabled": False, "allowedTags": []}
Counts = dict[tuple[str, str, tuple[tuple[str, str], ...]], list[int]]  # (key, tool, tags) -> [calls, credits]


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class CostTags:
    """The admin's settings, the values seen per tag, and this process's attribution by day."""

    def __init__(self, store: Store, events: EventHub) -> None:
        self.store = store
        self.events = events
        self.process = secrets.token_hex(4)
        self.config: dict[str, Any] = {f: d for f, (d, _, _) in LIMIT_FIELDS.items()} | DEFAULTS
        self.required: dict[str, dict[str, Any]] = {}  # key hash -> {key (masked), name, tags}
        self.limits = ct.Limits()
        self.values: dict[str, set[str]] = {}  # tag name -> the distinct values seen (for the cardinality limit)
        self._days: dict[str, Counts] = {}
        self._dirty: set[str] = set()
        self._seen: str | None = None
        self._last_flush = self._last_reload = 0.0
        self.tagged = self.refused = self.overflow = 0
        self.on_change: Callable[[], None] | None = None  # the call stage follows `on`

    # --- settings -----------------------------------------------------------------------------------
    def load(self, now: float) -> None:
        raw = self._seen = self.store.get_meta(META_KEY)
        if raw:
            try:
                doc = orjson.loads(raw)
                self._apply({**self.config, **doc["settings"]}, dict(doc["required"]))
            except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
                log.error("cost tags: the stored settings are unreadable (%s); using the defaults", exc)
        self.values = {}
        for _, doc in self.store.doc_items(KIND):
            for row in doc.get("rows", ()):
                for name, value in row[2].items():
                    self.values.setdefault(name, set()).add(value)
        self.prune(now)

    def _apply(self, config: dict[str, Any], required: dict[str, dict[str, Any]]) -> None:
        self.config, self.required = config, required
        self.limits = ct.Limits(
            config["maxHeaderBytes"], config["maxTagsPerRequest"], config["maxValueLength"],
            frozenset(config["allowedTags"]),
        )  # fmt: skip
        if self.on_change is not None:
            self.on_change()

    def _save(self, actor: str, event: str, **data: Any) -> None:
        raw = orjson.dumps({"settings": self.config, "required": self.required}).decode()
        self.store.set_meta(META_KEY, raw)
        self._seen = raw
        self.events.publish(event, actor, **data)

    def configure(self, changes: dict[str, Any], key: KeyRecord | None, actor: str) -> dict[str, Any]:
        """Limits and allowed names (checked whole by the router), and/or one key's required tags."""
        required = changes.pop("requiredTags", None)
        if not changes and required is None:
            raise Invalid("Nothing to change: give a limit, allowedTags, or key and requiredTags")
        if (key is None) != (required is None):
            raise Invalid("key and requiredTags go together: the tags that key's calls must carry")
        config = {**self.config, **changes}
        reqs = dict(self.required)
        if key is not None and required is not None:
            allowed = set(config["allowedTags"])
            if allowed and not set(required) <= allowed:
                raise Invalid(f"requiredTags must be among allowedTags ({', '.join(sorted(allowed))})")
            if key.key_hash not in reqs and len(reqs) >= MAX_REQUIRED_KEYS:
                raise Invalid(f"At most {MAX_REQUIRED_KEYS} keys with required tags")
            reqs[key.key_hash] = {"key": key.masked, "name": key.name, "tags": sorted(set(required))}
        self._apply(config, reqs)
        self._save(actor, "cost_tags.updated", changed=sorted(changes), key=key.masked if key else None,
                   requiredTags=sorted(set(required)) if required is not None else None)  # fmt: skip
        return self.view()

    def unrequire(self, key: KeyRecord, actor: str) -> dict[str, Any]:
        if self.required.pop(key.key_hash, None) is None:
            raise Invalid("That key has no required cost tags")
        self._save(actor, "cost_tags.updated", changed=["requiredTags"], key=key.masked, requiredTags=None)
        return self.view()

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        if old_hash in self.required:
            self.required[new_hash] = self.required.pop(old_hash)
            self._save("cost-tags", "cost_tags.updated", changed=["requiredTags"], rotated=True)

    def reload(self, now: float) -> None:
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        raw = self.store.get_meta(META_KEY)
        if raw != self._seen and raw:
            self._seen = raw
            doc = orjson.loads(raw)
            self._apply({**self.config, **doc["settings"]}, dict(doc["required"]))

    # --- the call side --------------------------------------------------------------------------------
    @property
    def on(self) -> bool:
        """Whether calls are looked at: tags attributed (`enabled`), or some key must carry tags."""
        return bool(self.config["enabled"] or self.required)

    def check(self, raw: bytes | None, key: KeyRecord | None) -> tuple[str, str] | dict[str, str]:
        """The call's tags, or (reason, message) refusing it. A new value is remembered here, in the step
        that checked it, so concurrent calls never take a tag past its cardinality limit."""
        try:
            tags = ct.parse(raw, self.limits)
        except ct.BadTags as exc:
            self.refused += 1
            return ct.INVALID, str(exc)
        need = self.required.get(key.key_hash) if key is not None else None
        if need is not None and (missing := [t for t in need["tags"] if t not in tags]):
            self.refused += 1
            return ct.REQUIRED, "this key's calls must carry the cost tags " + ", ".join(missing)
        cap = self.config["maxCardinality"]
        for name, value in tags.items():
            seen = self.values.get(name)
            if seen is not None and value not in seen and len(seen) >= cap:
                self.refused += 1
                return ct.INVALID, f"tag {name!r} already has {cap} distinct values (maxCardinality)"
        for name, value in tags.items():
            self.values.setdefault(name, set()).add(value)
        return tags

    def record(self, key: KeyRecord, tool: str, tags: dict[str, str], credits: int, now: float) -> None:
        """A settled call's final cost attributed to its tags (a call without tags is not recorded)."""
        day = _day(now)
        counts = self._days.setdefault(day, {})
        slot = (key.masked, tool, ct.canonical(tags))
        if slot not in counts and len(counts) >= MAX_ROWS:
            self.overflow += 1
            slot = (key.masked, tool, (("_overflow", "true"),))
        entry = counts.setdefault(slot, [0, 0])
        entry[0] += 1
        entry[1] += credits
        self.tagged += 1
        self._dirty.add(day)

    # --- persistence ----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self._dirty and now - self._last_flush >= FLUSH_SECONDS:
            self.flush(now)

    def flush(self, now: float) -> None:
        self._last_flush = now
        for day in sorted(self._dirty):
            rows = [[k, t, dict(tags), c, cr] for (k, t, tags), (c, cr) in self._days.get(day, {}).items()]
            self.store.doc_put(KIND, f"{day}/{self.process}", {"day": day, "rows": rows})
        self._dirty.clear()
        today = _day(now)
        for day in [d for d in self._days if d < today]:  # written: a past day changes no more
            del self._days[day]

    def prune(self, now: float) -> None:
        oldest = _day(now - self.config["retentionDays"] * 86_400)
        for doc_id, _ in self.store.doc_items(KIND):
            if doc_id.split("/", 1)[0] < oldest:
                self.store.doc_delete(KIND, doc_id)

    def rows(self, since: str, until: str) -> list[ct.Row]:
        """Every process's attribution for the days from `since` to `until` (inclusive), this one's flushed first."""
        self.flush(time.time())
        out: list[ct.Row] = []
        for doc_id, doc in self.store.doc_items(KIND):
            day = doc_id.split("/", 1)[0]
            if since <= day <= until:
                out.extend(ct.Row(day, r[0], r[1], r[2], r[3], r[4]) for r in doc.get("rows", ()))
        return out

    # --- the admin view -------------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        return {
            **self.config,
            "active": self.on,
            "requiredTags": [dict(v) for v in self.required.values()],
            "tags": {name: len(values) for name, values in sorted(self.values.items())},
            "stats": {"taggedCalls": self.tagged, "refused": self.refused, "overflow": self.overflow},
        }


def day_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """A restore's check of a `cost_tags.day` document (compose/doc_checks.py)."""
    rows = doc.get("rows")
    if not isinstance(rows, list) or doc.get("day") != doc_id.split("/", 1)[0]:
        return "rows: a day's document holds `day` (its id's day) and `rows`"
    for row in rows:
        if not (
            isinstance(row, list) and len(row) == 5 and isinstance(row[2], dict)
            and all(isinstance(v, str) for v in (*row[:2], *row[2].keys(), *row[2].values()))
            and all(type(v) is int and v >= 0 for v in row[3:])
        ):  # fmt: skip
            return "rows: each is [key, tool, {tag: value}, calls, credits]"
    return None
