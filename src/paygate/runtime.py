"""The shared components the composition root builds first (`compose/core.py`) and then hands, piece by
piece, to each domain's services and routers (`compose/*.py`); the app's lifespan runs its hooks.

Only the composition root, `app.py` and the CLI's banner see it: no service or router takes it (the
import-linter contracts in pyproject.toml keep it so), so it is a container, not a service locator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from paygate.admin.auth import AdminAuth
from paygate.admin.maintenance import Maintenance
from paygate.api.common import AdminGuard
from paygate.audit.service import AuditService
from paygate.billing.service import BillingService
from paygate.config import Settings
from paygate.events.hub import EventHub
from paygate.keys.service import KeyService
from paygate.mcp.backends.base import Backend
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.endpoint import McpEndpoint
from paygate.mcp.sessions import SessionManager
from paygate.metrics import Metrics
from paygate.serving import ServingState
from paygate.store.base import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    keys: KeyService
    billing: BillingService
    backend: Backend
    dispatcher: Dispatcher
    sessions: SessionManager
    endpoint: McpEndpoint
    metrics: Metrics
    admin: AdminAuth
    transport: str
    maintenance: Maintenance
    events: EventHub
    audit: AuditService
    guard: AdminGuard
    serving: ServingState  # started, draining, maintenance, ready (serving.py)
    # the token kinds /mcp accepts besides plain keys (scoped tokens, OAuth access tokens)
    # Called about once a second with the time, off the hot path (schedules, expiry scans, TTLs).
    tickers: list[Callable[[float], None]] = field(default_factory=list)
    # Awaited in order once the backend is up (start background tasks) and at shutdown, after the
    # last request and a final flush of the event bus (stop them, delivering what is pending).
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run on the loop as soon as SIGTERM/SIGINT arrives, before uvicorn waits for open responses
    # (exit_signals.py): cheap and synchronous (end streams, refuse new work).
    on_exit_signal: list[Callable[[], None]] = field(default_factory=list)
    # Hot reload (admin/reload.py): each prepares its new objects from the new settings and the changed
    # names (raising ValueError to refuse the file), returning the commit that swaps them in (or None).
    on_reload: list[Callable[[Settings, frozenset[str]], Callable[[], str | None] | None]] = field(default_factory=list)
