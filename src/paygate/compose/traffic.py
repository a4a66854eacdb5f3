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


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    traffic.tool_timeouts = {
        tool: price.timeout_ms / 1000 for tool, price in settings.tool_pricing.items() if price.timeout_ms
    }
    routers: dict[str, APIRouter] = {}
    return routers
