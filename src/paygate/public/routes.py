"""Public endpoints (no auth): health, readiness, discovery, pricing, metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from paygate import __version__
from paygate.core.errors import DENY_REASONS
from paygate.runtime import Runtime
from paygate.webhooks.queue import health_counts

ROBOTS = """User-agent: *
Allow: /
Allow: /pricing
Allow: /.well-known/
Disallow: /keys
Disallow: /admin
Disallow: /usage
Disallow: /status
Disallow: /topup
Disallow: /mcp
"""


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(tags=["public"])
    s = rt.settings

    def pricing_summary() -> dict[str, Any]:
        return {
            "defaultCreditsPerCall": s.default_credits_per_call,
            "toolPricing": {name: price.public() for name, price in rt.billing.prices.overrides.items()},
        }

    @r.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> JSONResponse:
        """Liveness: 200 while serving, 503 while draining."""
        status = "draining" if rt.draining else "maintenance" if rt.maintenance.enabled else "healthy"
        body = {"status": status, "uptime": int(time.time() - rt.started), "version": __version__,
                "inflight": rt.endpoint.inflight, "backend": {"ready": rt.backend.ready}}
        if s.webhook_url:
            body["webhooks"] = health_counts(rt.store)
        return JSONResponse(body, status_code=503 if rt.draining else 200)

    @r.api_route("/ready", methods=["GET", "HEAD"])
    async def ready() -> JSONResponse:
        """Readiness: 200 when the backend is up and we are neither draining nor in maintenance, else 503."""
        checks = {"backend": rt.backend.ready, "draining": rt.draining, "maintenance": rt.maintenance.enabled}
        return JSONResponse({"ready": rt.ready, "checks": checks}, status_code=200 if rt.ready else 503)

    @r.api_route("/info", methods=["GET", "HEAD"])
    async def info() -> dict[str, Any]:
        """Capabilities, features, pricing summary and endpoints."""
        return {
            "name": s.name, "version": __version__, "transport": rt.transport, "port": s.port,
            "auth": ["api_key"],
            "features": {"shadowMode": s.shadow_mode, "webhooks": bool(s.webhook_url),
                         "webhookSignatures": bool(s.webhook_url and s.webhook_secret),
                         "refundOnFailure": s.refund_on_failure, "redis": False, "oauth": False,
                         "plugins": False, "multiServer": bool(s.servers)},
            "pricing": pricing_summary(),
            "rateLimit": {"globalPerMin": s.global_rate_limit_per_min},
            "endpoints": {"mcp": "/mcp", "health": "/health", "ready": "/ready", "info": "/info",
                          "pricing": "/pricing", "metrics": "/metrics", "status": "/status (admin)",
                          "keys": "/keys (admin)", "usage": "/usage (admin)", "balance": "/balance (client)",
                          "docs": "/docs", "openapi": "/openapi.json"},
        }

    @r.api_route("/pricing", methods=["GET", "HEAD"])
    async def pricing() -> dict[str, Any]:
        """Per-tool pricing, from the backend's tool list as discovered at start (and on list_changed)."""
        tools = [{"name": t["name"], "description": t.get("description"), **t["_pricing"]}
                 for t in rt.dispatcher.priced_tools()]
        return {"server": {"name": s.name, "version": __version__, **pricing_summary(),
                           "globalRateLimitPerMin": s.global_rate_limit_per_min,
                           "shadowMode": s.shadow_mode},
                "tools": tools}

    @r.api_route("/.well-known/mcp-payment", methods=["GET", "HEAD"])
    async def mcp_payment() -> dict[str, Any]:
        """Server payment metadata (SEP-2007 draft)."""
        return {
            "specVersion": "2007-draft", "billingModel": "credits", "currency": "credits",
            "defaultCreditsPerCall": s.default_credits_per_call,
            "authMethods": ["api_key"], "apiKeyHeader": "X-API-Key",
            "pricingEndpoint": "/pricing", "balanceEndpoint": "/balance",
            "freeMethods": sorted(rt.dispatcher.free_methods),
            "errorCodes": {name: {"code": r.code, "httpStatus": r.http_status, "message": r.message}
                           for name, r in DENY_REASONS.items()},
        }

    @r.api_route("/.well-known/mcp.json", methods=["GET", "HEAD"])
    async def mcp_card() -> dict[str, Any]:
        """MCP server identity card."""
        upstream = (rt.backend.init_result or {}).get("serverInfo") or {}
        return {
            "name": s.name, "version": __version__, "description": "Payment-gated MCP server (PayGate)",
            "transport": {"type": "streamable-http", "url": "/mcp"},
            "upstream": {"name": upstream.get("name"), "version": upstream.get("version")},
            "authentication": {"type": "api_key", "header": "X-API-Key"},
            "payment": "/.well-known/mcp-payment", "pricing": "/pricing",
            "tools": len(rt.backend.tools),
        }

    @r.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @r.api_route("/robots.txt", methods=["GET", "HEAD"], response_class=PlainTextResponse)
    async def robots() -> str:
        return ROBOTS

    @r.api_route("/", methods=["GET", "HEAD"])
    async def root() -> dict[str, Any]:
        """Name, version and where to go next."""
        return {"name": s.name, "version": __version__, "mcp": "/mcp", "docs": "/docs", "info": "/info",
                "health": "/health", "pricing": "/pricing"}

    return r
