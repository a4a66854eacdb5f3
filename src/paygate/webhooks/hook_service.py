"""What /admin/gateway-hooks calls: create, change, delete and report gateway hooks (gateway_hooks.py).

Deliveries are the webhook worker's (webhooks/delivery.py); this adds the admin side: audit events that
name what changed (a URL as scheme + host only, never a secret), a secret shown once, per-hook counters.
"""

from __future__ import annotations

import secrets
from typing import Any

from paygate.core.values import iso_time
from paygate.webhooks.gateway_hooks import GatewayHook, GatewayHooks
from paygate.webhooks.service import WebhookService
from paygate.webhooks.ssrf import shown

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(24)


class GatewayHookService:
    def __init__(self, webhooks: WebhookService) -> None:
        assert webhooks.routes.gateway is not None, "open_webhooks sets the gateway hooks"
        self.webhooks = webhooks
        self.hooks: GatewayHooks = webhooks.routes.gateway

    def view(self, hook: GatewayHook) -> dict[str, Any]:
        worker, queue = self.webhooks.worker, self.webhooks.queue
        s = worker.stats_for(hook.id)
        pending = queue.pending.get(hook.id)
        return {
            **hook.public(),
            "delivered": s.delivered,
            "deliveredEvents": s.delivered_events,
            "failed": s.failed,
            "retries": s.retries,
            "lastStatus": s.last_status,
            "lastError": s.last_error,
            "lastAttemptAt": iso_time(s.last_at),
            "pendingRetries": worker.pending_retries(hook.id),
            "bufferedEvents": pending.count if pending else 0,
            "deadLetterCount": queue.dead.get(hook.id, 0),
            "dropped": self.hooks.dropped.get(hook.id, 0),
        }

    def all(self) -> dict[str, Any]:
        hooks = [self.view(h) for h in self.hooks.hooks.values()]
        return {"hooks": hooks, "count": len(hooks), "paused": self.webhooks.worker.paused}

    def get(self, hook_id: str) -> dict[str, Any]:
        return self.view(self.hooks.get(hook_id))

    def create(
        self,
        actor: str,
        *,
        name: str,
        url: str,
        events: list[str],
        secret: str | None,
        generate_secret: bool,
        enabled: bool,
        timeout_ms: int,
    ) -> dict[str, Any]:
        if generate_secret and secret is None:
            secret = new_secret()
        hook = self.hooks.create(name, url, events, secret, enabled, timeout_ms)
        self.webhooks.events.publish(
            "gateway_hook.created",
            actor,
            id=hook.id,
            name=hook.name,
            url=shown(hook.url),
            events=list(hook.events),
            enabled=hook.enabled,
            hasSecret=secret is not None,
        )
        return {**self.view(hook), "secret": secret}  # the only time the secret is shown

    def update(self, actor: str, hook_id: str, changes: dict[str, Any], generate_secret: bool) -> dict[str, Any]:
        if generate_secret:
            changes = {**changes, "secret": new_secret()}
        hook = self.hooks.update(hook_id, changes)
        self.webhooks.events.publish("gateway_hook.updated", actor, id=hook.id, name=hook.name, changes=sorted(changes))
        self.webhooks.worker.wake()
        out = self.view(hook)
        if changes.get("secret"):
            out["secret"] = changes["secret"]  # a new secret is shown once, like on create
        return out

    def delete(self, actor: str, hook_id: str) -> dict[str, Any]:
        hook = self.hooks.delete(hook_id)
        self.webhooks.events.publish("gateway_hook.deleted", actor, id=hook.id, name=hook.name)
        self.webhooks.worker.wake()  # what was queued for it is dead-lettered ("destination removed")
        return {"deleted": True, "id": hook.id}
