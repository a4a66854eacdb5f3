"""Gateway hooks over HTTP: GET/POST/DELETE /admin/gateway-hooks (webhooks/gateway_hooks.py, docs/gateway-hooks.md).

POST without `id` creates a hook (201), with `id` changes the fields it names. A refusal (unsafe URL, an
event type the gateway never publishes, a bad timeout) is a 400 that changes nothing. GET needs the
viewer role, POST and DELETE admin (the guard's rule).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.webhooks.gateway_hooks import DEFAULT_TIMEOUT_MS, MAX_PATTERNS
from paygate.webhooks.hook_service import GatewayHookService
from paygate.webhooks.ssrf import MAX_URL_LENGTH

HookId = Annotated[str, Field(min_length=1, max_length=64)]
Pattern = Annotated[str, Field(min_length=1, max_length=64)]
TimeoutMs = Annotated[int, Field(ge=100, le=60_000, description="per delivery attempt, milliseconds")]


class HookBody(Body):
    id: HookId | None = None  # given: change this hook
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)] | None = None
    events: list[Pattern] | None = Field(default=None, min_length=1, max_length=MAX_PATTERNS)
    secret: Annotated[str, Field(min_length=16, max_length=256)] | None = None  # on update, null removes it
    generate_secret: bool = False
    enabled: bool | None = None
    timeout_ms: TimeoutMs | None = None


class HookRef(Body):
    id: HookId


NOT_NULL = ("name", "url", "events", "enabled", "timeoutMs")


def router(guard: AdminGuard, service: GatewayHookService) -> APIRouter:
    r = guard.router("gateway-hooks")

    @r.get("/admin/gateway-hooks")
    async def list_hooks(id: Annotated[str | None, Query(min_length=1, max_length=64)] = None) -> dict[str, Any]:
        """Every hook (URL as scheme + host, secret never) with its delivery counters; `?id=` for one."""
        return service.get(id) if id else service.all()

    @r.post("/admin/gateway-hooks")
    async def save_hook(body: HookBody, request: Request, response: Response) -> dict[str, Any]:
        """Create a hook (`name`, `url`, `events`; 201) or, with `id`, change the fields given."""
        if body.id is None:
            missing = [f for f in ("name", "url", "events") if getattr(body, f) is None]
            if missing:
                raise Invalid(f"Invalid request: {missing[0]} is required to create a gateway hook")
            assert body.name is not None and body.url is not None and body.events is not None
            response.status_code = 201
            return service.create(
                actor(request),
                name=body.name,
                url=body.url,
                events=body.events,
                secret=body.secret,
                generate_secret=body.generate_secret,
                enabled=True if body.enabled is None else body.enabled,
                timeout_ms=body.timeout_ms or DEFAULT_TIMEOUT_MS,
            )
        given = body.model_dump(by_alias=True, include=body.model_fields_set - {"id", "generate_secret"})
        nulls = [f for f in NOT_NULL if f in given and given[f] is None]
        if nulls:
            raise Invalid(f"Invalid request: {nulls[0]} must not be null")
        if not given and not body.generate_secret:
            raise Invalid("Invalid request: name at least one field to change")
        if body.generate_secret and "secret" in given:
            raise Invalid("Invalid request: give secret or generateSecret, not both")
        return service.update(actor(request), body.id, given, body.generate_secret)

    @r.delete("/admin/gateway-hooks")
    async def delete_hook(
        request: Request,
        id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        body: HookRef | None = None,
    ) -> dict[str, Any]:
        """Delete a hook (`?id=` or `{"id"}`); what was still queued for it is dead-lettered."""
        hook_id = id or (body.id if body else None)
        if not hook_id:
            raise Invalid('Invalid request: id is required (?id= or a JSON body {"id"})')
        return service.delete(actor(request), hook_id)

    return r
