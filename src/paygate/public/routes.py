"""Public endpoints (no auth): health, readiness, discovery, pricing, metrics.

The answers come from `PublicInfo` (public/service.py); these routes add the status codes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from paygate.metrics import Metrics
from paygate.public.service import PublicInfo

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


def router(public: PublicInfo, prometheus: Metrics) -> APIRouter:
    r = APIRouter(tags=["public"])

    @r.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> JSONResponse:
        """Liveness: 200 while serving, 503 while draining."""
        body, live = public.health()
        return JSONResponse(body, status_code=200 if live else 503)

    @r.api_route("/ready", methods=["GET", "HEAD"])
    async def ready() -> JSONResponse:
        """Readiness: 200 when the backend is up and we are neither draining nor in maintenance, else 503."""
        body = public.readiness()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @r.api_route("/info", methods=["GET", "HEAD"])
    async def info() -> dict[str, Any]:
        """Capabilities, features, pricing summary and endpoints."""
        return public.info()

    @r.api_route("/pricing", methods=["GET", "HEAD"])
    async def pricing() -> dict[str, Any]:
        """Per-tool pricing, from the backend's tool list as discovered at start (and on list_changed)."""
        return public.pricing()

    @r.api_route("/.well-known/mcp-payment", methods=["GET", "HEAD"])
    async def mcp_payment() -> dict[str, Any]:
        """Server payment metadata (SEP-2007 draft)."""
        return public.payment()

    @r.api_route("/.well-known/mcp.json", methods=["GET", "HEAD"])
    async def mcp_card() -> dict[str, Any]:
        """MCP server identity card."""
        return public.card()

    @r.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(prometheus.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @r.api_route("/robots.txt", methods=["GET", "HEAD"], response_class=PlainTextResponse)
    async def robots() -> str:
        return ROBOTS

    @r.api_route("/", methods=["GET", "HEAD"])
    async def root() -> dict[str, Any]:
        """Name, version and where to go next."""
        return public.root()

    return r
