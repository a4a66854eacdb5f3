"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.core.domain_errors import Invalid
from paygate.runtime import Runtime
from paygate.traffic.aliases import AliasCollector, ToolAliases
from paygate.traffic.canary import Canary, CanaryCollector
from paygate.traffic.mirror import Mirror, MirrorCollector
from paygate.traffic.remote import check_static
from paygate.traffic.routes import aliases as alias_routes
from paygate.traffic.routes import canary as canary_routes
from paygate.traffic.routes import mirror as mirror_routes

RELOAD_SECONDS = 5.0  # how soon a Redis fleet's peers follow an admin change to aliases, canary, mirror


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    traffic.tool_timeouts = {
        tool: price.timeout_ms / 1000 for tool, price in settings.tool_pricing.items() if price.timeout_ms
    }
    routers: dict[str, APIRouter] = {}

    # call stages, outermost first
    backend = rt.backend
    aliases = ToolAliases(rt.store, rt.events, traffic, lambda: frozenset(t["name"] for t in backend.tools))
    aliases.reload()
    traffic.add_call_stage(aliases)
    rt.metrics.registry.register(AliasCollector(aliases))
    routers["tool_aliases"] = alias_routes.router(rt.guard, aliases)

    # send stages, outermost first
    allow_private = settings.traffic_allow_private
    if settings.mirror is not None:
        try:
            check_static(settings.mirror.url, allow_private, "mirror.url")
        except Invalid as exc:  # the CLI prints `error: …` and exits
            raise ValueError(exc.message.removeprefix("Invalid request: ")) from exc
    mirror = Mirror(rt.store, rt.events, traffic, allow_private, settings.mirror)
    traffic.add_send_stage(mirror)
    rt.metrics.registry.register(MirrorCollector(mirror))
    routers["mirror"] = mirror_routes.router(rt.guard, mirror)

    canary = Canary(rt.store, rt.events, traffic, allow_private)
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
            mirror.reload()
            canary.reload()

    rt.tickers.append(reload)
    return routers
