"""Maintenance mode: /mcp answers 503 while admin endpoints keep working; /ready and /health show it.

The state is kept in the store's meta table, so a restart does not silently end a
maintenance window the operator opened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from paygate.events.hub import EventHub
from paygate.store.base import Store

META_MAINTENANCE = "maintenance"
DEFAULT_MESSAGE = "Server is under maintenance. Please try again later."


@dataclass(slots=True)
class Maintenance:
    store: Store
    events: EventHub
    enabled: bool = False
    message: str = DEFAULT_MESSAGE
    since: float | None = None

    def load(self) -> None:
        raw = self.store.get_meta(META_MAINTENANCE)
        if raw:
            data = orjson.loads(raw)
            self.enabled, self.message, self.since = bool(data["enabled"]), str(data["message"]), data["since"]

    def set(self, enabled: bool, message: str | None, actor: str) -> None:
        """Switch on or off (and say so on the bus). A new message for a window already open keeps the
        window's start."""
        self.since = (self.since if self.enabled and self.since is not None else time.time()) if enabled else None
        self.enabled = enabled
        self.message = message or DEFAULT_MESSAGE
        self.store.set_meta(
            META_MAINTENANCE,
            orjson.dumps({"enabled": self.enabled, "message": self.message, "since": self.since}).decode(),
        )
        if enabled:
            self.events.publish("maintenance.enabled", actor, message=self.message)
        else:
            self.events.publish("maintenance.disabled", actor)
