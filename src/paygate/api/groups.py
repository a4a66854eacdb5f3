"""Key groups (policy templates): GET/POST /groups, /groups/update, /groups/delete, /groups/assign, /groups/remove."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import ApiError, Body, KeyRef, KeyRefField, actor, find_key, require_admin
from paygate.api.policy import Credits, IpList, Limit, QuotaLimits, Tags, ToolList, ToolName
from paygate.services.groups import GroupConflict, GroupNotFound, GroupService
from paygate.services.runtime import Runtime

GroupName = Annotated[str, Field(min_length=1, max_length=100)]
GroupId = Annotated[str, Field(min_length=1, max_length=64)]


class ToolPrice(Body):
    credits_per_call: Credits


class GroupPolicy(Body):
    """The policy fields of a group; on update only the fields sent change (quota: null removes it)."""

    description: str = Field(default="", max_length=500)
    allowed_tools: ToolList = Field(default_factory=list)
    denied_tools: ToolList = Field(default_factory=list)
    rate_limit_per_min: Limit = 0
    ip_allowlist: IpList = Field(default_factory=list)
    quota: QuotaLimits | None = None
    tool_pricing: Annotated[dict[ToolName, ToolPrice], Field(max_length=1000)] = Field(default_factory=dict)
    max_spending_limit: Credits = 0
    tags: Tags = Field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The fields the request sent, camelCase, as the group document stores them."""
        # top-level fields only: a nested quota is stored whole (its unsent limits are 0)
        return self.model_dump(by_alias=True, include=self.model_fields_set - {"id", "group_id", "name"})


class CreateGroupBody(GroupPolicy):
    name: GroupName


class GroupRef(Body):
    """A group named by `id` (as the reference's update/delete examples) or `groupId`."""

    id: GroupId | None = None
    group_id: GroupId | None = None

    @model_validator(mode="after")
    def _one_id(self) -> GroupRef:
        if (self.id is None) == (self.group_id is None):
            raise ValueError("give the group's id (or groupId)")
        return self

    @property
    def ref(self) -> str:
        return str(self.id or self.group_id)


class UpdateGroupBody(GroupRef, GroupPolicy):
    name: GroupName | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateGroupBody:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        if not self.model_fields_set - {"id", "group_id"}:
            raise ValueError("nothing to update")
        return self


class AssignBody(Body):
    group_id: GroupId
    key: KeyRefField


def router(rt: Runtime) -> APIRouter:
    # async routes: run on the event loop, so a name check and the write it guards never interleave
    # with another request (see api/policy.py).
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["groups"])
    groups = GroupService(rt.store)

    def conflicts(exc: Exception) -> ApiError:
        return ApiError(404 if isinstance(exc, GroupNotFound) else 409, str(exc))

    @r.get("/groups")
    async def list_groups() -> list[dict[str, Any]]:
        """Every group with its policy and memberCount (active keys assigned to it)."""
        return groups.listing()

    @r.post("/groups", status_code=201)
    async def create_group(body: CreateGroupBody, request: Request) -> JSONResponse:
        """Create a group; the answer carries its id (`grp_…`)."""
        try:
            doc = groups.create(body.name, body.fields())
        except GroupConflict as exc:
            raise conflicts(exc) from exc
        rt.events.publish("group.created", actor(request), groupId=doc["id"], name=doc["name"])
        return JSONResponse({**doc, "memberCount": 0}, status_code=201)

    @r.post("/groups/update")
    async def update_group(body: UpdateGroupBody, request: Request) -> dict[str, Any]:
        """Change a group's name or policy fields; members pick the change up on their next call."""
        changes = body.fields()
        if body.name is not None:
            changes["name"] = body.name
        try:
            doc = groups.update(body.ref, changes)
        except (GroupNotFound, GroupConflict) as exc:
            raise conflicts(exc) from exc
        rt.events.publish("group.updated", actor(request), groupId=doc["id"], changes=sorted(changes))
        return groups.view(doc)

    @r.post("/groups/delete")
    async def delete_group(body: GroupRef, request: Request) -> dict[str, Any]:
        """Delete a group and remove every key from it."""
        try:
            doc, released = groups.delete(body.ref)
        except GroupNotFound as exc:
            raise conflicts(exc) from exc
        rt.events.publish("group.deleted", actor(request), groupId=doc["id"], name=doc["name"],
                          keysReleased=released)
        return {"message": "Group deleted", "id": doc["id"], "deleted": True, "keysReleased": released}

    @r.post("/groups/assign")
    async def assign(body: AssignBody, request: Request) -> dict[str, Any]:
        """Put a key in a group (a key in another group moves)."""
        record = find_key(rt, body.key)
        try:
            previous = groups.assign(record, body.group_id)
        except (GroupNotFound, GroupConflict) as exc:
            raise conflicts(exc) from exc
        rt.events.publish("group.key_assigned", actor(request), groupId=body.group_id, keyMasked=record.masked,
                          previousGroupId=previous)
        return {"message": "Key assigned to group", "groupId": body.group_id, "keyMasked": record.masked,
                "previousGroupId": previous}

    @r.post("/groups/remove")
    async def remove(body: KeyRef, request: Request) -> dict[str, Any]:
        """Take a key out of its group."""
        record = find_key(rt, body.key)
        try:
            group_id = groups.remove(record)
        except GroupConflict as exc:
            raise conflicts(exc) from exc
        rt.events.publish("group.key_removed", actor(request), groupId=group_id, keyMasked=record.masked)
        return {"message": "Key removed from group", "groupId": group_id, "keyMasked": record.masked}

    return r
