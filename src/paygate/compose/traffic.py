"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → [content controls, compose/content.py: transforms → schema → guardrails] → tool dependencies
    → approvals → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]

Registration order is chain order, so `traffic_routers` reads as the two lists above.
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.compose.content import content_routers
from paygate.compose.reload import follow_tool_cache, follow_tool_timeouts
from paygate.core.domain_errors import Invalid
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyNotFound
from paygate.runtime import Runtime
from paygate.store.shared import redis_store
from paygate.traffic.aliases import AliasCollector, ToolAliases
from paygate.traffic.approvals import ApprovalCollector, Approvals
from paygate.traffic.breaker_metrics import CircuitCollector, RetryCollector
from paygate.traffic.cache import CacheMetrics, ResponseCache
from paygate.traffic.canary import Canary, CanaryCollector
from paygate.traffic.circuit import DEFAULT_COOLDOWN, CircuitBreakers, CircuitSettings
from paygate.traffic.concurrency import ConcurrencyLimits, LimitsCollector
from paygate.traffic.dedup import Dedup, DedupMetrics
from paygate.traffic.limits_admin import LimitsAdmin
from paygate.traffic.mirror import Mirror, MirrorCollector
from paygate.traffic.priority import PriorityQueue, QueueConfig
from paygate.traffic.remote import check_static
from paygate.traffic.retry import Retries, RetryPolicy
from paygate.traffic.routes import aliases as alias_routes
from paygate.traffic.routes import approvals as approval_routes
from paygate.traffic.routes import cache as cache_routes
from paygate.traffic.routes import canary as canary_routes
from paygate.traffic.routes import circuit as circuit_routes
from paygate.traffic.routes import concurrency, priority_queue
from paygate.traffic.routes import dedup as dedup_routes
from paygate.traffic.routes import mirror as mirror_routes
from paygate.traffic.routes import retry as retry_routes
from paygate.traffic.routes import timeouts as timeout_routes
from paygate.traffic.routes import tool_deps as tool_deps_routes
from paygate.traffic.timeouts import Timeouts
from paygate.traffic.tool_deps import DependencyCollector, ToolDependencies

RELOAD_SECONDS = 5.0  # how soon an instance follows an admin change made elsewhere (a fleet's peers)


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    traffic = rt.dispatcher.traffic
    routers: dict[str, APIRouter] = {}
    # call stages, outermost first
    aliases = _aliases(rt, routers)
    routers.update(content_routers(rt))  # compose/content.py
    deps = _tool_deps(rt, routers)
    approvals = _approvals(rt, routers)
    _dedup_and_cache(rt, routers)
    circuits, retries = _failures(rt, routers)
    traffic.add_call_stage(circuits.refuse)
    routers.update(_concurrency(rt))  # the innermost call stage
    # send stages, outermost first
    mirror = _mirror(rt, routers)
    traffic.add_send_stage(circuits.record)
    traffic.add_send_stage(retries)
    canary = Canary(rt.store, rt.events, traffic, rt.settings.traffic_allow_private)
    traffic.add_send_stage(canary)
    rt.metrics.registry.register(CanaryCollector(canary))
    routers["canary"] = canary_routes.router(rt.guard, canary)

    async def start() -> None:
        mirror.reload()
        canary.reload()

    async def stop() -> None:
        await mirror.close()
        await canary.close()

    rt.on_start.append(start)
    rt.on_stop.append(stop)
    last = [0.0]

    def reload(now: float) -> None:
        if now - last[0] >= RELOAD_SECONDS:
            last[0] = now
            aliases.reload()
            deps.reload()
            approvals.reload()
            mirror.reload()
            canary.reload()

    rt.tickers.append(reload)
    return routers


def _aliases(rt: Runtime, routers: dict[str, APIRouter]) -> ToolAliases:
    backend, traffic = rt.backend, rt.dispatcher.traffic
    aliases = ToolAliases(rt.store, rt.events, traffic, lambda: frozenset(t["name"] for t in backend.tools))
    aliases.reload()
    traffic.add_call_stage(aliases)
    rt.metrics.registry.register(AliasCollector(aliases))
    routers["tool_aliases"] = alias_routes.router(rt.guard, aliases)
    return aliases


