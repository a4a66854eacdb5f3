"""Content controls (paygate/content, docs/policy.md#content-controls): each built from Settings and the
store, registered as call stages right after the aliases, and its admin router.

Call stages, in this order (inside aliases, outside dedup and the cache):
    transforms → schema validation → guardrails
A request transform runs first so the schema and the guardrails see the arguments the backend will get;
all three answer their refusals before the gate, so before any charge.
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.config_content import GuardrailsSettings
from paygate.content.guardrails import GuardrailCollector, Guardrails
from paygate.content.guardrails_admin import GuardrailsAdmin
from paygate.content.routes import guardrails as guardrail_routes
from paygate.content.routes import schema as schema_routes
from paygate.content.routes import transforms as transform_routes
from paygate.content.schema import SchemaCollector, ToolSchemas
from paygate.content.transforms import TransformCollector, Transforms
from paygate.runtime import Runtime
from paygate.store.shared import redis_store

RELOAD_SECONDS = 5.0  # how soon an instance follows an admin change made elsewhere (a fleet's peers)


def content_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings, traffic, backend = rt.settings, rt.dispatcher.traffic, rt.backend
    transforms = Transforms(rt.store, rt.events, rt.billing, traffic.refresh)
    transforms.reload()
    traffic.add_call_stage(transforms)
    rt.metrics.registry.register(TransformCollector(transforms))
    schemas = ToolSchemas(
        rt.store,
        rt.events,
        rt.billing,
        traffic.refresh,
        lambda: backend.tools,
        settings.validate_backend_schemas,
    )
    schemas.reload()
    traffic.add_call_stage(schemas)
    rt.metrics.registry.register(SchemaCollector(schemas))
    config = settings.guardrails or GuardrailsSettings()
    guardrails = Guardrails(
        rt.store,
        rt.events,
        rt.billing,
        traffic.refresh,
        on=config.enabled,
        include_context=config.include_context,
        max_violations=config.max_violations,
    )
    guard_admin = GuardrailsAdmin(guardrails)
    guard_admin.reload()
    traffic.add_call_stage(guardrails)
    rt.metrics.registry.register(GuardrailCollector(guardrails))

    def staged_only(tool: str) -> bool:
        return transforms.applies(tool) or schemas.applies(tool) or guardrails.applies(tool)

    rt.dispatcher.staged_only = staged_only  # batches, tasks and x402 calls skip the stages: refused instead

    def reload_all() -> None:
        transforms.reload()
        schemas.reload()
        guard_admin.reload()

    if redis_store(rt.store) is not None:  # a fleet: follow another instance's admin changes
        last = [0.0]

        def tick(now: float) -> None:
            if now - last[0] >= RELOAD_SECONDS:
                last[0] = now
                reload_all()

        rt.tickers.append(tick)
    return {
        "tool_schemas": schema_routes.router(rt.guard, schemas),
        "guardrails": guardrail_routes.router(rt.guard, guard_admin),
        "transforms": transform_routes.router(rt.guard, transforms),
    }
