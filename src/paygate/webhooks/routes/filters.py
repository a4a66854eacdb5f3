"""Webhook routing over HTTP: filter rules (/webhooks/filters…) and per-key URLs (/keys/webhook).

Secrets are write-only (`hasSecret`, `"***"`); URLs are shown as scheme + host. An unsafe URL
(see webhooks/ssrf.py) is a 400 that changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import Body, KeyRef, KeyRefField, actor, find_key
from paygate.core.domain_errors import Invalid
from paygate.keys.service import KeyService
from paygate.webhooks.checks import MAX_EVENTS, MAX_PREFIXES
from paygate.webhooks.service import WebhookService
from paygate.webhooks.ssrf import MAX_URL_LENGTH

Name = Annotated[str, Field(min_length=1, max_length=100)]
EventName = Annotated[str, Field(min_length=1, max_length=64)]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
Secret = Annotated[str, Field(min_length=1, max_length=256)]
Prefix = Annotated[str, Field(min_length=1, max_length=7)]
FilterId = Annotated[str, Field(min_length=1, max_length=64)]


class FilterCreate(Body):
    name: Name
    events: list[EventName] = Field(min_length=1, max_length=MAX_EVENTS)
    url: Url
    secret: Secret | None = None
    key_prefixes: list[Prefix] = Field(default_factory=list, max_length=MAX_PREFIXES)
    active: bool = True


class FilterUpdate(Body):
    id: FilterId
    name: Name | None = None
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=MAX_EVENTS)
    url: Url | None = None
    secret: Secret | None = None  # null removes the secret
    key_prefixes: list[Prefix] | None = Field(default=None, max_length=MAX_PREFIXES)
    active: bool | None = None


class FilterRef(Body):
    id: FilterId


class KeyWebhookBody(Body):
    key: KeyRefField
    url: Url
    secret: Secret | None = None


NOT_NULL = ("name", "events", "url", "active")


def add_routes(r: APIRouter, keys: KeyService, service: WebhookService) -> None:
    @r.get("/webhooks/filters")
    async def list_filters() -> dict[str, Any]:
        """Every filter rule (config-file ones included, read-only), secrets hidden."""
        filters = service.filters()
        return {"filters": filters, "count": len(filters)}

    @r.post("/webhooks/filters", status_code=201)
    async def create_filter(body: FilterCreate, request: Request) -> dict[str, Any]:
        """Route events of some types (and keys) to another URL, with its own queue and secret."""
        return service.create_filter(
            actor(request),
            name=body.name,
            events=body.events,
            url=body.url,
            secret=body.secret,
            key_prefixes=body.key_prefixes,
            active=body.active,
        )

    @r.post("/webhooks/filters/update")
    async def update_filter(body: FilterUpdate, request: Request) -> dict[str, Any]:
        """Change some fields of a filter (`id` plus the fields to change)."""
        given = body.model_dump(by_alias=True, include=body.model_fields_set - {"id"})
        nulls = [f for f in NOT_NULL if f in given and given[f] is None]
        if nulls:
            raise Invalid(f"Invalid request: {nulls[0]} must not be null")
        if not given:
            raise Invalid("Invalid request: name at least one field to change")
        return service.update_filter(actor(request), body.id, given)

    @r.post("/webhooks/filters/delete")
    async def delete_filter(body: FilterRef, request: Request) -> dict[str, Any]:
        """Delete a filter; what was still queued for it is dead-lettered."""
        return service.delete_filter(actor(request), body.id)

    @r.post("/keys/webhook")
    async def set_key_webhook(body: KeyWebhookBody, request: Request) -> dict[str, Any]:
        """Send this key's events (calls and admin events) to `url` too, signed with `secret`."""
        return service.set_key_hook(actor(request), find_key(keys, body.key), body.url, body.secret)

    @r.get("/keys/webhook")
    async def get_key_webhook(key: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
        """The key's webhook (URL masked), and its delivery counters."""
        return service.key_hook_view(find_key(keys, key))

    @r.delete("/keys/webhook")
    async def remove_key_webhook(body: KeyRef, request: Request) -> dict[str, Any]:
        """Stop sending this key's events to its own URL."""
        return service.remove_key_hook(actor(request), find_key(keys, body.key))
