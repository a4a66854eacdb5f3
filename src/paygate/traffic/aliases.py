"""Tool aliases: an old tool name that runs as the real one, with RFC 9745 / RFC 8594 deprecation headers.

The outermost call stage: a call to `from` is renamed to `to` before anything else looks at it, so the
key's ACL, the price, quotas, reports and events all use the real name, and the client's answer carries
`Deprecation`, `Sunset` and `Link: <…>; rel="deprecation"`. Aliases never appear in `tools/list`: a client
that lists tools should move to the real name. Chains are refused (an alias to an alias, or a name that
is some alias's target used as an alias), so no call is renamed twice and no cycle can form.

The table is one JSON blob in the store's meta (`traffic.tool_aliases`): a restart keeps it, and a Redis
fleet's peers re-read it every few seconds (`reload`).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Conflict, Invalid, NotFound, TooLarge
from paygate.events.hub import EventHub
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc
from paygate.traffic.chain import Proceed, ToolCall, Traffic

log = logging.getLogger("paygate.traffic")

META_ALIASES = "traffic.tool_aliases"
MAX_ALIASES = 500


@dataclass(slots=True)
class Alias:
    source: str  # the old name clients call
    target: str  # the real tool
    deprecated_at: float | None  # Unix time; None: not announced as deprecated
    sunset: float | None  # Unix time after which the old name may stop working
    link: str | None  # documentation of the change
    created_at: float
    created_by: str
    calls: int = 0  # since this instance loaded it
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.deprecated_at is not None:  # RFC 9745: a structured date, `@` and Unix seconds
            self.headers.append((b"deprecation", f"@{int(self.deprecated_at)}".encode()))
        if self.sunset is not None:  # RFC 8594: an HTTP date
            self.headers.append((b"sunset", email.utils.formatdate(self.sunset, usegmt=True).encode()))
        if self.link:
            self.headers.append((b"link", f'<{self.link}>; rel="deprecation"'.encode()))

    def stored(self) -> dict[str, Any]:
        return {
            "to": self.target,
            "deprecatedAt": self.deprecated_at,
            "sunset": self.sunset,
            "link": self.link,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
        }

    def view(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "deprecation": _iso(self.deprecated_at),
            "sunset": _iso(self.sunset),
            "link": self.link,
            "calls": self.calls,
            "createdAt": _iso(self.created_at),
            "createdBy": self.created_by,
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_date(value: str, what: str) -> float:
    """An ISO 8601 date / date-time (UTC unless it says) or an HTTP date, as Unix time; Invalid otherwise."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise Invalid(f"Invalid request: {what} must be an ISO 8601 or HTTP date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ts = parsed.timestamp()
    if not 0 <= ts < 253402300800:  # years 1970-9999: what an HTTP date can say
        raise Invalid(f"Invalid request: {what} is out of range")
    return ts


class ToolAliases:
    """The alias table, its admin operations (each publishes its audit event) and its call stage."""

    name = "aliases"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        traffic: Traffic,
        tool_names: Callable[[], Collection[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.traffic = traffic
        self.tool_names = tool_names  # the backend's tools now (empty while it is not up)
        self.clock = clock
        self.table: dict[str, Alias] = {}
        self.enabled = False
        self.doc = MetaDoc(store, META_ALIASES)

    # --- the call stage ----------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        alias = self.table.get(call.tool)
        if alias is None:
            return await proceed(call)
        alias.calls += 1
        call.tool = alias.target
        call.params = {**call.params, "name": alias.target}  # a new dict: the client's is never changed
        for name, value in alias.headers:
            call.ctx.add_header(name, value)
        return await proceed(call)

    # --- admin ---------------------------------------------------------------------------------------
    def set(
        self,
        source: str,
        target: str,
        deprecation: bool | str | None,
        sunset: str | None,
        link: str | None,
        actor: str,
    ) -> tuple[Alias, list[str]]:
        """Add or replace an alias; the warnings say what was accepted but looks wrong."""
        if source == target:
            raise Invalid("Invalid request: from and to must differ")
        if target in self.table:
            raise Conflict(f"{target!r} is itself an alias (of {self.table[target].target!r}): chains are refused")
        pointing = sorted(a.source for a in self.table.values() if a.target == source and a.source != source)
        if pointing:
            raise Conflict(f"{source!r} is the target of the alias {pointing[0]!r}: chains are refused")
        tools = self.tool_names()
        if source in tools:
            raise Conflict(f"{source!r} is a tool the server lists: an alias may not hide it")
        warnings = []
        if target not in tools:
            if tools:
                raise Invalid(f"Invalid request: to: {target!r} is not a tool the server lists")
            warnings.append(f"the server's tool list is not known yet: {target!r} is not checked")
        if source not in self.table and len(self.table) >= MAX_ALIASES:
            raise TooLarge(f"At most {MAX_ALIASES} tool aliases")
        now = self.clock()
        deprecated_at = None
        if deprecation is True or deprecation is None:  # an alias is an old name: deprecated unless told
            deprecated_at = now
        elif isinstance(deprecation, str):
            deprecated_at = parse_date(deprecation, "deprecation")
        sunset_at = parse_date(sunset, "sunset") if sunset is not None else None
        alias = Alias(source, target, deprecated_at, sunset_at, link, now, actor)
        old = self.table.get(source)
        if old is not None and old.target == target:
            alias.calls = old.calls
        table = {**self.table, source: alias}
        self._save(table)
        self.events.publish("traffic.alias_set", actor, alias=source, to=target)
        return alias, warnings

    def remove(self, source: str, actor: str) -> Alias:
        alias = self.table.get(source)
        if alias is None:
            raise NotFound(f"No tool alias {source!r}")
        table = {k: v for k, v in self.table.items() if k != source}
        self._save(table)
        self.events.publish("traffic.alias_removed", actor, alias=source, to=alias.target)
        return alias

    def views(self) -> list[dict[str, Any]]:
        return [a.view() for a in sorted(self.table.values(), key=lambda a: a.source)]

    # --- persistence ---------------------------------------------------------------------------------
    def _save(self, table: dict[str, Alias]) -> None:
        self.doc.write({k: a.stored() for k, a in table.items()})  # first: if the write fails nothing changed
        self._install(table)

    def _install(self, table: dict[str, Alias]) -> None:
        self.table = table
        self.traffic.switch(self, bool(table))

    def reload(self, _now: float = 0.0) -> None:
        """Read the stored table again if it changed (start-up; a fleet peer's change, on a ticker)."""
        table = self.doc.read(self._parse, "tool aliases")
        if table is not None:
            self._install(table)

    def _parse(self, stored: dict[str, Any]) -> dict[str, Alias]:
        table: dict[str, Alias] = {}
        for source, doc in stored.items():
            alias = Alias(
                source,
                str(doc["to"]),
                doc.get("deprecatedAt"),
                doc.get("sunset"),
                doc.get("link"),
                float(doc.get("createdAt") or 0),
                str(doc.get("createdBy") or ""),
            )
            old = self.table.get(source)
            alias.calls = old.calls if old is not None and old.target == alias.target else 0
            table[source] = alias
        return table


class AliasCollector(Collector):
    """`paygate_tool_alias_calls_total{alias}`: calls made under each alias (admin-set, at most 500)."""

    def __init__(self, aliases: ToolAliases) -> None:
        self.aliases = aliases

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_tool_alias_calls",
            "tools/call requests made under a tool alias (run as the real tool)",
            labels=["alias"],
        )
        for alias in list(self.aliases.table.values()):
            family.add_metric([alias.source], alias.calls)
        yield family
