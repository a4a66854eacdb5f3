"""Request tracing (docs/tracing.md): the recorder, its OTLP export when configured, its two stages on
the call path (the outermost call stage, the innermost send stage) and its admin router."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.runtime import Runtime
from paygate.tracing import routes
from paygate.tracing.recorder import Exporter, Tracing, TracingCollector
from paygate.traffic.tracing_stages import TraceCalls, TraceSends


def tracing_routers(rt: Runtime) -> dict[str, APIRouter]:
    config = rt.settings.tracing
    exporter: Exporter | None = None
    if config is not None and config.otlp_endpoint:
        from paygate.tracing.otel import OtlpExport  # the SDK only when exporting

        exporter = OtlpExport(config.otlp_endpoint, config.service_name)
    tracing = Tracing(
        rt.store,
        rt.events,
        config.enabled if config else False,
        config.sample_rate if config else 1.0,
        config.max_traces if config else 1000,
        exporter,
    )
    calls, sends = TraceCalls(tracing), TraceSends(tracing)
    traffic = rt.dispatcher.traffic

    def switch() -> None:
        calls.enabled = sends.enabled = tracing.enabled
        traffic.refresh()

    tracing.on_switch.append(switch)
    tracing.load()
    switch()
    traffic.add_call_stage(calls, outermost=True)
    traffic.add_send_stage(sends)  # registered after every other send stage: the innermost
    if exporter is not None:

        async def stop() -> None:
            exporter.shutdown()

        rt.on_stop.append(stop)
    rt.metrics.registry.register(TracingCollector(tracing))
    return {"tracing": routes.router(rt.guard, tracing)}
