"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.runtime import Runtime
from paygate.store.shared import redis_store
from paygate.traffic.breaker_metrics import CircuitCollector, RetryCollector
from paygate.traffic.circuit import DEFAULT_COOLDOWN, CircuitBreakers, CircuitSettings
from paygate.traffic.retry import Retries, RetryPolicy
from paygate.traffic.routes import circuit as circuit_routes
from paygate.traffic.routes import retry as retry_routes
from paygate.traffic.routes import timeouts as timeout_routes
from paygate.traffic.timeouts import Timeouts

RELOAD_SECONDS = 5.0  # a fleet's instances pick up each other's admin changes this often


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    dispatcher = rt.dispatcher

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
    threshold = settings.circuit_breaker_threshold or 0
    cooldown = settings.circuit_breaker_cooldown_seconds
    cooldown = DEFAULT_COOLDOWN if cooldown is None else cooldown
    circuits = CircuitBreakers(
        CircuitSettings(threshold, cooldown, settings.circuit_breaker_per_tool),
        rt.store,
        rt.events,
        frozenset(s.prefix for s in settings.servers) if settings.servers else None,
        dispatcher.tool_known,
    )
    retries = Retries(_retry_policy(rt), rt.store, rt.events)
    traffic.add_call_stage(circuits.refuse)
    traffic.add_send_stage(circuits.record)
    traffic.add_send_stage(retries)
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
    return {
        "circuit": circuit_routes.router(rt.guard, circuits),
        "timeouts": timeout_routes.router(rt.guard, timeouts),
        "retry_policy": retry_routes.router(rt.guard, retries),
    }


def _retry_policy(rt: Runtime) -> RetryPolicy:
    config = rt.settings.retry_policy
    if config is None:
        return RetryPolicy()
    return RetryPolicy.from_doc(config.model_dump(by_alias=True))