def _tool_deps(rt: Runtime, routers: dict[str, APIRouter]) -> ToolDependencies:
    backend, traffic = rt.backend, rt.dispatcher.traffic
    names = lambda: frozenset(t["name"] for t in backend.tools)  # noqa: E731
    deps = ToolDependencies(rt.store, rt.events, traffic, names, rt.dispatcher.billing.resolve)
    deps.reload()
    traffic.add_call_stage(deps)
    traffic.add_check(deps)  # batches and tasks go around the call stages
    rt.metrics.registry.register(DependencyCollector(deps))
    routers["tool_deps"] = tool_deps_routes.router(rt.guard, deps)
    return deps


def _approvals(rt: Runtime, routers: dict[str, APIRouter]) -> Approvals:
    billing, traffic = rt.dispatcher.billing, rt.dispatcher.traffic
    approvals = Approvals(rt.store, rt.events, traffic, lambda: billing.prices, billing.resolve)
    approvals.reload()
    traffic.add_call_stage(approvals)
    traffic.add_check(approvals)  # batches and tasks cannot wait: a matching one is refused
    rt.metrics.registry.register(ApprovalCollector(approvals))
    routers["approval_workflows"] = approval_routes.router(rt.guard, approvals)
    return approvals


def _dedup_and_cache(rt: Runtime, routers: dict[str, APIRouter]) -> None:
    """Two call stages that answer a call again without running or charging it (traffic/dedup.py,
    traffic/cache.py): dedup first, so a replayed call never reaches the cache's counters."""
    settings, traffic = rt.settings, rt.dispatcher.traffic
    fleet = redis_store(rt.store) is not None  # peers' runtime changes are followed on a ticker
    dedup = Dedup(
        rt.billing,
        rt.store,
        rt.events,
        traffic.refresh,
        enabled=settings.dedup_enabled,
        window_seconds=settings.dedup_window_seconds,
        max_entries=settings.dedup_max_entries,
        auto_key=settings.dedup_auto_key,
        fleet=fleet,
    )
    dedup.load()
    traffic.add_call_stage(dedup)
    rt.tickers.append(dedup.tick)
    rt.metrics.registry.register(DedupMetrics(dedup))
    routers["dedup"] = dedup_routes.router(rt.guard, dedup)
    pricing = settings.tool_pricing
    cache = ResponseCache(
        rt.billing,
        rt.store,
        rt.events,
        traffic.refresh,
        ttl_seconds=settings.cache_ttl_seconds or 0,
        max_entries=settings.max_cache_entries,
        tool_ttls={t: p.cache_ttl_seconds for t, p in pricing.items() if p.cache_ttl_seconds is not None},
        shared_tools=frozenset(t for t, p in pricing.items() if p.cache_shared),
        fleet=fleet,
    )
    cache.load()
    rt.on_reload.append(follow_tool_cache(cache))  # hot reload: toolPricing's cache settings (compose/reload.py)
    traffic.add_call_stage(cache)
    rt.tickers.append(cache.tick)
    rt.metrics.registry.register(CacheMetrics(cache))
    routers["cache"] = cache_routes.router(rt.guard, cache)


