"""Multi-server mode: several backends behind one, tools named `prefix:tool`.

`tools/call` goes to the backend named by the prefix, with the prefix
stripped; `tools/list` merges every backend's tools with prefixes added.
Other list methods merge too; anything else needs a prefixed name.
"""

from __future__ import annotations

import asyncio
from typing import Any

from paygate.mcp.backends.base import Backend, BackendUnavailable, MessageListener
from paygate.mcp.jsonrpc import LATEST_HANDSHAKE_VERSION, Message

SEPARATOR = ":"
_MERGED_LISTS = {
    "resources/list": "resources",
    "prompts/list": "prompts",
    "resources/templates/list": "resourceTemplates",
}


class RouterBackend:
    label = "multi"

    def __init__(self, backends: dict[str, Backend]) -> None:
        self.backends = backends
        self._listeners: list[MessageListener] = []

    @property
    def ready(self) -> bool:
        return all(b.ready for b in self.backends.values())

    @property
    def init_result(self) -> dict[str, Any]:
        return {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {"tools": {"listChanged": True}, "resources": {}, "prompts": {}},
            "serverInfo": {"name": "paygate-multi", "version": "1"},
        }

    @property
    def tools(self) -> list[dict[str, Any]]:
        merged: list[dict[str, Any]] = []
        for prefix, backend in self.backends.items():
            merged.extend({**t, "name": f"{prefix}{SEPARATOR}{t['name']}"} for t in backend.tools)
        return merged

    async def start(self) -> None:
        await asyncio.gather(*(b.start() for b in self.backends.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(b.stop() for b in self.backends.values()), return_exceptions=True)

    def split(self, name: str) -> tuple[Backend, str]:
        prefix, sep, rest = name.partition(SEPARATOR)
        backend = self.backends.get(prefix)
        if not sep or backend is None or not rest:
            raise KeyError(name)
        return backend, rest

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        if method in _MERGED_LISTS:
            return await self._merged_list(method, timeout)
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str):
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32601, "message": f"{method} is not routable in multi-server mode"},
            }
        try:
            backend, inner = self.split(name)
        except KeyError:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32602, "message": f"Unknown tool: {name}"}}
        return await backend.request(method, {**params, "name": inner}, timeout)

    async def _merged_list(self, method: str, timeout: float) -> Message:
        field = _MERGED_LISTS[method]
        items: list[Any] = []
        for prefix, backend in self.backends.items():
            caps = (backend.init_result or {}).get("capabilities") or {}
            if method.split("/")[0] not in caps:
                continue
            try:
                reply = await backend.request(method, {}, timeout)
            except BackendUnavailable:
                continue
            for item in (reply.get("result") or {}).get(field, []):
                if isinstance(item, dict) and "name" in item:
                    items.append({**item, "name": f"{prefix}{SEPARATOR}{item['name']}"})
        return {"jsonrpc": "2.0", "id": None, "result": {field: items}}

    async def notify(self, method: str, params: Any = None) -> None:
        for backend in self.backends.values():
            if backend.ready:
                await backend.notify(method, params)

    async def respond(self, message: Message) -> None:
        raise BackendUnavailable("answers to server requests are not routable in multi-server mode")

    async def refresh_tools(self, timeout: float = 30.0) -> None:
        await asyncio.gather(*(b.refresh_tools(timeout) for b in self.backends.values() if b.ready))

    def add_listener(self, listener: MessageListener) -> None:
        for backend in self.backends.values():
            backend.add_listener(listener)
