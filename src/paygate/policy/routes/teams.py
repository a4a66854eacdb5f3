"""Teams: GET/POST /teams, /teams/update, /teams/delete, /teams/assign, /teams/remove, GET /teams/usage.

The lifecycle is the one groups share (`policy/routes/memberships.py`, `policy/memberships.py`); this
module holds what is a team's own: budget and quota fields, the reference's request and answer
shapes, and the usage report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.api.fields import Credits, Limit, Tags
from paygate.billing.service import BillingService
from paygate.keys.service import KeyService
from paygate.policy.memberships import MembershipService, empty_team_quota
from paygate.policy.routes.memberships import Description, DocId, DocName, check_update, stored_doc_problem


class TeamQuota(Body):
    """Team limits (0 = unlimited); sent as a whole, an unsent limit is 0."""

    daily_calls: Limit = 0
    monthly_calls: Limit = 0
    daily_credits: Limit = 0
    monthly_credits: Limit = 0


class TeamFields(Body):
    description: Description = ""
    budget: Credits = 0  # caps the credits the members spend together; 0 = unlimited
    quota: TeamQuota | None = None  # null: no team quota (all limits 0)
    tags: Tags = Field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The fields the request sent, as the team document stores them."""
        out = self.model_dump(by_alias=True, include=self.model_fields_set - {"team_id"})
        if "quota" in out and out["quota"] is None:
            out["quota"] = empty_team_quota()
        return out


class CreateTeamBody(TeamFields):
    name: DocName


def team_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a team document (from a backup) is not one /teams could have written, or None."""
    return stored_doc_problem(TeamFields, doc_id, doc)


class UpdateTeamBody(TeamFields):
    team_id: DocId
    name: DocName | None = None

    @model_validator(mode="after")
    def _some_field_given(self) -> UpdateTeamBody:
        check_update(self, {"team_id"})
        return self


class TeamRef(Body):
    team_id: DocId


class MemberBody(Body):
    """A key named by `apiKey` (the reference's field) or `key` (as every other endpoint)."""

    team_id: DocId | None = None
    api_key: KeyRefField | None = None
    key: KeyRefField | None = None

    @model_validator(mode="after")
    def _one_key(self) -> MemberBody:
        if (self.api_key is None) == (self.key is None):
            raise ValueError("give the key as apiKey (or key)")
        return self

    @property
    def ref(self) -> str:
        return str(self.api_key or self.key)


class AssignBody(MemberBody):
    team_id: DocId


def router(guard: AdminGuard, keys: KeyService, teams: MembershipService, billing: BillingService) -> APIRouter:
    # async routes: they run on the event loop, so checks (names, the member cap) and the writes they
    # guard never interleave with another request (see policy/routes/key_policy.py).
    r = guard.router("teams")

    @r.get("/teams")
    async def list_teams(include_inactive: Annotated[bool, Query(alias="includeInactive")] = False) -> dict[str, Any]:
        """Every active team (deleted ones too with includeInactive=true), with memberCount."""
        listed = teams.listing(include_inactive)
        return {"teams": listed, "count": len(listed)}

    @r.post("/teams", status_code=201)
    async def create_team(body: CreateTeamBody, request: Request) -> JSONResponse:
        """Create a team; the answer carries its id (`team_…`)."""
        return JSONResponse(teams.create(body.fields(), actor(request)), status_code=201)

    @r.post("/teams/update")
    async def update_team(body: UpdateTeamBody, request: Request) -> dict[str, Any]:
        """Change a team's name, description, budget, quota or tags (only the fields sent)."""
        return teams.update(body.team_id, body.fields(), actor(request))

    @r.post("/teams/delete")
    async def delete_team(body: TeamRef, request: Request) -> dict[str, Any]:
        """Deactivate a team and release its keys (its usage stays readable)."""
        doc, released = teams.delete(body.team_id, actor(request))
        return {"message": "Team deleted", "teamId": doc["id"], "deleted": True, "keysReleased": released}

    @r.post("/teams/assign")
    async def assign(body: AssignBody, request: Request) -> dict[str, Any]:
        """Put a key in a team (a key is in at most one team; a team has at most 100 keys)."""
        record = find_key(keys, body.ref)
        teams.assign(record, body.team_id, actor(request))
        return {"message": "Key assigned to team", "teamId": body.team_id, "keyMasked": record.masked}

    @r.post("/teams/remove")
    async def remove(body: MemberBody, request: Request) -> dict[str, Any]:
        """Take a key out of its team (teamId, when sent, must be that team)."""
        record = find_key(keys, body.ref)
        team_id = teams.remove(record, actor(request), body.team_id)
        return {"message": "Key removed from team", "teamId": team_id, "keyMasked": record.masked}

    @r.get("/teams/usage")
    async def usage(team_id: Annotated[str, Query(alias="teamId", min_length=1, max_length=64)]) -> dict[str, Any]:
        """Budget, quota use and a per-member breakdown (keys masked)."""
        doc = teams.get(team_id, include_inactive=True)
        members = teams.members(team_id)
        breakdown = [
            {
                "keyMasked": m.masked,
                "name": m.name,
                "credits": m.credits,
                "totalSpent": m.total_spent,
                "totalCalls": m.total_calls,
            }
            for m in members
        ]
        # The billing service counts what members spent while in the team (the budget's measure) and
        # the quota periods; the member rows and totalCalls are the current members' lifetime figures.
        period = dict(billing.team_usage(team_id))
        spent = int(period.pop("spent"))
        budget = int(doc.get("budget") or 0)
        return {
            "teamId": doc["id"],
            "name": doc["name"],
            "active": doc.get("active", True),
            "budget": budget,
            "spent": spent,
            "budgetRemaining": max(0, budget - spent) if budget else None,
            "quota": doc.get("quota"),
            "usage": period,
            "memberCount": len(members),
            "totalCalls": sum(m.total_calls for m in members),
            "members": breakdown,
        }

    return r
