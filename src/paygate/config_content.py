"""Content control settings (paygate/content, docs/policy.md#content-controls), under the reference's names
where it has them. Rules themselves (schemas, guardrail rules, transforms) are set at runtime through the
admin endpoints and kept in the store; these are what a gateway starts with. `Settings` inherits these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class GuardrailsSettings(BaseModel):
    """`guardrails: {enabled, includeContext, maxViolations}` (the reference's names, content/guardrails.py)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    enabled: bool = True  # the runtime toggle's value at start (POST /admin/guardrails {enabled} changes it)
    include_context: bool = False  # violations also record where the match was (never the matched text)
    max_violations: int = Field(default=1000, ge=1, le=100_000)  # the violation log's bound (oldest dropped)


class ContentSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # Validate each call's arguments against the `inputSchema` its tool declares in the backend's tools/list
    # (a schema registered through /admin/tools/schema wins over it).
    validate_backend_schemas: bool = False
    guardrails: GuardrailsSettings | None = None
