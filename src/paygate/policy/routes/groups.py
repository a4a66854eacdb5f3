"""Key groups (policy templates): GET/POST /groups, /groups/update, /groups/delete, /groups/assign, /groups/remove.

The lifecycle is the one teams share (`policy/routes/memberships.py`, `policy/memberships.py`); this
module holds what is a group's own: its policy fields and the reference's request and answer shapes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRef, KeyRefField, actor, find_key
from paygate.api.fields import Credits, IpList, Limit, QuotaLimits, Tags, ToolList, ToolName
from paygate.keys.service import KeyService
from paygate.policy.memberships import MembershipService
from paygate.policy.routes.memberships import Description, DocId, DocName, check_update, stored_doc_problem


class ToolPrice(Body):
    credits_per_call: Credits


class GroupPolicy(Body):
    """The policy fields of a group; on update only the fields sent change (quota: null removes it)."""

    description: Description = ""
    allowed_tools: ToolList = Field(default_factory=list)
    denied_tools: ToolList = Field(default_factory=list)
    rate_limit_per_min: Limit = 0
    ip_allowlist: IpList = Field(default_factory=list)
    quota: QuotaLimits | None = None
    tool_pricing: Annotated[dict[ToolName, ToolPrice], Field(max_length=1000)] = Field(default_factory=dict)
    max_spending_limit: Credits = 0
    tags: Tags = Field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The fields the request sent (the name too), camelCase, as the group document stores them."""
        # top-level fields only: a nested quota is stored whole (its unsent limits are 0)
        return self.model_dump(by_alias=True, include=self.model_fields_set - {"id", "group_id"})


class CreateGroupBody(GroupPolicy):
    name: DocName


def group_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a group document (from a backup) is not one /groups could have written, or None."""
    return stored_doc_problem(GroupPolicy, doc_id, doc)


class GroupRef(Body):
    """A group named by `id` (as the reference's update/delete examples) or `groupId`."""

    id: DocId | None = None
    group_id: DocId | None = None

    @model_validator(mode="after")
    def _one_id(self) -> GroupRef:
        if (self.id is None) == (self.group_id is None):
            raise ValueError("give the group's id (or groupId)")
        return self

    @property
    def ref(self) -> str:
        return str(self.id or self.group_id)


class UpdateGroupBody(GroupRef, GroupPolicy):
    name: DocName | None = None

    @model_validator(mode="after")
    def _some_field_given(self) -> UpdateGroupBody:
        check_update(self, {"id", "group_id"})
        return self


class AssignBody(Body):
    group_id: DocId
    key: KeyRefField


def router(guard: AdminGuard, keys: KeyService, groups: MembershipService) -> APIRouter:
    # async routes: they run on the event loop, so a check and the write it guards never interleave
    # with another request (see policy/routes/key_policy.py).
    r = guard.router("groups")

    @r.get("/groups")
    async def list_groups() -> list[dict[str, Any]]:
        """Every group with its policy and memberCount (active keys assigned to it)."""
        return groups.listing()

    @r.post("/groups", status_code=201)
    async def create_group(body: CreateGroupBody, request: Request) -> JSONResponse:
        """Create a group; the answer carries its id (`grp_…`)."""
        return JSONResponse(groups.create(body.fields(), actor(request)), status_code=201)

    @r.post("/groups/update")
    async def update_group(body: UpdateGroupBody, request: Request) -> dict[str, Any]:
        """Change a group's name or policy fields; members pick the change up on their next call."""
        return groups.update(body.ref, body.fields(), actor(request))

    @r.post("/groups/delete")
    async def delete_group(body: GroupRef, request: Request) -> dict[str, Any]:
        """Delete a group and remove every key from it."""
        doc, released = groups.delete(body.ref, actor(request))
        return {"message": "Group deleted", "id": doc["id"], "deleted": True, "keysReleased": released}

    @r.post("/groups/assign")
    async def assign(body: AssignBody, request: Request) -> dict[str, Any]:
        """Put a key in a group (a key in another group moves)."""
        record = find_key(keys, body.key)
        previous = groups.assign(record, body.group_id, actor(request))
        return {
            "message": "Key assigned to group",
            "groupId": body.group_id,
            "keyMasked": record.masked,
            "previousGroupId": previous,
        }

    @r.post("/groups/remove")
    async def remove(body: KeyRef, request: Request) -> dict[str, Any]:
        """Take a key out of its group."""
        record = find_key(keys, body.key)
        group_id = groups.remove(record, actor(request))
        return {"message": "Key removed from group", "groupId": group_id, "keyMasked": record.masked}

    return r
