"""The core components every domain uses: store, event bus, audit log, keys, admin auth, billing, the
MCP side (backend, relay, dispatcher, endpoint), metrics; built once from Settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paygate.admin.auth import AdminAuth
from paygate.admin.auth_throttle import AuthThrottle
from paygate.admin.maintenance import Maintenance
from paygate.admin.rate_limit import AdminRate
from paygate.api.common import AdminGuard
from paygate.audit.service import AuditService
from paygate.billing.service import BillingService
from paygate.config import Settings
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.events.hub import EventHub, id_blocks
from paygate.events.types import EVENT_TYPES
from paygate.http.cors import mcp_origins
from paygate.keys.service import KeyService
from paygate.mcp.backends.base import Backend
from paygate.mcp.backends.http import HttpBackend
from paygate.mcp.backends.router import RouterBackend
from paygate.mcp.backends.stdio import StdioBackend
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.endpoint import McpEndpoint
from paygate.mcp.relay import Relay
from paygate.mcp.session_rate import SessionRate
from paygate.mcp.sessions import SessionManager
from paygate.mcp.task_calls import TaskCalls
from paygate.mcp.tasks import TaskStore
from paygate.metrics import Metrics
from paygate.runtime import Runtime
from paygate.serving import ServingState
from paygate.store.audit_log import audit_log_of
from paygate.store.base import Store
from paygate.store.shared import redis_store
from paygate.store.sqlite import MEMORY, SQLiteStore

log = logging.getLogger("paygate")


def build_backend(settings: Settings) -> tuple[Backend, str]:
    if settings.servers:
        children: dict[str, Backend] = {}
        for server in settings.servers:
            if server.remote_url:
                children[server.prefix] = HttpBackend(server.remote_url, label=server.prefix)
            else:
                assert server.server_command is not None
                children[server.prefix] = StdioBackend(server.server_command, server.server_args, server.prefix)
        return RouterBackend(children), "multi"
    if settings.remote_url:
        return HttpBackend(settings.remote_url), "http"
    if settings.server_command:
        return StdioBackend(settings.server_command, settings.server_args), "stdio"
    raise ValueError("no backend configured: use --server, --remote-url, or 'servers' in a config file")


def build_pricebook(settings: Settings) -> PriceBook:
    overrides = {
        name: ToolPrice(
            credits_per_call=p.credits_per_call
            if p.credits_per_call is not None
            else settings.default_credits_per_call,
            credits_per_kb_input=p.credits_per_kb_input,
            credits_per_kb_output=p.credits_per_kb_output,
            rate_limit_per_min=p.rate_limit_per_min,
        )
        for name, p in settings.tool_pricing.items()
    }
    return PriceBook(settings.default_credits_per_call, settings.global_rate_limit_per_min, overrides)


BILLING_FIELDS = frozenset(
    {"defaultCreditsPerCall", "toolPricing", "globalRateLimitPerMin", "shadowMode", "refundOnFailure", "globalQuota"}
)


def reload_billing(billing: BillingService, dispatcher: Dispatcher) -> Callable[[Settings, frozenset[str]], Any]:
    """The hot reload's pricing, rate limit, shadow / refund flags, global quota and free methods
    (admin/reload.py): new objects built here, swapped in by the commit."""

    def prepare(s: Settings, changed: frozenset[str]) -> Callable[[], None] | None:
        if not changed & (BILLING_FIELDS | {"freeMethods"}):
            return None
        prices, quota = build_pricebook(s), s.global_quota.as_quota() if s.global_quota else None

        def commit() -> None:
            billing.reconfigure(prices, shadow=s.shadow_mode, refund_on_failure=s.refund_on_failure, quota=quota)
            dispatcher.reconfigure(list(s.free_methods))

        return commit

    return prepare


def state_path(settings: Settings) -> str:
    return MEMORY if settings.in_memory else str(Path(settings.state_file).expanduser())


def build_tasks(settings: Settings, dispatcher: Dispatcher, events: EventHub) -> TaskCalls:
    """MCP tasks (mcp/task_calls.py): the dispatcher hands task-augmented calls and tasks/* to it."""
    store = TaskStore(settings.max_tasks, settings.max_tasks_per_key, settings.task_ttl_ms, settings.max_task_ttl_ms)
    tasks = TaskCalls(dispatcher, store, events, settings.bill_task_creation)
    dispatcher.tasks = tasks
    return tasks


def build_store(settings: Settings) -> Store:
    """The embedded SQLite store, or with `redisUrl` the Redis store a fleet shares (docs/redis.md)."""
    if settings.redis_url:
        from paygate.store.redis_backend.store import RedisStore  # here: only a fleet loads Redis

        shared = RedisStore(settings.redis_url, prefix=settings.redis_prefix, usage_cap=settings.redis_usage_max_events)
        shared.open()
        for problem in shared.durability_problems():
            log.warning("redis: %s", problem)
        return shared
    store = SQLiteStore(state_path(settings), synchronous=settings.sqlite_sync)
    store.open()
    return store


def build_core(settings: Settings, backend: Backend | None = None) -> Runtime:
    store = build_store(settings)
    events = EventHub(known=EVENT_TYPES)
    audit = AuditService(
        audit_log_of(store),
        max_entries=settings.audit_max_entries,
        max_age_days=settings.audit_max_age_days,
        before_read=events.flush,
        gate_events=settings.audit_gate_events,
        max_auth_failures=settings.audit_auth_failure_max_entries,
    )
    # one id per event, shared by its audit entry, SSE message and webhook; a fleet takes blocks of ids
    # from Redis so that its instances never hand out the same one
    events.seed(audit.log.max_id() + 1)
    if (shared := redis_store(store)) is not None:
        events.number_from(id_blocks(shared.audit.reserve_ids))
    events.subscribe_batch(audit.record_batch)
    keys = KeyService(store, events.publish)
    for raw, credits in settings.import_keys.items():
        keys.import_key(raw, credits)
    key_file = None if settings.in_memory else Path(state_path(settings)).parent / "admin.key"
    admin = AdminAuth(store, settings.admin_key, key_file)
    metrics = Metrics()
    billing = BillingService(
        store,
        build_pricebook(settings),
        metrics,
        shadow=settings.shadow_mode,
        refund_on_failure=settings.refund_on_failure,
        global_quota=settings.global_quota.as_quota() if settings.global_quota else None,
        trusted_proxies=tuple(settings.trusted_proxies),
        country_header=settings.country_header,
    )
    if shared is not None:  # the gate here sees this instance's counts only: Redis checks the fleet's
        billing.recheck_limits = True
        billing.quotas.shared = shared.quota_counter
    billing.start()
    transport = "custom"
    if backend is None:
        backend, transport = build_backend(settings)
    sessions = SessionManager(
        settings.max_sessions,
        max_sessions_per_key=settings.max_sessions_per_key,
        max_anonymous_sessions=settings.max_anonymous_sessions,
        max_streams_per_session=settings.max_streams_per_session,
        owner_of_credential=billing.session_owner,
    )
    relay = Relay(sessions, settings.tool_timeout_seconds)  # server → client traffic (mcp/relay.py)
    relay.attach(backend)
    dispatcher = Dispatcher(
        backend, billing, settings.free_methods, settings.tool_timeout_seconds, events, relay, settings.discovery
    )
    tasks = build_tasks(settings, dispatcher, events)
    maintenance = Maintenance(store, events)
    maintenance.load()
    serving = ServingState(backend, maintenance, shared)  # before the endpoint and the public routes that read it
    endpoint = McpEndpoint(
        dispatcher,
        sessions,
        settings.max_body_bytes,
        serving,
        mcp_origins(settings.allowed_origins, settings.cors.origin),  # http/cors.py: CORS and /mcp agree
        max_batch_size=settings.max_batch_size,
        max_batch_response_bytes=settings.max_batch_response_bytes,
        session_rate=SessionRate(settings.session_rate_limit),
        trusted_proxies=tuple(settings.trusted_proxies),
    )
    rt = Runtime(
        settings,
        store,
        keys,
        billing,
        backend,
        dispatcher,
        sessions,
        endpoint,
        metrics,
        admin,
        transport,
        maintenance,
        events,
        audit,
        AdminGuard(
            admin,
            events,
            AuthThrottle(settings.auth_failure_limit),
            tuple(settings.trusted_proxies),
            AdminRate(settings.admin_rate_limit),
        ),
        serving,
    )
    rt.tickers += [audit.tick, tasks.tick]
    rt.on_reload.append(reload_billing(billing, dispatcher))  # first: later commits read the new prices
    if shared is not None:
        fleet = shared

        async def bind_store() -> None:  # the listener's news are applied on the loop from now on
            fleet.bind_loop()

        rt.on_start.append(bind_store)
        rt.tickers.append(lambda _: maintenance.load())  # switched on or off by another instance
    rt.on_stop.append(tasks.stop)  # before the store closes: a cancelled task's refund is written
    # On SIGTERM: refuse new /mcp work (503, /health "draining") and end the GET streams at once, so
    # uvicorn's wait is for in-flight calls only (exit_signals.py).
    rt.on_exit_signal += [serving.drain, sessions.end_streams]
    metrics.bind_gauges(
        lambda: keys.active_count(),
        lambda: sum(k.credits for k in store.list_keys() if k.active),
        lambda: len(sessions),
        lambda: 1.0 if backend.ready else 0.0,
    )
    metrics.bind_tasks(tasks.store.stats)
    metrics.bind_event_bus(lambda: events.published, lambda: events.pending)
    metrics.bind_admin_auth(lambda: rt.guard.throttle.failures, lambda: rt.guard.throttle.throttled)
    return rt
