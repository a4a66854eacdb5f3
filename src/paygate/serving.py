"""Whether the gateway is serving: since when, draining (a stop signal came), in maintenance, backend up.

One small object, created by the composition root before the MCP endpoint and the public routes and
handed to both, so neither needs the runtime (nor a lambda onto it) to learn the state. The /mcp
hot path reads `draining` as a plain attribute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paygate.admin.maintenance import Maintenance
    from paygate.mcp.backends.base import Backend


@dataclass(slots=True, eq=False)
class ServingState:
    backend: Backend
    maintenance: Maintenance
    started: float = field(default_factory=time.time)
    draining: bool = False

    def drain(self) -> None:
        """Refuse new /mcp work from now on (a stop signal arrived, or the app is shutting down)."""
        self.draining = True

    @property
    def ready(self) -> bool:
        return self.backend.ready and not self.draining and not self.maintenance.enabled

    @property
    def status(self) -> str:
        """What /health says: draining, maintenance or healthy."""
        return "draining" if self.draining else "maintenance" if self.maintenance.enabled else "healthy"

    def uptime(self, now: float) -> int:
        return int(now - self.started)
