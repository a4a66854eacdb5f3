"""Composition root: build every component from Settings and wire the routes.

`create_app` returns the ASGI app and the `Runtime` it serves. The outer
ASGI layer stamps `X-Request-Id` and `X-PayGate-Version` on every response,
counts requests for /metrics, enforces the body-size limit, and hands /mcp
to the raw endpoint so the hot path skips the framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.routing import Route

from paygate import __version__
from paygate.api import admin_events as admin_events_api
from paygate.api import (
    admin_keys,
    alerts,
    audit,
    auto_topup,
    backup,
    bulk,
    config_view,
    dry_run,
    expiring,
    groups,
    key_io,
    key_lifecycle,
    key_meta,
    key_reports,
    key_views,
    namespaces,
    plans,
    policy,
    reservations,
    schedules,
    teams,
    templates,
)
from paygate.api import keys as keys_api
from paygate.api import maintenance as maintenance_api
from paygate.api import public as public_api
from paygate.api import request_log as request_log_api
from paygate.api import usage as usage_api
from paygate.api import webhooks as webhooks_api
from paygate.api.common import ApiError, api_error_handler, validation_error_handler
from paygate.config import Settings
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.exit_signals import chain_exit_signals
from paygate.logs import REQUEST_ID
from paygate.mcp.backends.base import Backend
from paygate.mcp.backends.http import HttpBackend
from paygate.mcp.backends.router import RouterBackend
from paygate.mcp.backends.stdio import StdioBackend
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.endpoint import McpEndpoint
from paygate.mcp.http_io import Receive, Scope, Send, send_json
from paygate.mcp.relay import Relay
from paygate.mcp.sessions import SessionManager
from paygate.metrics import HTTP_METHODS, OTHER, Metrics
from paygate.services.admin_auth import AdminAuth
from paygate.services.audit import AuditService
from paygate.services.billing import BillingService
from paygate.services.event_types import EVENT_TYPES
from paygate.services.events import EventHub
from paygate.services.keys import KeyService
from paygate.services.maintenance import Maintenance
from paygate.services.runtime import Runtime
from paygate.store.audit_log import audit_log_of
from paygate.store.sqlite import MEMORY, SQLiteStore

log = logging.getLogger("paygate")
VERSION_HEADER = (b"x-paygate-version", __version__.encode())
_REQUEST_ID_OK = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
SWEEP_SECONDS = 60.0
STATE_UPLOAD_PATHS = frozenset({"/admin/restore", "/keys/import"})
TICK_SECONDS = 1.0


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
            credits_per_call=p.credits_per_call if p.credits_per_call is not None
            else settings.default_credits_per_call,
            credits_per_kb_input=p.credits_per_kb_input, credits_per_kb_output=p.credits_per_kb_output,
            rate_limit_per_min=p.rate_limit_per_min,
        )
        for name, p in settings.tool_pricing.items()
    }
    return PriceBook(settings.default_credits_per_call, settings.global_rate_limit_per_min, overrides)


def state_path(settings: Settings) -> str:
    return MEMORY if settings.in_memory else str(Path(settings.state_file).expanduser())


def build_runtime(settings: Settings, backend: Backend | None = None) -> Runtime:
    store = SQLiteStore(state_path(settings), synchronous=settings.sqlite_sync)
    store.open()
    events = EventHub(known=EVENT_TYPES)
    audit = AuditService(audit_log_of(store), max_entries=settings.audit_max_entries,
                         max_age_days=settings.audit_max_age_days, before_read=events.flush,
                         gate_events=settings.audit_gate_events)
    events.seed(audit.log.max_id() + 1)  # one id per event, shared by its audit entry, SSE message, webhook
    events.subscribe_batch(audit.record_batch)
    keys = KeyService(store)
    for raw, credits in settings.import_keys.items():
        keys.import_key(raw, credits)
    key_file = None if settings.in_memory else Path(state_path(settings)).parent / "admin.key"
    admin = AdminAuth(store, settings.admin_key, key_file)
    metrics = Metrics()
    billing = BillingService(store, build_pricebook(settings), metrics, shadow=settings.shadow_mode,
                             refund_on_failure=settings.refund_on_failure,
                             global_quota=settings.global_quota.as_quota() if settings.global_quota else None,
                             trusted_proxies=tuple(settings.trusted_proxies), country_header=settings.country_header)
    billing.start()
    transport = "custom"
    if backend is None:
        backend, transport = build_backend(settings)
    sessions = SessionManager()
    relay = Relay(sessions, settings.tool_timeout_seconds)  # server → client traffic (mcp/relay.py)
    relay.attach(backend)
    dispatcher = Dispatcher(backend, billing, settings.free_methods, settings.tool_timeout_seconds, events, relay,
                            settings.discovery)
    holder: dict[str, Runtime] = {}
    endpoint = McpEndpoint(dispatcher, sessions, settings.max_body_bytes, lambda: holder["rt"].draining,
                           lambda: holder["rt"].maintenance, settings.allowed_origins)
    maintenance = Maintenance(store)
    maintenance.load()
    rt = Runtime(settings, store, keys, billing, backend, dispatcher, sessions, endpoint, metrics, admin,
                 transport, maintenance, events, audit)
    rt.tickers.append(audit.tick)
    # On SIGTERM: refuse new /mcp work (503, /health "draining") and end the GET streams at once, so
    # uvicorn's wait is for in-flight calls only (exit_signals.py).
    rt.on_exit_signal += [lambda: setattr(rt, "draining", True), sessions.end_streams]
    holder["rt"] = rt
    metrics.bind_gauges(lambda: keys.active_count(), lambda: sum(k.credits for k in store.list_keys()
                        if k.active), lambda: len(sessions), lambda: 1.0 if backend.ready else 0.0)
    metrics.bind_event_bus(lambda: events.published, lambda: events.pending)
    return rt


OnReady = Callable[[Runtime], None]
# Every HTTP router, in order; a new endpoint family adds its module here (its `router` builds an APIRouter).
ROUTERS: tuple[Callable[[Runtime], APIRouter], ...] = (
    public_api.router, keys_api.router, usage_api.admin_router, usage_api.client_router,
    # issue 3: keys and policy (one module per endpoint family)
    key_lifecycle.router, templates.router, bulk.router, key_io.router, auto_topup.router, reservations.router,
    schedules.router, expiring.router, policy.router, groups.router, teams.router, namespaces.router,
    key_views.router, key_reports.router, key_meta.router, dry_run.router, admin_keys.router, plans.router,
    maintenance_api.router, config_view.router, backup.router,
    audit.router,  # issue 4: the durable audit log
    request_log_api.router,  # issue 4: /requests, /tools/stats (ring of gate events)
    admin_events_api.router,  # issue 4: GET /admin/events (SSE)
    alerts.router,  # alert rules, evaluated off the hot path
    webhooks_api.router,  # webhook delivery, filters, per-key URLs
)


def create_app(settings: Settings, *, backend: Backend | None = None, on_ready: OnReady | None = None,
               runtime: Runtime | None = None) -> tuple[GatewayApp, Runtime]:
    rt = runtime or build_runtime(settings, backend)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await rt.backend.start()
        rt.dispatcher.priced_tools()
        sweeper = asyncio.get_running_loop().create_task(_sweep_forever(rt))
        ticker = asyncio.get_running_loop().create_task(_tick_forever(rt))
        for start in rt.on_start:
            await start()
        watch_signals, unwatch_signals = chain_exit_signals(rt.on_exit_signal)
        await watch_signals()
        if on_ready:
            on_ready(rt)
        try:
            yield
        finally:
            await unwatch_signals()
            rt.draining = True
            rt.events.flush()
            sweeper.cancel()
            ticker.cancel()
            for stop in rt.on_stop:
                try:
                    await stop()
                except Exception:  # one failed stop must not keep the others (or the store) open
                    log.exception("shutdown step %r failed", stop)
            rt.events.flush()
            rt.sessions.close_all()
            await rt.backend.stop()
            rt.store.close()

    api = FastAPI(title="PayGate MCP", version=__version__, lifespan=lifespan,
                  description="Pay-per-tool-call gateway for MCP servers.")
    api.add_exception_handler(ApiError, api_error_handler)
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    for build in ROUTERS:
        api.include_router(build(rt))
    return GatewayApp(api, rt), rt


async def _sweep_forever(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        rt.sessions.sweep()
        rt.store.rate_sweep(time.time())


async def _tick_forever(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        now = time.time()
        for tick in list(rt.tickers):
            try:
                tick(now)
            except Exception:  # one broken ticker must not stop the others
                log.exception("background ticker %r failed", tick)


def served_routes(api: FastAPI) -> list[APIRoute | Route]:
    """Every route the app serves. FastAPI keeps included routers nested (`_IncludedRouter`); walk them."""
    out: list[APIRoute | Route] = []
    pending: list[Any] = list(api.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute | Route):
            out.append(route)
        elif hasattr(route, "original_router"):  # an included router: our routers carry no prefix
            pending.extend(route.original_router.routes)
    return out


class GatewayApp:
    """The outermost ASGI layer (see module docstring)."""

    def __init__(self, api: FastAPI, rt: Runtime) -> None:
        self.api = api
        self.rt = rt
        self.known_paths = frozenset(route.path for route in served_routes(api)) | {"/mcp"}
        # Request ids: a random per-process prefix and a counter (unique, and no getrandom() per request).
        self._id_prefix = "req_" + secrets.token_hex(4)
        self._id_counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        request_id = _request_id(scope) or f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFF:08x}"
        scope["paygate.request_id"] = request_id
        REQUEST_ID.set(request_id)  # log lines written while serving this request carry its id
        status_box = [500]
        stamp = [(b"x-request-id", request_id.encode()), VERSION_HEADER]

        async def stamped_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *stamp]
            await send(message)

        path = scope["path"]
        try:
            if path == "/mcp":
                await self.rt.endpoint(scope, receive, stamped_send)
            else:
                limit = self._body_limit(scope)
                if _too_big(scope, limit):
                    await send_json(stamped_send, 413, {"error": "Request body too large"})
                else:
                    await self.api(scope, _limited(receive, limit), stamped_send)
        finally:
            label = path if path in self.known_paths else OTHER
            method = scope["method"]
            self.rt.metrics.http_requests_for(method if method in HTTP_METHODS else OTHER, label,
                                              str(status_box[0])).inc()


    def _body_limit(self, scope: Scope) -> int:
        """`maxBodyBytes`, except for bulk state uploads (restore, import) by a caller holding an admin
        key: those may reach `maxStateUploadBytes`. The key is checked before any of the body is read,
        so nobody without one can make the gateway buffer a large body."""
        settings = self.rt.settings
        if scope["path"] in STATE_UPLOAD_PATHS and settings.max_state_upload_bytes > settings.max_body_bytes:
            for name, value in scope["headers"]:
                if name == b"x-admin-key":
                    if self.rt.admin.identify(value.decode("latin-1")) is not None:
                        return settings.max_state_upload_bytes
                    break
        return settings.max_body_bytes


def _request_id(scope: Scope) -> str | None:
    """The caller's X-Request-Id when it is well-formed."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID_OK.match(value):
                return str(value.decode())
            break
    return None


def _too_big(scope: Scope, limit: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


class BodyTooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """A receive that fails once a chunked body passes the limit."""
    seen = [0]

    async def wrapped() -> Any:
        message = await receive()
        seen[0] += len(message.get("body", b""))
        if seen[0] > limit:
            raise BodyTooLarge(f"request body over {limit} bytes")
        return message

    return wrapped


AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
