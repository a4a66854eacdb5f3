"""Builders for the webhook pipeline's admin views: gateway hooks (/admin/gateway-hooks) and the replay
queue (/admin/webhook-replay), both over the one webhook service compose/events.build_webhooks made."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.runtime import Runtime
from paygate.webhooks.gateway_hooks import HookMetrics
from paygate.webhooks.hook_service import GatewayHookService
from paygate.webhooks.replay_queue import ReplayQueue
from paygate.webhooks.routes import gateway_hooks as gateway_hook_routes
from paygate.webhooks.routes import replay as replay_routes
from paygate.webhooks.service import WebhookService


def webhook_admin_routers(rt: Runtime, webhooks: WebhookService) -> dict[str, APIRouter]:
    hooks = GatewayHookService(webhooks)
    rt.metrics.registry.register(HookMetrics(hooks.hooks, webhooks.worker.stats_for))
    s = rt.settings
    replays = ReplayQueue(webhooks, s.webhook_replay_max_retries, s.webhook_replay_max_age_days)
    replays.load()
    rt.tickers.append(replays.tick)
    return {
        "gateway_hooks": gateway_hook_routes.router(rt.guard, hooks),
        "webhook_replay": replay_routes.router(rt.guard, replays),
    }
