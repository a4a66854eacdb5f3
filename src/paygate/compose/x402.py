"""x402 pay-per-call (paygate/x402/, mcp/x402_calls.py): built only when `x402 {…}` is configured; the
dispatcher's hook is set only while it is switched on, so keyed calls never run x402 code."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.runtime import Runtime
from paygate.x402.routes import admin

SWEEP_SECONDS = 3600.0  # used payments past their TTL are forgotten about this often


def x402_routers(rt: Runtime) -> dict[str, APIRouter]:
    config = rt.settings.x402
    if config is None:
        return {"x402": admin.router(rt.guard, None)}
    # imported only when configured: the x402 package and its models cost every start ~12 MiB
    from paygate.mcp.x402_calls import PaidCalls
    from paygate.x402.service import X402Service

    service = X402Service(config, rt.store, rt.events)
    paid = PaidCalls(rt.dispatcher, service)

    def switch(on: bool) -> None:
        rt.dispatcher.x402 = paid if on else None

    switch(config.enabled)
    service.on_switch.append(switch)
    rt.on_start.append(service.start)
    last = [0.0]

    def sweep(now: float) -> None:
        if now - last[0] >= SWEEP_SECONDS:
            last[0] = now
            service.sweep(now)

    rt.tickers.append(sweep)
    return {"x402": admin.router(rt.guard, service)}
