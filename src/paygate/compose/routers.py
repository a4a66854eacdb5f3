"""Every domain's services and routers, built and wired in one place.

Routes are matched in the order they are included, so `ROUTE_ORDER` fixes it: a new endpoint
family adds its builder to its domain's function here and its name to the order.
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.admin.admin_keys import AdminKeys
from paygate.admin.config_view import ConfigView
from paygate.admin.routes import admin_keys, config_view, maintenance
from paygate.alerts import routes as alerts
from paygate.alerts.routes import balance as balance_alerts
from paygate.analytics.routes import reports as analytics
from paygate.audit import routes as audit
from paygate.billing.routes import usage
from paygate.compose.access import access_routers
from paygate.compose.admin import build_analytics, build_public, build_reports, build_usage
from paygate.compose.credentials import credential_routers
from paygate.compose.events import (
    build_alerts,
    build_balance_alerts,
    build_event_stream,
    build_webhooks,
    start_request_log,
)
from paygate.compose.hooks import webhook_admin_routers
from paygate.compose.keys import backup_router, key_routers, policy_routers
from paygate.compose.oauth import oauth_routers
from paygate.compose.payments import payment_routers
from paygate.compose.plugins import plugin_routers
from paygate.compose.reload import reload_routers
from paygate.compose.rules import rules_routers
from paygate.compose.scheduled import scheduled_reports_router
from paygate.compose.tracing import tracing_routers
from paygate.compose.traffic import traffic_routers
from paygate.compose.x402 import x402_routers
from paygate.events import routes as admin_events
from paygate.mcp.routes import tasks as admin_tasks
from paygate.mcp.task_calls import TaskCalls
from paygate.public import routes as public
from paygate.reports.balance import BalanceHistory
from paygate.reports.routes import balance, dry_run, key_reports, key_views, request_log
from paygate.runtime import Runtime
from paygate.web import routes as web
from paygate.webhooks.routes import delivery as webhooks

ROUTE_ORDER = (
    "public",
    "keys",
    "usage_admin",
    "usage_client",
    "balance_client",
    "key_lifecycle",
    "portal_rotate",
    "templates",
    "bulk",
    "key_io",
    "auto_topup",
    "reservations",
    "schedules",
    "expiring",
    "policy",
    "groups",
    "teams",
    "namespaces",
    "key_views",
    "key_reports",
    "key_meta",
    "dry_run",
    "admin_keys",
    "plans",
    "ip_access",
    "signing",
    "tenants",
    "maintenance",
    "config_view",
    "config_reload",
    "config_profiles",
    "backup",
    "audit",
    "request_log",
    "admin_events",
    "alerts",
    "balance_alerts",
    "webhooks",
    "gateway_hooks",
    "webhook_replay",
    "scheduled_reports",
    "tasks",
    "tokens",
    "x402",
    "stripe",
    "stripe_admin",
    "analytics",
    "oauth_metadata",
    "oauth_register",
    "oauth_clients",
    "oauth_authorize",
    "oauth_token",
    "web",
    "tool_aliases",
    "tool_schemas",
    "guardrails",
    "transforms",
    "tool_deps",
    "approval_workflows",
    "canary",
    "mirror",
    "concurrency",
    "priority_queue",
    "circuit",
    "timeouts",
    "retry_policy",
    "dedup",
    "cache",
    "tracing",
    "plugins",
    "spend_caps",
    "budget_policies",
    "adaptive_rates",
    "quota_rules",
    "cost_tags",
)


def public_routers(rt: Runtime) -> dict[str, APIRouter]:
    service = build_usage(rt)
    return {
        "public": public.router(build_public(rt), rt.metrics),
        "usage_admin": usage.admin_router(rt.guard, service),
        "usage_client": usage.client_router(service),
        "balance_client": balance.client_router(BalanceHistory(rt.store, rt.billing)),
    }


def report_routers(rt: Runtime) -> dict[str, APIRouter]:
    service = build_reports(rt)
    analytics_service = build_analytics(rt)
    return {
        "key_views": key_views.router(rt.guard, service),
        "key_reports": key_reports.router(rt.guard, service),
        "dry_run": dry_run.router(rt.guard, service),
        "analytics": analytics.router(rt.guard, analytics_service),
        "scheduled_reports": scheduled_reports_router(rt, analytics_service),
    }


def admin_routers(rt: Runtime) -> dict[str, APIRouter]:
    return {
        "admin_keys": admin_keys.router(rt.guard, AdminKeys(rt.admin, rt.events)),
        "maintenance": maintenance.router(rt.guard, rt.maintenance),
        "config_view": config_view.router(rt.guard, ConfigView(rt.settings, rt.events)),
        **reload_routers(rt),
        "backup": backup_router(rt),
        "tasks": tasks_router(rt),
    }


def tasks_router(rt: Runtime) -> APIRouter:
    tasks = rt.dispatcher.tasks
    assert isinstance(tasks, TaskCalls), "compose/core.py builds the tasks"
    return admin_tasks.router(rt.guard, tasks)


def event_routers(rt: Runtime) -> dict[str, APIRouter]:
    """The event side, in subscription order: audit (compose/core.py), the request log, the SSE hub, alerts,
    webhooks (compose/events.py)."""
    g = rt.guard
    service = build_webhooks(rt)
    return {
        "audit": audit.router(g, rt.audit),
        "request_log": request_log.router(g, start_request_log(rt.settings.request_log_size, rt.events, rt.audit)),
        "admin_events": admin_events.router(g, build_event_stream(rt)),
        "alerts": alerts.router(g, build_alerts(rt)),
        "balance_alerts": balance_alerts.client_router(build_balance_alerts(rt)),
        "webhooks": webhooks.router(g, rt.keys, service),
        **webhook_admin_routers(rt, service),
    }


def web_routers(rt: Runtime) -> dict[str, APIRouter]:
    """The web pages (docs/dashboard.md): static files, clients of the API above."""
    return {"web": web.router()}


def build_routers(rt: Runtime) -> list[APIRouter]:
    built: dict[str, APIRouter] = {}
    domains = (
        public_routers,
        key_routers,
        policy_routers,
        access_routers,
        report_routers,
        admin_routers,
        event_routers,
        credential_routers,
        oauth_routers,
        x402_routers,
        payment_routers,
        traffic_routers,
        rules_routers,  # its call stages (quota warnings, cost tags) inside the traffic controls' ...
        plugin_routers,  # ... and outside the plugins' call stage, the innermost
        tracing_routers,
        web_routers,
    )
    for domain in domains:
        built.update(domain(rt))
    assert set(built) == set(ROUTE_ORDER), set(built) ^ set(ROUTE_ORDER)
    return [built[name] for name in ROUTE_ORDER]
