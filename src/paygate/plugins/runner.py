"""Running the plugins' hooks, each isolated: a hook that raises or outlasts its timeout is logged
(with the plugin's name and the exception's type, never the call's arguments or key), counted in
`paygate_plugin_errors_total{plugin,hook}`, and the call goes on as if that plugin were absent.

A call meets the hooks in this order (docs/plugins.md): before_gate → before_tool_call →
transform_price → [the gate and the charge] → after_gate / on_deny → [forward, settle] →
after_tool_call. Each hook runs in the plugins' configured order; before_gate and before_tool_call
stop at the first refusal, transform_price takes the first number a plugin returns."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from paygate.plugins.base import REFERENCE_NAMES, CallInfo, Deny, GateDecision, PluginRequest, PluginResponse, ToolReply
from paygate.plugins.loader import Loaded

log = logging.getLogger("paygate.plugins")
_FAILED = object()  # a hook that raised or timed out: as if the plugin had no such hook
LIFECYCLE_TIMEOUT = 10.0  # seconds: on_start / on_stop get at least this long


class PluginRunner:
    def __init__(self, plugins: list[Loaded]) -> None:
        self.plugins = plugins
        self.errors: Counter[tuple[str, str]] = Counter()  # (plugin, hook) → failures
        self.timeouts: Counter[tuple[str, str]] = Counter()
        self._with: dict[str, tuple[Loaded, ...]] = {
            h: tuple(p for p in plugins if h in p.hooks) for h in REFERENCE_NAMES
        }
        self.by_name = {p.name: p for p in plugins}

    def has(self, hook: str) -> bool:
        return bool(self._with[hook])

    async def run(self, plugin: Loaded, hook: str, *args: Any, timeout: float | None = None) -> Any:
        """One hook of one plugin, isolated: its answer, or _FAILED."""
        try:
            return await asyncio.wait_for(plugin.hooks[hook](*args), timeout or plugin.timeout)
        except TimeoutError:
            self.timeouts[plugin.name, hook] += 1
            self.errors[plugin.name, hook] += 1
            log.warning("plugin %s: %s timed out after %.3gs (ignored)", plugin.name, hook, timeout or plugin.timeout)
        except Exception as exc:  # isolation: whatever a plugin does wrong, the call goes on without it
            self.errors[plugin.name, hook] += 1
            log.warning("plugin %s: %s failed (ignored): %s: %.200s", plugin.name, hook, type(exc).__name__, exc)
        return _FAILED

    # before the gate ---------------------------------------------------------
    async def before_gate(self, call: CallInfo) -> Deny | None:
        for plugin in self._with["before_gate"]:
            answer = await self.run(plugin, "before_gate", call)
            if isinstance(answer, Deny):
                return answer
            if answer is not None and answer is not _FAILED:
                self._wrong(plugin, "before_gate", answer)
        return None

    async def before_tool_call(self, call: CallInfo) -> Deny | dict[str, Any] | None:
        """A refusal, or the arguments the plugins rewrote (each sees the previous one's), or None."""
        arguments: dict[str, Any] | None = None
        for plugin in self._with["before_tool_call"]:
            answer = await self.run(plugin, "before_tool_call", call)
            if isinstance(answer, Deny):
                return answer
            if isinstance(answer, dict):
                arguments = answer
                call = CallInfo(call.tool, dict(answer), call.key_masked, call.key_name, call.request_id)
            elif answer is not None and answer is not _FAILED:
                self._wrong(plugin, "before_tool_call", answer)
        return arguments

    async def transform_price(self, call: CallInfo, quote: Callable[[], int]) -> int | None:
        """The first price a plugin sets, clamped at 0 (a price cannot be negative); None: keep the
        gateway's own. `quote()` is the price the gateway would charge (asked once, only if needed)."""
        plugins = self._with["transform_price"]
        if not plugins:
            return None
        base = quote()
        for plugin in plugins:
            answer = await self.run(plugin, "transform_price", call, base)
            if answer is None or answer is _FAILED:
                continue
            if isinstance(answer, bool) or not isinstance(answer, int):
                self._wrong(plugin, "transform_price", answer)  # credits are whole: 1.5 is a mistake
                continue
            return max(0, answer)
        return None

    # after the gate ------------------------------------------------------------
    async def decided(self, decision: GateDecision) -> None:
        """after_gate for every decision, then on_deny for a refusal (off the call's path)."""
        for plugin in self._with["after_gate"]:
            await self.run(plugin, "after_gate", decision)
        if not decision.allowed:
            for plugin in self._with["on_deny"]:
                await self.run(plugin, "on_deny", decision)

    async def after_tool_call(self, call: CallInfo, reply: ToolReply) -> dict[str, Any] | None:
        """The result the plugins put in place of a successful call's (each sees the previous one's)."""
        replaced: dict[str, Any] | None = None
        for plugin in self._with["after_tool_call"]:
            answer = await self.run(plugin, "after_tool_call", call, reply)
            if isinstance(answer, dict) and reply.error is None:
                replaced = answer
                reply = ToolReply(answer, None, reply.credits)
            elif answer is not None and answer is not _FAILED:
                self._wrong(plugin, "after_tool_call", answer)
        return replaced

    # HTTP and lifecycle -----------------------------------------------------------
    async def on_request(self, plugin: Loaded, request: PluginRequest) -> PluginResponse | None:
        answer = await self.run(plugin, "on_request", request)
        if answer is _FAILED:
            return PluginResponse(500, {"error": f"plugin {plugin.name} failed to answer"})
        if answer is not None and not isinstance(answer, PluginResponse):
            self._wrong(plugin, "on_request", answer)
            return PluginResponse(500, {"error": f"plugin {plugin.name} failed to answer"})
        return answer

    async def start(self) -> None:
        for plugin in self._with["on_start"]:  # registration order
            await self.run(plugin, "on_start", timeout=max(plugin.timeout, LIFECYCLE_TIMEOUT))

    async def stop(self) -> None:
        for plugin in reversed(self._with["on_stop"]):  # reverse registration order
            await self.run(plugin, "on_stop", timeout=max(plugin.timeout, LIFECYCLE_TIMEOUT))

    def view(self) -> dict[str, Any]:
        """GET /plugins: the reference's shape ({count, plugins: [{name, version, hooks}]}), hooks in
        its camelCase names, plus what this gateway adds (source, timeoutMs, public paths, errors)."""
        return {
            "count": len(self.plugins),
            "plugins": [
                {
                    "name": p.name,
                    "version": p.version,
                    "hooks": [REFERENCE_NAMES[h] for h in p.hooks],
                    "source": p.source,
                    "timeoutMs": round(p.timeout * 1000),
                    "publicPaths": sorted(p.public_paths),
                    "errors": sum(n for (name, _), n in self.errors.items() if name == p.name),
                }
                for p in self.plugins
            ],
        }

    def _wrong(self, plugin: Loaded, hook: str, answer: Any) -> None:
        self.errors[plugin.name, hook] += 1
        log.warning(
            "plugin %s: %s returned a %s (ignored: see docs/plugins.md)", plugin.name, hook, type(answer).__name__
        )
