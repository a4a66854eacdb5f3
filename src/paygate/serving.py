"""Whether the gateway is serving: since when, draining (a stop signal came), in maintenance, backend up.

One small object, created by the composition root before the MCP endpoint and the public routes and
handed to both, so neither needs the runtime (nor a lambda onto it) to learn the state. The /mcp
hot path reads `draining` as a plain attribute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from paygate.admin.maintenance import Maintenance


class BackendState(Protocol):
    """What the serving state reads of the backend (any `mcp.backends.base.Backend` is one): the domains
    below the MCP side see the backend only through this."""

    @property
    def ready(self) -> bool: ...
    @property
    def tools(self) -> list[dict[str, Any]]: ...
    @property
    def init_result(self) -> dict[str, Any] | None: ...


class SharedStoreState(Protocol):
    """A store other instances share (Redis): whether this one reaches it, and hears their changes."""

    @property
    def connected(self) -> bool: ...
    @property
    def subscribed(self) -> bool: ...


@dataclass(slots=True, eq=False)
class ServingState:
    backend: BackendState
    maintenance: Maintenance
    shared_store: SharedStoreState | None = None  # None: the embedded store, always there
    started: float = field(default_factory=time.time)
    draining: bool = False

    def drain(self) -> None:
        """Refuse new /mcp work from now on (a stop signal arrived, or the app is shutting down)."""
        self.draining = True

    @property
    def ready(self) -> bool:
        store_up = self.shared_store is None or self.shared_store.connected
        return self.backend.ready and store_up and not self.draining and not self.maintenance.enabled

    @property
    def status(self) -> str:
        """What /health says: draining, maintenance or healthy."""
        return "draining" if self.draining else "maintenance" if self.maintenance.enabled else "healthy"

    def uptime(self, now: float) -> int:
        return int(now - self.started)
