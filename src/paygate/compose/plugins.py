"""Plugins (paygate/plugins, docs/plugins.md): loaded from the `plugins` setting at build time (a
plugin that cannot load stops the start with its reason), then wired where their hooks are defined.
With no plugin (or none with a given hook) nothing is wired: the call path is as without plugins."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.plugins.gate import Decisions, PluginGate, PluginStage
from paygate.plugins.loader import load_all
from paygate.plugins.metrics import PluginCollector
from paygate.plugins.routes import plugins as plugin_routes
from paygate.plugins.runner import PluginRunner
from paygate.runtime import Runtime


def plugin_routers(rt: Runtime) -> dict[str, APIRouter]:
    runner = PluginRunner(load_all(rt.settings.plugins))
    rt.metrics.registry.register(PluginCollector(runner))
    if runner.plugins:
        _wire(rt, runner)
    return {"plugins": plugin_routes.router(rt.guard, runner)}


def _wire(rt: Runtime, runner: PluginRunner) -> None:
    dispatcher, billing = rt.dispatcher, rt.billing
    if runner.has("before_gate") or runner.has("transform_price"):
        dispatcher.plugins = PluginGate(runner, billing, dispatcher.publish_deny)
    stage = PluginStage(runner, billing, dispatcher.publish_deny)
    if stage.enabled:  # registered after the traffic controls: the innermost call stage
        dispatcher.traffic.add_call_stage(stage)
    decisions = Decisions(runner) if runner.has("after_gate") or runner.has("on_deny") else None
    if decisions is not None:
        rt.events.subscribe(decisions.on_event, ("gate.allow", "gate.deny"))

    async def start() -> None:
        if decisions is not None:
            await decisions.start()
        await runner.start()

    async def stop() -> None:
        if decisions is not None:
            await decisions.stop()
        await runner.stop()

    rt.on_start.append(start)
    rt.on_stop.insert(0, stop)  # before the store and the event bus close: a plugin may still use them
