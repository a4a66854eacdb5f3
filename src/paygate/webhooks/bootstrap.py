"""`open_webhooks`: the webhook service built from the settings, before anything is subscribed or started.

The configured webhookUrl is checked (an unsafe one is a start-up error), the filter rules and per-key
hooks are loaded, and the durable queue is read back from the store's outbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from paygate.config import Settings
from paygate.events.hub import EventHub
from paygate.metrics import Metrics
from paygate.store.base import Store
from paygate.webhooks.checks import WebhookError
from paygate.webhooks.gateway_hooks import GatewayHooks
from paygate.webhooks.queue import WebhookQueue
from paygate.webhooks.routing import DEFAULT, Destination, Routes
from paygate.webhooks.sender import Sender
from paygate.webhooks.service import WebhookService
from paygate.webhooks.ssrf import UnsafeUrl, check_url

log = logging.getLogger("paygate.webhooks")


def open_webhooks(settings: Settings, store: Store, events: EventHub, metrics: Metrics) -> WebhookService:
    """The webhook service with its routes and durable queue loaded (not yet subscribed or started: the
    composition root wires it). Raises ValueError (the CLI prints `error: …` and exits) for an unsafe or
    invalid webhookUrl or webhookFilters entry."""
    s = settings
    if s.webhook_url:
        try:
            check_url(s.webhook_url, s.webhook_allow_private, "webhookUrl")
        except UnsafeUrl as exc:
            raise ValueError(str(exc)) from exc
    routes = Routes(store, s.webhook_url, s.webhook_secret, s.webhook_allow_private)
    routes.gateway = GatewayHooks(store, s.webhook_allow_private)  # read with the rest by routes.load
    try:
        routes.load(s.webhook_filters)
    except WebhookError as exc:
        raise ValueError(str(exc)) from exc
    queue = WebhookQueue(store.outbox)
    queue.load(time.time())
    if queue.dests():
        log.info(
            "webhooks: %d event(s) and %d batch(es) queued from before the restart", queue.buffered, len(queue.batches)
        )
    return WebhookService(
        s, store, events, metrics, queue, routes, Sender(s.webhook_timeout_seconds, s.webhook_allow_private)
    )


WEBHOOK_FIELDS = frozenset({"webhookUrl", "webhookSecret", "webhookMaxRetries"})


def prepare_reload(service: WebhookService, settings: Settings, changed: frozenset[str]) -> Callable[[], None] | None:
    """A hot reload's webhookUrl / webhookSecret / webhookMaxRetries (admin/reload.py): the new default
    destination, checked like at start (an unsafe URL refuses the whole reload), swapped in by the commit.
    Batches already queued for the default destination go to the new URL (none: dead-lettered as
    `destination removed`, replayable)."""
    if not changed & WEBHOOK_FIELDS:
        return None
    url, secret, retries = settings.webhook_url, settings.webhook_secret, settings.webhook_max_retries
    if url:
        check_url(url, service.routes.allow_private, "webhookUrl")  # UnsafeUrl is a ValueError: refused
    default = Destination(DEFAULT, "default", url, secret) if url else None

    def commit() -> None:
        service.routes.default = default
        service.worker.max_retries = retries
        service.worker.wake()

    return commit
