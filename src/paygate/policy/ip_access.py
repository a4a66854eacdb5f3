"""Global IP access rules for /mcp: allow and deny lists, and automatic blocks after repeated violations.

Checked at the top of every /mcp request (mcp/endpoint.py), before the body is read or any key looked
at, so a refused address costs the gateway almost nothing and never reaches the gate or a charge.
`deny` wins over `allow`; a non-empty `allow` admits only the addresses it names; an address blocked
(automatically or by hand) is refused until its block ends. The client address is the socket peer,
or X-Forwarded-For walked back past `trustedProxies` (core/netaddr.py): never a header anyone can send.

A violation is a request refused for a bad credential (`VIOLATIONS`): an address that makes
`threshold` of them within `windowSeconds` is blocked for `blockSeconds`. Counting is per instance
(bounded: `MAX_TRACKED` addresses); the rules and the blocks are one JSON blob in the store's meta
(`policy.ip_access`), so a restart keeps them and a Redis fleet's peers re-read them every few seconds.
The admin API and the public routes are not covered: an operator cannot lock themselves out here.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Invalid, NotFound, TooLarge
from paygate.core.netaddr import ip_in, normalise_entry, parse_ip
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc

log = logging.getLogger("paygate.policy")

META_IP_ACCESS = "policy.ip_access"
MAX_ENTRIES = 1000  # per list
MAX_BLOCKED = 10_000
MAX_TRACKED = 10_000  # addresses whose recent violations are counted
# Refusals that mean "this address is guessing credentials"; a missing key is not one (discovery, probes).
VIOLATIONS = frozenset({"invalid_api_key", "invalid_token", "invalid_signature"})


@dataclass(slots=True)
class AutoBlock:
    enabled: bool = False
    threshold: int = 10
    window_seconds: int = 300
    block_seconds: int = 3600

    def view(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "windowSeconds": self.window_seconds,
            "blockSeconds": self.block_seconds,
        }


@dataclass(slots=True)
class Rules:
    enabled: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    auto_block: AutoBlock = field(default_factory=AutoBlock)
    blocked: dict[str, dict[str, Any]] = field(default_factory=dict)  # ip -> {until, violations, at, by}

    def stored(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "allow": list(self.allow),
            "deny": list(self.deny),
            "autoBlock": self.auto_block.view(),
            "blocked": self.blocked,
        }


def _entries(values: Iterable[str], what: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        try:
            entry = normalise_entry(value)
        except ValueError:
            raise Invalid(f"Invalid request: {what}: {value[:64]!r} is not an IP address or CIDR block") from None
        if entry not in out:
            out.append(entry)
    if len(out) > MAX_ENTRIES:
        raise TooLarge(f"At most {MAX_ENTRIES} entries in {what}")
    return tuple(out)


class IpAccess:
    """The rules, the address check the endpoint runs, violation counting, and the admin operations."""

    def __init__(self, store: Store, events: EventHub, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.rules = Rules()
        self.active = False  # read by the endpoint on every request: False = nothing to check
        self.refused = 0
        self.auto_blocks = 0
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self.doc = MetaDoc(store, META_IP_ACCESS)

    # --- the check (mcp/endpoint.py) -------------------------------------------------------------------
    def refusal(self, ip: str | None) -> str | None:
        """Why this address is refused (a sentence for the client), or None."""
        rules = self.rules
        if ip is not None and ip in rules.blocked:
            if rules.blocked[ip]["until"] > self.clock():
                self.refused += 1
                return "This address is blocked"
            self._expire()
        if not rules.enabled:
            return None
        if rules.deny and ip_in(ip, rules.deny):
            self.refused += 1
            return "This address is denied"
        if rules.allow and not ip_in(ip, rules.allow):
            self.refused += 1
            return "This address is not in the allow list"
        return None

    def violation(self, ip: str | None, reason: str) -> None:
        """A request from `ip` was refused for `reason`; block the address once it has made too many."""
        policy = self.rules.auto_block
        if not policy.enabled or reason not in VIOLATIONS or ip is None or parse_ip(ip) is None:
            return
        now = self.clock()
        times = self._recent.pop(ip, [])
        times = [t for t in times if t > now - policy.window_seconds] + [now]
        if len(times) < policy.threshold:
            self._recent[ip] = times
            while len(self._recent) > MAX_TRACKED:
                self._recent.popitem(last=False)
            return
        self.auto_blocks += 1
        self._block(ip, policy.block_seconds, len(times), "auto-block")

    # --- admin ---------------------------------------------------------------------------------------
    def configure(
        self,
        actor: str,
        enabled: bool | None = None,
        allow: list[str] | None = None,
        deny: list[str] | None = None,
        auto_block: dict[str, Any] | None = None,
    ) -> list[str]:
        """Change what is given; the warnings say what was accepted but looks wrong."""
        rules = self.rules
        new = Rules(
            rules.enabled if enabled is None else enabled,
            rules.allow if allow is None else _entries(allow, "allow"),
            rules.deny if deny is None else _entries(deny, "deny"),
            AutoBlock(**{**_auto_fields(rules.auto_block), **(auto_block or {})}),
            dict(rules.blocked),
        )
        warnings = []
        if new.enabled and not new.allow and not new.deny:
            warnings.append("enabled with empty allow and deny lists: only blocks refuse anything")
        if new.allow and new.deny and any(ip_in(d.split("/")[0], new.allow) for d in new.deny):
            warnings.append("some denied addresses are inside allowed blocks: deny wins")
        self._save(new)
        self.events.publish(
            "ip_access.configured",
            actor,
            enabled=new.enabled,
            allow=len(new.allow),
            deny=len(new.deny),
            autoBlock=new.auto_block.view(),
        )
        return warnings

    def block(self, ip: str, seconds: int, actor: str) -> None:
        addr = parse_ip(ip)
        if addr is None:
            raise Invalid(f"Invalid request: block: {ip[:64]!r} is not an IP address")
        self._block(str(addr), seconds, 0, actor)

    def unblock(self, ip: str | None, actor: str) -> int:
        """Lift one address's block (NotFound if it has none), or every block (ip None); how many."""
        rules = self.rules
        if ip is not None:
            addr = parse_ip(ip)
            key = str(addr) if addr is not None else ip
            if key not in rules.blocked:
                raise NotFound(f"{ip[:64]!r} is not blocked")
            gone = [key]
        else:
            gone = list(rules.blocked)
        blocked = {k: v for k, v in rules.blocked.items() if k not in gone}
        self._save(Rules(rules.enabled, rules.allow, rules.deny, rules.auto_block, blocked))
        for key in gone:
            self._recent.pop(key, None)
        self.events.publish("ip_access.unblocked", actor, ips=gone[:100], count=len(gone))
        return len(gone)

    def view(self) -> dict[str, Any]:
        self._expire()
        rules = self.rules
        blocked = [
            {
                "ip": ip,
                "until": _iso(b["until"]),
                "violations": b["violations"],
                "blockedAt": _iso(b["at"]),
                "by": b["by"],
            }
            for ip, b in sorted(rules.blocked.items(), key=lambda item: item[1]["until"])
        ]
        return {
            "enabled": rules.enabled,
            "allow": list(rules.allow),
            "deny": list(rules.deny),
            "autoBlock": rules.auto_block.view(),
            "blocked": blocked,
            "stats": {"refused": self.refused, "autoBlocks": self.auto_blocks, "tracked": len(self._recent)},
        }

    # --- state ---------------------------------------------------------------------------------------
    def _block(self, ip: str, seconds: int, violations: int, by: str) -> None:
        rules = self.rules
        now = self.clock()
        blocked = {k: v for k, v in rules.blocked.items() if v["until"] > now}
        if ip not in blocked and len(blocked) >= MAX_BLOCKED:
            log.warning("ip access: %d addresses already blocked; %s is not blocked", MAX_BLOCKED, ip)
            return
        blocked[ip] = {"until": now + seconds, "violations": violations, "at": now, "by": by}
        self._save(Rules(rules.enabled, rules.allow, rules.deny, rules.auto_block, blocked))
        self._recent.pop(ip, None)
        self.events.publish("ip_access.blocked", by, ip=ip, seconds=seconds, violations=violations)

    def _expire(self) -> None:
        rules, now = self.rules, self.clock()
        if any(b["until"] <= now for b in rules.blocked.values()):
            blocked = {k: v for k, v in rules.blocked.items() if v["until"] > now}
            self._save(Rules(rules.enabled, rules.allow, rules.deny, rules.auto_block, blocked))

    def _save(self, rules: Rules) -> None:
        self.doc.write(rules.stored())  # first: if the write fails nothing changed
        self._install(rules)

    def _install(self, rules: Rules) -> None:
        self.rules = rules
        self.active = rules.enabled or bool(rules.blocked)

    def reload(self, _now: float = 0.0) -> None:
        """Read the stored rules again if they changed (start-up; a fleet peer's change, on a ticker)."""
        rules = self.doc.read(_parse_rules, "IP access rules")
        if rules is not None:
            self._install(rules)


