"""What the public (unauthenticated) endpoints tell: liveness, readiness, capabilities, pricing and the
discovery documents. Built once by the composition root from the components they read, so the routes
only pick a method and set the status."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate import __version__
from paygate.config import Settings
from paygate.core.errors import DENY_REASONS
from paygate.core.pricing import PriceBook
from paygate.mcp.dispatcher import Dispatcher
from paygate.serving import ServingState

WebhookCounts = Callable[[], dict[str, int]]  # pendingRetries and deadLetterCount, for /health


@dataclass(slots=True, eq=False)
class PublicInfo:
    settings: Settings
    serving: ServingState
    dispatcher: Dispatcher
    prices: PriceBook
    inflight: Callable[[], int]
    transport: str
    webhook_counts: WebhookCounts | None

    def health(self) -> tuple[dict[str, Any], bool]:
        """The /health body, and whether the gateway is live (not draining)."""
        serving = self.serving
        body: dict[str, Any] = {
            "status": serving.status,
            "uptime": serving.uptime(time.time()),
            "version": __version__,
            "inflight": self.inflight(),
            "backend": {"ready": serving.backend.ready},
        }
        if serving.shared_store is not None:
            body["redis"] = {"connected": serving.shared_store.connected, "pubsub": serving.shared_store.subscribed}
        if self.webhook_counts is not None:
            body["webhooks"] = self.webhook_counts()
        return body, not serving.draining

    def readiness(self) -> dict[str, Any]:
        serving = self.serving
        checks = {
            "backend": serving.backend.ready,
            "draining": serving.draining,
            "maintenance": serving.maintenance.enabled,
        }
        if serving.shared_store is not None:
            checks["redis"] = serving.shared_store.connected
        return {"ready": serving.ready, "checks": checks}

    def pricing_summary(self) -> dict[str, Any]:
        return {
            "defaultCreditsPerCall": self.settings.default_credits_per_call,
            "toolPricing": {name: price.public() for name, price in self.prices.overrides.items()},
        }

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "name": s.name,
            "version": __version__,
            "transport": self.transport,
            "port": s.port,
            "auth": ["api_key", "oauth"] if s.oauth is not None else ["api_key"],
            "features": {
                "shadowMode": s.shadow_mode,
                "webhooks": bool(s.webhook_url),
                "webhookSignatures": bool(s.webhook_url and s.webhook_secret),
                "refundOnFailure": s.refund_on_failure,
                "redis": bool(s.redis_url),
                "oauth": s.oauth is not None,
                "plugins": False,
                "multiServer": bool(s.servers),
            },
            "pricing": self.pricing_summary(),
            "rateLimit": {"globalPerMin": s.global_rate_limit_per_min},
            "endpoints": {
                "mcp": "/mcp",
                "health": "/health",
                "ready": "/ready",
                "info": "/info",
                "pricing": "/pricing",
                "metrics": "/metrics",
                "status": "/status (admin)",
                "keys": "/keys (admin)",
                "usage": "/usage (admin)",
                "balance": "/balance (client)",
                "docs": "/docs",
                "openapi": "/openapi.json",
            },
        }

    def pricing(self) -> dict[str, Any]:
        s = self.settings
        tools = [
            {"name": t["name"], "description": t.get("description"), **t["_pricing"]}
            for t in self.dispatcher.priced_tools()
        ]
        return {
            "server": {
                "name": s.name,
                "version": __version__,
                **self.pricing_summary(),
                "globalRateLimitPerMin": s.global_rate_limit_per_min,
                "shadowMode": s.shadow_mode,
            },
            "tools": tools,
        }

    def payment(self) -> dict[str, Any]:
        return {
            "specVersion": "2007-draft",
            "billingModel": "credits",
            "currency": "credits",
            "defaultCreditsPerCall": self.settings.default_credits_per_call,
            "authMethods": ["api_key"],
            "apiKeyHeader": "X-API-Key",
            "pricingEndpoint": "/pricing",
            "balanceEndpoint": "/balance",
            "freeMethods": sorted(self.dispatcher.free_methods),
            "errorCodes": {
                name: {"code": r.code, "httpStatus": r.http_status, "message": r.message}
                for name, r in DENY_REASONS.items()
            },
        }

    def card(self) -> dict[str, Any]:
        backend = self.serving.backend
        upstream = (backend.init_result or {}).get("serverInfo") or {}
        return {
            "name": self.settings.name,
            "version": __version__,
            "description": "Payment-gated MCP server (PayGate)",
            "transport": {"type": "streamable-http", "url": "/mcp"},
            "upstream": {"name": upstream.get("name"), "version": upstream.get("version")},
            "authentication": {"type": "api_key", "header": "X-API-Key"},
            "payment": "/.well-known/mcp-payment",
            "pricing": "/pricing",
            "tools": len(backend.tools),
        }

    def root(self) -> dict[str, Any]:
        return {
            "name": self.settings.name,
            "version": __version__,
            "mcp": "/mcp",
            "docs": "/docs",
            "info": "/info",
            "health": "/health",
            "pricing": "/pricing",
        }
