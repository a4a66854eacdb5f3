"""Scripted backend failures for the in-process gateway's echo backend (tests of the circuit breaker,
timeouts and retries): `Faults(backend).script["echo"] = ["down", "error:-32000"]` makes the next two
tools/call requests to `echo` that reach the backend fail so; then the echo backend answers again.

Steps: `down` (unavailable, never delivered), `lost` (unavailable after it may have been delivered),
`timeout`, `error:<code>` (a JSON-RPC error answer), `isError` (a tool error result), `ok` (the echo
backend's own answer). `sent` lists every tools/call name that reached the backend, in order."""

from __future__ import annotations

from typing import Any

from paygate.mcp.backends.base import Backend, BackendTimeout, BackendUnavailable
from paygate.mcp.jsonrpc import Message

STEPS = ("ok", "down", "lost", "timeout", "error:-32000", "error:-32603", "error:-32602", "isError")


class Faults:
    def __init__(self, backend: Backend) -> None:
        self.original = backend.request
        self.script: dict[str, list[str]] = {}
        self.sent: list[str] = []
        backend.request = self.request  # type: ignore[method-assign]  # this instance only

    def sent_to(self, tool: str) -> int:
        return sum(1 for name in list(self.sent) if name == tool)

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        if method == "tools/call":
            name = params.get("name")
            self.sent.append(name)
            script = self.script.get(name)
            step = script.pop(0) if script else "ok"
            if step == "down":
                raise BackendUnavailable("scripted: not delivered", delivered=False)
            if step == "lost":
                raise BackendUnavailable("scripted: connection lost mid-call")
            if step == "timeout":
                raise BackendTimeout(f"scripted: no answer within {timeout:g}s")
            if step.startswith("error:"):
                code = int(step.partition(":")[2])
                return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "scripted failure"}}
            if step == "isError":
                result = {"content": [{"type": "text", "text": "no"}], "isError": True}
                return {"jsonrpc": "2.0", "id": 1, "result": result}
        return await self.original(method, params, timeout)
