"""Public endpoints (no auth): health, readiness, discovery, pricing, metrics.

The answers come from `PublicInfo` (public/service.py); these routes add the status codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from paygate.metrics import Metrics
from paygate.public.service import PublicInfo

Endpoint = Callable[..., Any]

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


def get_and_head(r: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Serve `path` for GET and HEAD with one function: two routes, only GET's in the OpenAPI schema (one
    route with both methods would give two operations the same operationId)."""

    def register(endpoint: Endpoint) -> Endpoint:
        r.add_api_route(path, endpoint, methods=["GET"], **options)
        r.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register


def router(public: PublicInfo, prometheus: Metrics) -> APIRouter:
    r = APIRouter(tags=["public"])

    @get_and_head(r, "/health")
    async def health() -> JSONResponse:
        """Liveness: 200 while serving, 503 while draining."""
        body, live = public.health()
        return JSONResponse(body, status_code=200 if live else 503)

    @get_and_head(r, "/ready")
    async def ready() -> JSONResponse:
        """Readiness: 200 when the backend is up and we are neither draining nor in maintenance, else 503."""
        body = public.readiness()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @get_and_head(r, "/info")
    async def info() -> dict[str, Any]:
        """Capabilities, features, pricing summary and endpoints."""
        return public.info()

    @get_and_head(r, "/pricing")
    async def pricing() -> dict[str, Any]:
        """Per-tool pricing, from the backend's tool list as discovered at start (and on list_changed)."""
        return public.pricing()

    @get_and_head(r, "/.well-known/mcp-payment")
    async def mcp_payment() -> dict[str, Any]:
        """Server payment metadata (SEP-2007 draft)."""
        return public.payment()

    @get_and_head(r, "/.well-known/mcp.json")
    async def mcp_card() -> dict[str, Any]:
        """MCP server identity card."""
        return public.card()

    @r.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(prometheus.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @get_and_head(r, "/robots.txt", response_class=PlainTextResponse)
    async def robots() -> str:
        return ROBOTS

    @get_and_head(r, "/")
    async def root() -> dict[str, Any]:
        """Name, version and where to go next."""
        return public.root()

    return r
