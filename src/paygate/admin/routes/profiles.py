"""GET/POST/DELETE /admin/config-profiles (admin/profiles.py, docs/profiles.md)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.admin.profiles import MAX_PROFILES, ConfigProfiles
from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid

NameQuery = Annotated[str, Query(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class ExportData(Body):
    version: int | None = None
    exported_at: str | None = None
    profiles: list[dict[str, Any]] = Field(max_length=MAX_PROFILES)


class ProfileAction(Body):
    action: Literal["save", "activate", "rollback", "diff", "import"]
    name: Name | None = None
    extends: Name | None = None
    settings: dict[str, Any] | None = None
    a: Name | None = None
    b: Name | None = None
    data: ExportData | None = None
    mode: Literal["merge", "replace"] | None = None


# What each action reads: anything else given is refused, so a misplaced field is not silently ignored.
FIELDS = {
    "save": ({"name", "settings"}, {"extends"}),
    "activate": ({"name"}, set()),
    "rollback": (set(), set()),
    "diff": ({"a", "b"}, set()),
    "import": ({"data"}, {"mode"}),
}


def _fields(body: ProfileAction) -> None:
    needed, optional = FIELDS[body.action]
    given = {k for k, v in body.model_dump(exclude={"action"}).items() if v is not None}
    missing = sorted(needed - given)
    if missing:
        raise Invalid(f"{body.action}: {', '.join(missing)} required")
    extra = sorted(given - needed - optional)
    if extra:
        raise Invalid(f"{body.action}: {', '.join(extra)} not used by this action")


def router(guard: AdminGuard, profiles: ConfigProfiles) -> APIRouter:
    r = guard.router("config-profiles")

    @r.get("/admin/config-profiles")
    async def get_profiles(name: NameQuery | None = None, export: bool = False) -> dict[str, Any]:
        """Every profile, the active one and the activation history; `?name=` one with its merged
        settings; `?export=true` every profile as JSON to import (secrets masked)."""
        if export:
            return profiles.export(time.time())
        return profiles.view(name) if name is not None else profiles.listing()

    @r.post("/admin/config-profiles")
    async def profile_action(body: ProfileAction, request: Request) -> dict[str, Any]:
        """save (create or replace), activate (apply as a config reload would), rollback, diff, import."""
        _fields(body)
        who, now = actor(request), time.time()
        if body.action == "save":
            assert body.name is not None and body.settings is not None
            return profiles.save(body.name, body.extends, body.settings, who, now)
        if body.action == "activate":
            assert body.name is not None
            return profiles.activate(body.name, who, now)
        if body.action == "rollback":
            return profiles.rollback(who, now)
        if body.action == "diff":
            assert body.a is not None and body.b is not None
            return profiles.diff(body.a, body.b)
        assert body.data is not None
        return profiles.import_(body.data.profiles, body.mode or "merge", who, now)

    @r.delete("/admin/config-profiles")
    async def delete_profile(name: NameQuery, request: Request) -> dict[str, Any]:
        """Delete a profile (409 if it is active or another extends it)."""
        return profiles.delete(name, actor(request))

    return r