def _failures(rt: Runtime, routers: dict[str, APIRouter]) -> tuple[CircuitBreakers, Retries]:
    """Timeouts, the circuit breakers and the retry policy: what happens when a backend is slow or failing.
    The caller registers the breakers' two stages and the retries where the chains want them."""
    settings, dispatcher = rt.settings, rt.dispatcher
    traffic = dispatcher.traffic

    def set_global_timeout(seconds: float) -> None:
        dispatcher.tool_timeout = seconds

    timeouts = Timeouts(
        traffic,
        set_global_timeout,
        max(round(settings.tool_timeout_seconds * 1000), 1),  # shown in ms
        {tool: price.timeout_ms for tool, price in settings.tool_pricing.items() if price.timeout_ms},
        rt.store,
        rt.events,
    )
    rt.on_reload.append(follow_tool_timeouts(timeouts))  # hot reload: toolPricing's timeouts (compose/reload.py)
    cooldown = settings.circuit_breaker_cooldown_seconds
    circuits = CircuitBreakers(
        CircuitSettings(
            settings.circuit_breaker_threshold or 0,
            DEFAULT_COOLDOWN if cooldown is None else cooldown,
            settings.circuit_breaker_per_tool,
        ),
        rt.store,
        rt.events,
        frozenset(s.prefix for s in settings.servers) if settings.servers else None,
        dispatcher.tool_known,
    )
    policy = settings.retry_policy
    retries = Retries(
        RetryPolicy() if policy is None else RetryPolicy.from_doc(policy.model_dump(by_alias=True)),
        rt.store,
        rt.events,
    )
    circuits.on_switch.append(traffic.refresh)
    retries.on_switch.append(traffic.refresh)
    controls = (timeouts, circuits, retries)
    for control in controls:
        control.load()

    def reread(_: object) -> None:  # a restore rewrote the documents
        for control in controls:
            control.load()

    rt.events.subscribe(reread, ("backup.restored",))
    if redis_store(rt.store) is not None:  # a fleet: another instance's admin change
        last = [0.0]

        def reload(now: float) -> None:
            if now - last[0] >= RELOAD_SECONDS:
                last[0] = now
                for control in controls:
                    control.load()

        rt.tickers.append(reload)
    rt.metrics.registry.register(CircuitCollector(circuits))
    rt.metrics.registry.register(RetryCollector(retries))
    routers["circuit"] = circuit_routes.router(rt.guard, circuits)
    routers["timeouts"] = timeout_routes.router(rt.guard, timeouts)
    routers["retry_policy"] = retry_routes.router(rt.guard, retries)
    return circuits, retries


def _concurrency(rt: Runtime) -> dict[str, APIRouter]:
    """Concurrency limits and the priority queue: one call stage (traffic/concurrency.py)."""
    settings = rt.settings
    queue_settings = settings.priority_queue
    config = QueueConfig()
    if queue_settings is not None:
        config.enabled = queue_settings.enabled
        config.max_queue_depth = queue_settings.max_queue_depth
        config.max_wait_ms.update({str(tier): ms for tier, ms in queue_settings.max_wait_ms.items()})
        config.promote_after_ms = queue_settings.promote_after_ms
    limits = ConcurrencyLimits(
        settings.max_concurrent_per_key or 0,
        settings.max_concurrent_per_tool or 0,
        PriorityQueue(config),
        rt.dispatcher.billing.resolve,
    )

    def find_key(ref: str) -> KeyRecord | None:
        try:
            return rt.keys.find(ref)
        except KeyNotFound:
            return None

    traffic = rt.dispatcher.traffic
    admin = LimitsAdmin(limits, rt.store, rt.events, find_key, traffic.refresh)
    admin.load()
    traffic.add_call_stage(limits)
    rt.tickers.append(admin.reload)
    rt.metrics.registry.register(LimitsCollector(limits))
    return {
        "concurrency": concurrency.router(rt.guard, admin),
        "priority_queue": priority_queue.router(rt.guard, admin),
    }


def _mirror(rt: Runtime, routers: dict[str, APIRouter]) -> Mirror:
    settings = rt.settings
    allow_private = settings.traffic_allow_private
    if settings.mirror is not None:
        try:
            check_static(settings.mirror.url, allow_private, "mirror.url")
        except Invalid as exc:  # the CLI prints `error: …` and exits
            raise ValueError(exc.message.removeprefix("Invalid request: ")) from exc
    mirror = Mirror(rt.store, rt.events, rt.dispatcher.traffic, allow_private, settings.mirror)
    rt.dispatcher.traffic.add_send_stage(mirror)
    rt.metrics.registry.register(MirrorCollector(mirror))
    routers["mirror"] = mirror_routes.router(rt.guard, mirror)
    return mirror
