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
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from paygate import __version__
from paygate.api.common import (
    ROLE_EXTRA,
    domain_error_handler,
    http_error_handler,
    request_id_of,
    validation_error_handler,
)
from paygate.asgi import Receive, Scope, Send, send_json
from paygate.body_limit import declared_too_big, is_chunked, json_despite_label, labelled_form, read_chunked
from paygate.compose import build_core, build_routers
from paygate.config import Settings
from paygate.core.domain_errors import DomainError
from paygate.exit_signals import chain_exit_signals
from paygate.http.cors import CorsPolicy, mcp_origins
from paygate.http.public_rate import MESSAGE as PUBLIC_RATE_MESSAGE
from paygate.http.public_rate import PublicRate, is_public
from paygate.http.response_headers import ResponseHeaders, has_cache_control
from paygate.logs import REQUEST_ID
from paygate.mcp.backends.base import Backend
from paygate.metrics import HTTP_METHODS, OTHER
from paygate.runtime import Runtime
from paygate.store.errors import StoreUnavailable

log = logging.getLogger("paygate")
VERSION_HEADER = (b"x-paygate-version", __version__.encode())
_REQUEST_ID_OK = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
SWEEP_SECONDS = 60.0
STATE_UPLOAD_PATHS = frozenset({"/admin/restore", "/keys/import"})
TICK_SECONDS = 1.0


OnReady = Callable[[Runtime], None]


def create_app(
    settings: Settings,
    *,
    backend: Backend | None = None,
    on_ready: OnReady | None = None,
    runtime: Runtime | None = None,
) -> tuple[GatewayApp, Runtime]:
    rt = runtime or build_core(settings, backend)

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
            rt.serving.drain()
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

    api = FastAPI(
        title="PayGate MCP",
        version=__version__,
        lifespan=lifespan,
        description="Pay-per-tool-call gateway for MCP servers.",
    )
    api.add_exception_handler(DomainError, domain_error_handler)
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    api.add_exception_handler(StarletteHTTPException, http_error_handler)
    api.add_exception_handler(StoreUnavailable, store_unavailable_handler)
    for router in build_routers(rt):
        api.include_router(router)
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
        routes = served_routes(api)
        self.known_paths = frozenset(route.path for route in routes) | {"/mcp"}
        # The role each state-upload route declares (the larger body limit is for keys that hold it).
        self._upload_roles = {
            route.path: str((getattr(route, "openapi_extra", None) or {}).get(ROLE_EXTRA) or "admin")
            for route in routes
            if route.path in STATE_UPLOAD_PATHS and "POST" in (route.methods or ())
        }
        # Request ids: a random per-process prefix and a counter (unique, and no getrandom() per request).
        self._id_prefix = "req_" + secrets.token_hex(4)
        self._id_counter = itertools.count(1)
        s = rt.settings
        cors = CorsPolicy(
            s.cors.origin, s.cors.credentials, s.cors.max_age, mcp_origins(s.allowed_origins, s.cors.origin)
        )
        self.headers = ResponseHeaders(s.custom_headers, cors, VERSION_HEADER)  # http/response_headers.py
        self.public_rate = PublicRate(s.public_rate_limit, tuple(s.trusted_proxies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        request_id, origin = _request_id_and_origin(scope)
        request_id = request_id or f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFF:08x}"
        scope["paygate.request_id"] = request_id
        REQUEST_ID.set(request_id)  # log lines written while serving this request carry its id
        status_box = [500]
        id_header = (b"x-request-id", request_id.encode())
        path = scope["path"]
        added: tuple[tuple[bytes, bytes], ...]
        allowed: tuple[tuple[bytes, bytes], ...]
        if origin is None and path == "/mcp" and scope["method"] == "POST":
            added, allowed = self.headers.mcp_plain, self.headers.plain_allowed  # the hot path: nothing built
        else:
            added, allowed = self.headers.for_request(path, origin, path == "/mcp")
        cache_control = self.headers.cache_control

        async def stamped_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                headers = message.get("headers", [])
                if has_cache_control(headers):
                    message["headers"] = [*headers, id_header, *added]
                else:
                    message["headers"] = [*headers, id_header, *added, cache_control]
            await send(message)

        try:
            if scope["method"] == "OPTIONS":  # a CORS preflight, on any path (http/cors.py)
                preflight: list[tuple[bytes, bytes]] = list(self.headers.cors.preflight) if allowed else []
                await stamped_send({"type": "http.response.start", "status": 204, "headers": preflight})
                await stamped_send({"type": "http.response.body", "body": b""})
            elif path == "/mcp":
                await self.rt.endpoint(scope, receive, stamped_send)
            elif is_public(path) and (wait := self._public_wait(scope)) is not None:
                body = {"error": PUBLIC_RATE_MESSAGE, "requestId": request_id}
                await send_json(stamped_send, 429, body, [(b"retry-after", str(wait).encode())])
            else:
                limit = self._body_limit(scope)
                whole: Receive | None = receive
                if declared_too_big(scope, limit):
                    whole = None
                elif labelled_form(scope):
                    whole = await json_despite_label(scope, receive, limit)
                elif is_chunked(scope):
                    whole = await read_chunked(receive, limit)
                if whole is None:
                    await send_json(stamped_send, 413, {"error": "Request body too large", "requestId": request_id})
                else:
                    await self.api(scope, whole, stamped_send)
        finally:
            label = path if path in self.known_paths else OTHER
            method = scope["method"]
            self.rt.metrics.http_requests_for(
                method if method in HTTP_METHODS else OTHER, label, str(status_box[0])
            ).inc()

    def _public_wait(self, scope: Scope) -> int | None:
        client = scope.get("client")
        return self.public_rate.retry_after(client[0] if client else None, scope["headers"])

    def _body_limit(self, scope: Scope) -> int:
        """`maxBodyBytes`, except for bulk state uploads (restore, import) by a caller whose admin key
        may use that route (its declared role: super_admin for a restore) from an address that is not
        throttled: those may reach `maxStateUploadBytes`. The key and its role are checked before any
        of the body is read, so nobody else (a viewer key included) can make the gateway buffer more
        than `maxBodyBytes`: a bigger declared body is refused unread (413)."""
        settings = self.rt.settings
        needed = self._upload_roles.get(scope["path"])
        if needed is None or scope["method"] != "POST" or settings.max_state_upload_bytes <= settings.max_body_bytes:
            return settings.max_body_bytes
        presented = forwarded = None
        for name, value in scope["headers"]:
            if name == b"x-admin-key":
                presented = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
        client = scope.get("client")
        if presented and self.rt.guard.may_upload(client[0] if client else None, forwarded, presented, needed):
            return settings.max_state_upload_bytes
        return settings.max_body_bytes


def _request_id_and_origin(scope: Scope) -> tuple[str | None, bytes | None]:
    """The caller's (first) X-Request-Id when it is well-formed, and its Origin: one pass over the headers."""
    request_id = origin = None
    seen = False
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if not seen and _REQUEST_ID_OK.match(value):
                request_id = str(value.decode())
            seen = True
        elif name == b"origin":
            origin = value
    return request_id, origin


async def store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """A write while the shared store (Redis) cannot be reached: 503, try again shortly; nothing written
    unless the store says so later (docs/redis.md)."""
    return JSONResponse(
        {"error": "store unavailable: the shared store (Redis) cannot be reached", "requestId": request_id_of(request)},
        status_code=503,
        headers={"Retry-After": "1"},
    )
