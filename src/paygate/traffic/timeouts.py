"""Timeouts (docs/traffic.md, "Timeouts"): the global one (`toolTimeoutSeconds`, the reference's
`toolTimeoutMs`) for every forwarded request, and each tool's own (`toolPricing[t].timeoutMs`) for its
tools/call. The dispatcher applies them (`Dispatcher.tool_timeout`, `Traffic.tool_timeouts`); this service
lets an operator change them at runtime (`POST /admin/timeouts`), keeps the change in the store (it then
wins over the config file's values, across restarts) and re-reads it on a ticker for a fleet's peers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.traffic.chain import Traffic

KIND = "traffic.timeouts"
DOC_ID = "settings"


class Timeouts:
    def __init__(
        self,
        traffic: Traffic,
        set_global: Callable[[float], None],
        global_ms: int,
        tools_ms: dict[str, int],
        store: Store,
        events: EventHub,
    ) -> None:
        self.traffic = traffic
        self._set_global = set_global
        self.store = store
        self.events = events
        self.global_ms = global_ms
        self.tools_ms: dict[str, int] = {}
        self.source = "config"
        self._apply(global_ms, tools_ms, set_global=False)  # the dispatcher has the config's own (in seconds)
        self.config_tools = dict(self.tools_ms)  # the config file's, as last read (a hot reload follows it)

    def _apply(self, global_ms: int, tools_ms: dict[str, int], set_global: bool = True) -> None:
        self.global_ms = global_ms
        self.tools_ms = {tool: ms for tool, ms in sorted(tools_ms.items()) if ms > 0}
        if set_global:
            self._set_global(global_ms / 1000)
        # a new dict, swapped in whole: the dispatcher reads it on every call
        self.traffic.tool_timeouts = {tool: ms / 1000 for tool, ms in self.tools_ms.items()}

    def follow_config(self, tools_ms: dict[str, int]) -> Callable[[], str | None] | None:
        """A hot reload's `toolPricing[t].timeoutMs` (admin/reload.py): the commit that puts them in force
        (None: unchanged); timeouts an admin set (POST /admin/timeouts) stay, and the commit says so."""
        new = {tool: ms for tool, ms in sorted(tools_ms.items()) if ms > 0}
        if new == self.config_tools:
            return None

        def commit() -> str | None:
            self.config_tools = new
            if self.source == "admin":
                return "toolPricing.*.timeoutMs: the timeouts set through POST /admin/timeouts stay in force"
            self._apply(self.global_ms, new, set_global=False)
            return None

        return commit

    def load(self) -> None:
        """The admin-set timeouts from the store (at start, and from a fleet peer's change)."""
        doc = self.store.doc_get(KIND, DOC_ID)
        if doc is None:
            return
        self.source = "admin"
        global_ms, tools = int(doc["toolTimeoutMs"]), {str(k): int(v) for k, v in doc["tools"].items()}
        if (global_ms, tools) != (self.global_ms, self.tools_ms):
            self._apply(global_ms, tools)

    def update(self, global_ms: int | None, tools: dict[str, int] | None, replace: bool, actor: str) -> dict[str, Any]:
        """A new global timeout and/or tool timeouts (0 = the tool follows the global one again); with
        `replace`, `tools` is the whole table. Applied at once, kept, audited as `timeouts.updated`."""
        new_tools = {} if replace else dict(self.tools_ms)
        for tool, ms in (tools or {}).items():
            if ms > 0:
                new_tools[tool] = ms
            else:
                new_tools.pop(tool, None)
        new_global = self.global_ms if global_ms is None else global_ms
        self._apply(new_global, new_tools)
        self.source = "admin"
        self.store.doc_put(
            KIND, DOC_ID, {"toolTimeoutMs": self.global_ms, "tools": self.tools_ms, "updatedAt": time.time()}
        )
        changed = sorted((tools or {}).keys())
        self.events.emit(
            "timeouts.updated", actor, {"toolTimeoutMs": self.global_ms, "tools": changed, "replace": replace}
        )
        return self.view()

    def view(self) -> dict[str, Any]:
        return {"toolTimeoutMs": self.global_ms, "tools": dict(self.tools_ms), "source": self.source}
