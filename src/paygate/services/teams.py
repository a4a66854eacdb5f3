"""Teams: keys sharing a budget and quotas, stored as `team` documents; membership lives on the key.

The gate reads a key's active team document (budget, quota) and the billing
service counts its spending; this service owns the lifecycle. Deleting a team
deactivates it (its id and history stay; its members are released) rather
than erasing it, so a team's past usage remains explainable.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from paygate.services.keys import iso_time
from paygate.store.base import Store
from paygate.store.records import KeyRecord

TEAM_DOC = "team"
MAX_TEAMS = 1000  # active teams
MAX_MEMBERS = 100
TEAM_QUOTA_FIELDS = ("dailyCalls", "monthlyCalls", "dailyCredits", "monthlyCredits")
Doc = dict[str, Any]


class TeamNotFound(LookupError):
    pass


class TeamConflict(ValueError):
    pass


def empty_quota() -> dict[str, int]:
    return dict.fromkeys(TEAM_QUOTA_FIELDS, 0)


class TeamService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def members(self, team_id: str) -> list[KeyRecord]:
        return [k for k in self.store.list_keys() if k.team_id == team_id and k.active]

    def view(self, doc: Doc) -> Doc:
        return {**doc, "memberCount": len(self.members(doc["id"]))}

    def listing(self, include_inactive: bool = False) -> list[Doc]:
        counts: dict[str, int] = {}
        for k in self.store.list_keys():
            if k.team_id is not None and k.active:
                counts[k.team_id] = counts.get(k.team_id, 0) + 1
        docs = [d for d in self.store.doc_list(TEAM_DOC) if include_inactive or d.get("active", True)]
        docs.sort(key=lambda d: (str(d.get("createdAt")), d["id"]))
        return [{**d, "memberCount": counts.get(d["id"], 0)} for d in docs]

    def get(self, team_id: str, *, include_inactive: bool = False) -> Doc:
        """A team; a deleted (inactive) one only when asked for (its usage stays readable)."""
        doc = self.store.doc_get(TEAM_DOC, team_id)
        if doc is None or not (include_inactive or doc.get("active", True)):
            raise TeamNotFound("Team not found")
        return doc

    def _active(self) -> list[Doc]:
        return [d for d in self.store.doc_list(TEAM_DOC) if d.get("active", True)]

    def _check_name(self, name: str, except_id: str | None = None) -> None:
        wanted = name.casefold()
        for doc in self._active():
            if doc["id"] != except_id and str(doc.get("name", "")).casefold() == wanted:
                raise TeamConflict(f"a team named {name!r} already exists")

    def create(self, name: str, fields: dict[str, Any]) -> Doc:
        if len(self._active()) >= MAX_TEAMS:
            raise TeamConflict(f"at most {MAX_TEAMS} teams")
        self._check_name(name)
        now = iso_time(time.time())
        doc: Doc = {"id": "team_" + secrets.token_hex(12), "name": name, "description": "", "budget": 0,
                    "quota": empty_quota(), "tags": {}, **fields, "active": True, "createdAt": now,
                    "updatedAt": now}
        self.store.doc_put(TEAM_DOC, doc["id"], doc)
        return doc

    def update(self, team_id: str, changes: dict[str, Any]) -> Doc:
        doc = self.get(team_id)
        if "name" in changes:
            self._check_name(changes["name"], except_id=team_id)
        doc.update(changes)
        doc["updatedAt"] = iso_time(time.time())
        self.store.doc_put(TEAM_DOC, team_id, doc)
        return doc

    def delete(self, team_id: str) -> tuple[Doc, int]:
        """Deactivate the team and release its keys; returns (team, keys released)."""
        doc = self.get(team_id)
        released = 0
        for record in self.store.list_keys():
            if record.team_id == team_id:
                record.team_id = None
                self.store.update_key(record)
                released += record.active
        now = iso_time(time.time())
        doc.update(active=False, updatedAt=now, deletedAt=now)
        self.store.doc_put(TEAM_DOC, team_id, doc)
        return doc, released

    def assign(self, record: KeyRecord, team_id: str) -> None:
        self.get(team_id)
        if not record.active:
            raise TeamConflict("cannot assign a revoked key")
        if record.team_id == team_id:
            raise TeamConflict("key is already in this team")
        current = self.store.doc_peek(TEAM_DOC, record.team_id) if record.team_id else None
        if current is not None and current.get("active", True):
            raise TeamConflict(f"key already belongs to team {record.team_id}; remove it from that team first")
        if len(self.members(team_id)) >= MAX_MEMBERS:
            raise TeamConflict(f"a team has at most {MAX_MEMBERS} keys")
        record.team_id = team_id
        self.store.update_key(record)

    def remove(self, record: KeyRecord, team_id: str | None) -> str:
        """Take the key out of its team (which must be `team_id` when given); returns the team id."""
        if record.team_id is None:
            raise TeamConflict("key is not in a team")
        if team_id is not None and record.team_id != team_id:
            raise TeamConflict("key is not in this team")
        left = record.team_id
        record.team_id = None
        self.store.update_key(record)
        return left