def _parse_rules(doc: dict[str, Any]) -> Rules:
    return Rules(
        bool(doc.get("enabled", False)),
        tuple(doc.get("allow") or ()),
        tuple(doc.get("deny") or ()),
        AutoBlock(**_auto_fields_from_view(doc.get("autoBlock") or {})),
        {str(k): dict(v) for k, v in (doc.get("blocked") or {}).items()},
    )


def _auto_fields(auto: AutoBlock) -> dict[str, Any]:
    return {
        "enabled": auto.enabled,
        "threshold": auto.threshold,
        "window_seconds": auto.window_seconds,
        "block_seconds": auto.block_seconds,
    }


def _auto_fields_from_view(view: dict[str, Any]) -> dict[str, Any]:
    names = {"enabled": "enabled", "threshold": "threshold", "windowSeconds": "window_seconds"}
    names["blockSeconds"] = "block_seconds"
    return {names[k]: v for k, v in view.items() if k in names}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class IpAccessCollector(Collector):
    """`paygate_ip_access_refused_total`, `paygate_ip_access_auto_blocks_total`, `paygate_ip_access_blocked`."""

    def __init__(self, access: IpAccess) -> None:
        self.access = access

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "paygate_ip_access_refused",
            "/mcp requests refused by the global IP access rules",
            value=self.access.refused,
        )
        yield CounterMetricFamily(
            "paygate_ip_access_auto_blocks",
            "addresses blocked after repeated violations",
            value=self.access.auto_blocks,
        )
        yield GaugeMetricFamily(
            "paygate_ip_access_blocked", "addresses blocked now", value=len(self.access.rules.blocked)
        )
