"""Request/response transforms: GET/POST/PUT/DELETE /admin/transforms (content/transforms.py; docs/policy.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.content.transforms import MAX_OPS, Transforms

IdQuery = Annotated[str, Query(min_length=1, max_length=64)]


class TransformBody(Body):
    tool: str = Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$", description="name, prefix*, or *")
    direction: Literal["request", "response"]
    operations: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_OPS)
    priority: int = Field(default=0, ge=-1000, le=1000, description="lower runs first; ties in creation order")
    enabled: bool = True


def router(guard: AdminGuard, transforms: Transforms) -> APIRouter:
    r = guard.router("content")

    @r.get("/admin/transforms")
    async def list_transforms() -> dict[str, Any]:
        """Every transform in the order they apply (also the export: POST each back to import)."""
        return transforms.views()

    @r.post("/admin/transforms")
    async def add_transform(body: TransformBody, request: Request) -> dict[str, Any]:
        """Add a transform; its `id` is in the answer."""
        doc = body.model_dump(by_alias=True)
        return {"transform": transforms.put(doc, actor(request)).view()}

    @r.put("/admin/transforms")
    async def replace_transform(body: TransformBody, request: Request, id: IdQuery) -> dict[str, Any]:
        """Replace transform `?id=` whole (it keeps its place among equal priorities)."""
        doc = body.model_dump(by_alias=True)
        return {"transform": transforms.put(doc, actor(request), id).view()}

    @r.delete("/admin/transforms")
    async def delete_transform(request: Request, id: IdQuery) -> dict[str, Any]:
        """Remove transform `?id=`."""
        return {"removed": transforms.remove(id, actor(request)).view()}

    return r
