"""GET /plugins (admin: the plugins loaded, with their hooks) and the plugins' own endpoints under
/plugins/<name>/... (on_request): admin-only unless the plugin lists the path as public."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from paygate.api.common import AdminGuard
from paygate.core.domain_errors import NotFound, TooLarge
from paygate.plugins.base import PluginRequest
from paygate.plugins.runner import PluginRunner

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_BODY = 1_000_000  # bytes a plugin endpoint is handed at most
_HIDDEN = frozenset({"x-admin-key", "x-api-key", "authorization", "cookie"})  # never handed to a plugin


def router(guard: AdminGuard, runner: PluginRunner) -> APIRouter:
    r = APIRouter(tags=["plugins"])

    @r.get("/plugins", dependencies=[Depends(guard)])
    async def list_plugins() -> dict[str, Any]:
        """The plugins loaded: name, version, hooks (the reference's names), and their error counts."""
        return runner.view()

    async def plugin_endpoint(name: str, path: str, request: Request) -> Response:
        """A plugin's own endpoint (its on_request hook): needs the admin key unless the plugin made the
        path public; 404 when no such plugin or it does not answer the path."""
        plugin = runner.by_name.get(name)
        path = path.strip("/")
        serves = plugin is not None and "on_request" in plugin.hooks
        if serves and plugin is not None and path in plugin.public_paths:
            identity = guard.admin.identify(request.headers.get("x-admin-key"))
            admin = identity is not None and identity.tenant_id is None  # a tenant's viewer is not the operator
        else:  # first: without the admin key, nobody learns which plugins exist
            await guard(request)  # viewer for GET, admin for the rest
            admin = True
        if plugin is None or not serves:
            raise NotFound(f"no plugin {name!r} with endpoints")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise TooLarge(f"a plugin endpoint takes at most {MAX_BODY} bytes")
        answer = await runner.on_request(
            plugin,
            PluginRequest(
                request.method,
                path,
                dict(request.query_params),
                {k: v for k, v in request.headers.items() if k not in _HIDDEN},
                body,
                admin,
            ),
        )
        if answer is None:
            raise NotFound(f"plugin {name!r} has no endpoint {path!r}")
        content = answer.raw if answer.raw is not None else orjson.dumps(answer.body)
        return Response(content, answer.status, headers=answer.headers, media_type=answer.content_type)

    for method in METHODS:  # one route per method: each its own OpenAPI operation
        r.add_api_route(
            "/plugins/{name}/{path:path}", plugin_endpoint, methods=[method], name=f"plugin_{method.lower()}"
        )
    return r
