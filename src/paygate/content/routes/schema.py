"""Tools' input schemas: GET/POST/DELETE /admin/tools/schema (content/schema.py; docs/policy.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.content.schema import ToolSchemas

ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
ToolQuery = Annotated[str, Query(min_length=1, max_length=128)]


class SchemaBody(Body):
    tool: ToolName
    schema_: dict[str, Any] = Field(alias="schema", description="a JSON Schema (Draft 2020-12) for the arguments")


def router(guard: AdminGuard, schemas: ToolSchemas) -> APIRouter:
    r = guard.router("content")

    @r.get("/admin/tools/schema")
    async def list_schemas(tool: ToolQuery | None = None) -> dict[str, Any]:
        """Every registered schema, or one tool's (`?tool=`; 404 if it has none)."""
        return schemas.view(tool)

    @r.post("/admin/tools/schema")
    async def register_schema(body: SchemaBody, request: Request) -> dict[str, Any]:
        """Register or replace a tool's input schema: calls whose arguments fail it get -32602, not charged."""
        registered = schemas.register(body.tool, body.schema_, actor(request))
        return {"schema": registered.view()}

    @r.delete("/admin/tools/schema")
    async def remove_schema(request: Request, tool: ToolQuery) -> dict[str, Any]:
        """Remove a tool's registered schema (its calls are no longer validated, unless by the backend's)."""
        return {"removed": schemas.remove(tool, actor(request)).view()}

    return r
