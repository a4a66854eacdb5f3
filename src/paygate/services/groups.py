"""Key groups: reusable policy templates stored as `group` documents; membership lives on the key.

The gate reads a key's group document (`core.policy.resolve`); this service
owns its lifecycle. Callers validate field values; the service enforces what
needs the whole picture: unique names, the group cap, membership rules.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from paygate.services.keys import iso_time
from paygate.store.base import Store
from paygate.store.records import KeyRecord

GROUP_DOC = "group"
MAX_GROUPS = 1000
Doc = dict[str, Any]

# The policy fields a group holds, with their empty values.
POLICY_DEFAULTS: dict[str, Any] = {
    "description": "", "allowedTools": [], "deniedTools": [], "rateLimitPerMin": 0, "ipAllowlist": [],
    "quota": None, "toolPricing": {}, "maxSpendingLimit": 0, "tags": {},
}


class GroupNotFound(LookupError):
    pass


class GroupConflict(ValueError):
    pass


class GroupService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def members(self, group_id: str) -> list[KeyRecord]:
        """Active keys in the group (revoked keys keep their group_id but are not members)."""
        return [k for k in self.store.list_keys() if k.group_id == group_id and k.active]

    def view(self, doc: Doc) -> Doc:
        return {**doc, "memberCount": len(self.members(doc["id"]))}

    def listing(self) -> list[Doc]:
        counts: dict[str, int] = {}
        for k in self.store.list_keys():
            if k.group_id is not None and k.active:
                counts[k.group_id] = counts.get(k.group_id, 0) + 1
        docs = sorted(self.store.doc_list(GROUP_DOC), key=lambda d: (str(d.get("createdAt")), d["id"]))
        return [{**d, "memberCount": counts.get(d["id"], 0)} for d in docs]

    def get(self, group_id: str) -> Doc:
        doc = self.store.doc_get(GROUP_DOC, group_id)
        if doc is None:
            raise GroupNotFound("Group not found")
        return doc

    def _check_name(self, name: str, except_id: str | None = None) -> None:
        wanted = name.casefold()
        for doc in self.store.doc_list(GROUP_DOC):
            if doc["id"] != except_id and str(doc.get("name", "")).casefold() == wanted:
                raise GroupConflict(f"a group named {name!r} already exists")

    def create(self, name: str, fields: dict[str, Any]) -> Doc:
        if len(self.store.doc_items(GROUP_DOC)) >= MAX_GROUPS:
            raise GroupConflict(f"at most {MAX_GROUPS} groups")
        self._check_name(name)
        now = iso_time(time.time())
        doc: Doc = {"id": "grp_" + secrets.token_hex(12), "name": name, **POLICY_DEFAULTS, **fields,
                    "active": True, "createdAt": now, "updatedAt": now}
        self.store.doc_put(GROUP_DOC, doc["id"], doc)
        return doc

    def update(self, group_id: str, changes: dict[str, Any]) -> Doc:
        doc = self.get(group_id)
        if "name" in changes:
            self._check_name(changes["name"], except_id=group_id)
        doc.update(changes)
        doc["updatedAt"] = iso_time(time.time())
        self.store.doc_put(GROUP_DOC, group_id, doc)
        return doc

    def delete(self, group_id: str) -> tuple[Doc, int]:
        """Delete the group and release every key assigned to it; returns (group, keys released)."""
        doc = self.get(group_id)
        released = 0
        for record in self.store.list_keys():
            if record.group_id == group_id:
                record.group_id = None
                self.store.update_key(record)
                released += record.active
        self.store.doc_delete(GROUP_DOC, group_id)
        return doc, released

    def assign(self, record: KeyRecord, group_id: str) -> str | None:
        """Put the key in the group (moving it from any other); returns the previous group id."""
        self.get(group_id)
        if not record.active:
            raise GroupConflict("cannot assign a revoked key")
        if record.group_id == group_id:
            raise GroupConflict("key is already in this group")
        previous = record.group_id
        record.group_id = group_id
        self.store.update_key(record)
        return previous

    def remove(self, record: KeyRecord) -> str:
        """Take the key out of its group; returns the group id it left."""
        if record.group_id is None:
            raise GroupConflict("key is not in a group")
        group_id = record.group_id
        record.group_id = None
        self.store.update_key(record)
        return group_id
