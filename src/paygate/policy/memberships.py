"""Membership documents: named documents that API keys join — key groups and teams.

A group is a policy template, a team a shared budget; the gate reads both
(`group` and `team` documents, named from the key by `group_id` / `team_id`).
Their lifecycle is the same and lives here once: unique names (ignoring case)
among active documents, a cap on documents, assign and remove, and a delete
that releases every member at once. Where they differ, a `MembershipKind`
says how. Callers validate field values; this service enforces what needs the
whole picture. Membership lives on the key, so it survives restarts with it, and
changes through `KeyService.save` (rollback-safe). Every change is announced as
`<kind>.<action>` naming the document as `<kind>Id`, after it is done.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from paygate.core.documents import readable
from paygate.core.domain_errors import Conflict, DomainError, NotFound
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyService
from paygate.store.roles import Documents

Doc = dict[str, Any]


@dataclass(frozen=True)
class MembershipKind:
    doc: str  # the document kind ("group"); also the word in messages and the event prefix
    id_prefix: str  # a new document's id: prefix + 24 hex digits
    # The KeyRecord field naming the document; "extra": the key's `extra[extra_name]` (tenants: no column of
    # their own, so the store's rows, backups and imports carry the binding unchanged)
    key_field: Literal["group_id", "team_id", "extra"]
    defaults: Callable[[], Doc]  # a new document's fields, before the request's (fresh each time)
    max_docs: int  # active documents
    max_members: int | None = None  # active keys per document
    moves: bool = False  # assigning a key that is in another document moves it (else 409: remove it first)
    deleted_kept: int = 0  # delete deactivates the document, keeping this many deactivated (else erases it)
    announced: tuple[str, ...] = ()  # document fields the `created` event carries besides the name
    extra_name: str = ""  # with key_field "extra": the entry of KeyRecord.extra naming the document


GROUP_POLICY_DEFAULTS: Doc = {
    "description": "",
    "allowedTools": [],
    "deniedTools": [],
    "rateLimitPerMin": 0,
    "ipAllowlist": [],
    "quota": None,
    "toolPricing": {},
    "maxSpendingLimit": 0,
    "tags": {},
}
TEAM_QUOTA_FIELDS = ("dailyCalls", "monthlyCalls", "dailyCredits", "monthlyCredits")


def empty_team_quota() -> dict[str, int]:
    return dict.fromkeys(TEAM_QUOTA_FIELDS, 0)


# A group has no history worth keeping (deleting it frees its name and erases it); a key moves
# between groups. A team's past spending must stay explainable, so deleting one deactivates it;
# a key leaves its team explicitly before joining another, and a team has at most 100 keys. The
# deactivated teams kept are bounded too (the oldest deleted is erased), or create/delete churn
# would grow the in-memory document cache without end.
GROUPS = MembershipKind("group", "grp_", "group_id", lambda: {**GROUP_POLICY_DEFAULTS}, max_docs=1000, moves=True)
TEAMS = MembershipKind(
    "team",
    "team_",
    "team_id",
    lambda: {"description": "", "budget": 0, "quota": empty_team_quota(), "tags": {}},
    max_docs=1000,
    max_members=100,
    deleted_kept=1000,
    announced=("budget",),
)
# A tenant (policy/tenants.py, docs/tenants.md): isolation of keys, usage and limits for a platform's
# customers. 10,000 tenants of at most 1,000 keys each (the reference's limits); a key is bound to one
# tenant at a time; DELETE erases the tenant (its keys are released first).
TENANT_FIELD = "tenantId"
TENANTS = MembershipKind(
    "tenant",
    "tnt_",
    "extra",
    lambda: {"description": "", "status": "active", "rateLimitPerMin": 0, "quota": empty_team_quota(), "tags": {}},
    max_docs=10_000,
    max_members=1_000,
    announced=("status", "rateLimitPerMin"),
    extra_name=TENANT_FIELD,
)


class MembershipError(DomainError):
    pass


class MembershipNotFound(MembershipError, NotFound):
    pass


class MembershipConflict(MembershipError, Conflict):
    pass


def _active(doc: Doc) -> bool:
    return bool(doc.get("active", True))


def active_count(store: Documents, kind: MembershipKind) -> int:
    """Active documents of the kind, counted from the store's cache (no copies): for /metrics."""
    return sum(1 for d in store.doc_scan(kind.doc) if _active(d))


class MembershipService:
    def __init__(self, keys: KeyService, kind: MembershipKind) -> None:
        self.keys = keys
        self.store = keys.store
        self.kind = kind
        self.id_field = kind.doc + "Id"

    def _publish(self, action: str, actor: str, doc_id: str, **data: Any) -> None:
        self.keys.publish(f"{self.kind.doc}.{action}", actor, **{self.id_field: doc_id}, **data)

    # --- a key's membership ------------------------------------------------------------------------
    def member_of(self, record: KeyRecord) -> str | None:
        if self.kind.key_field == "extra":
            held = record.extra.get(self.kind.extra_name)
            return held if isinstance(held, str) else None
        doc_id: str | None = getattr(record, self.kind.key_field)
        return doc_id

    def _join(self, record: KeyRecord, doc_id: str | None) -> None:
        if self.kind.key_field == "extra":
            extra = {k: v for k, v in record.extra.items() if k != self.kind.extra_name}
            if doc_id is not None:
                extra[self.kind.extra_name] = doc_id
            self.keys.save(record, extra=extra)
            return
        self.keys.save(record, **{self.kind.key_field: doc_id})

    def members(self, doc_id: str) -> list[KeyRecord]:
        """Active keys in the document (revoked keys keep the id but are not members)."""
        return [k for k in self.store.list_keys() if k.active and self.member_of(k) == doc_id]

    # --- documents ---------------------------------------------------------------------------------
    def view(self, doc: Doc) -> Doc:
        return {**doc, "memberCount": len(self.members(doc["id"]))}

    def listing(self, include_inactive: bool = False) -> list[Doc]:
        """Documents oldest first, each with memberCount."""
        counts: dict[str, int] = {}
        for k in self.store.list_keys():
            doc_id = self.member_of(k)
            if doc_id is not None and k.active:
                counts[doc_id] = counts.get(doc_id, 0) + 1
        docs = [d for d in self.store.doc_list(self.kind.doc) if include_inactive or _active(d)]
        docs.sort(key=lambda d: (str(d.get("createdAt")), str(d.get("id"))))
        return readable(self.kind.doc, docs, lambda d: {**d, "memberCount": counts.get(_doc_id(d), 0)})

    def get(self, doc_id: str, *, include_inactive: bool = False) -> Doc:
        """A copy of the document; a deactivated one only when asked for (its history stays readable)."""
        doc = self.store.doc_get(self.kind.doc, doc_id)
        if doc is None or not (include_inactive or _active(doc)):
            raise MembershipNotFound(f"{self.kind.doc.capitalize()} not found")
        return doc

    def _active_docs(self) -> list[Doc]:
        """The active documents as stored: read them, never mutate them (no copies: a create checks them
        all, and copying a thousand documents per create made it slow)."""
        return [d for d in self.store.doc_scan(self.kind.doc) if _active(d)]

    def _check_name(self, name: str, except_id: str | None = None) -> None:
        wanted = name.casefold()
        for doc in self._active_docs():
            if doc["id"] != except_id and str(doc.get("name", "")).casefold() == wanted:
                raise MembershipConflict(f"a {self.kind.doc} named {name!r} already exists")

    def create(self, fields: Doc, actor: str) -> Doc:
        """A new document from the request's fields (`name` among them) over the kind's defaults, with
        memberCount."""
        name = str(fields["name"])
        if len(self._active_docs()) >= self.kind.max_docs:
            raise MembershipConflict(f"at most {self.kind.max_docs} {self.kind.doc}s")
        self._check_name(name)
        now = iso_time(time.time())
        doc: Doc = {
            "id": self.kind.id_prefix + secrets.token_hex(12),
            **self.kind.defaults(),
            **fields,
            "active": True,
            "createdAt": now,
            "updatedAt": now,
        }
        self.store.doc_put(self.kind.doc, doc["id"], doc)
        self._publish("created", actor, doc["id"], name=doc["name"], **{f: doc[f] for f in self.kind.announced})
        return {**doc, "memberCount": 0}

    def update(self, doc_id: str, changes: Doc, actor: str) -> Doc:
        """The changed document, with memberCount."""
        doc = self.get(doc_id)
        if "name" in changes:
            self._check_name(changes["name"], except_id=doc_id)
        doc.update(changes)
        doc["updatedAt"] = iso_time(time.time())
        self.store.doc_put(self.kind.doc, doc_id, doc)
        self._publish("updated", actor, doc["id"], changes=sorted(changes))
        return self.view(doc)

    def delete(self, doc_id: str, actor: str) -> tuple[Doc, int]:
        """Release every key in the document, then erase or deactivate it; returns (document, keys released)."""
        doc = self.get(doc_id)
        released = 0
        for record in self.store.list_keys():
            if self.member_of(record) == doc_id:
                self._join(record, None)
                released += record.active
        if self.kind.deleted_kept:
            now = iso_time(time.time())
            doc.update(active=False, updatedAt=now, deletedAt=now)
            self.store.doc_put(self.kind.doc, doc_id, doc)
            self._forget_oldest_deleted()
        else:
            self.store.doc_delete(self.kind.doc, doc_id)
        self._publish("deleted", actor, doc["id"], name=doc["name"], keysReleased=released)
        return doc, released

    def _forget_oldest_deleted(self) -> None:
        deleted = [d for d in self.store.doc_scan(self.kind.doc) if not _active(d)]
        deleted.sort(key=lambda d: (str(d.get("deletedAt")), str(d.get("updatedAt"))))
        for doc in deleted[: max(0, len(deleted) - self.kind.deleted_kept)]:
            self.store.doc_delete(self.kind.doc, doc["id"])

    def assign(self, record: KeyRecord, doc_id: str, actor: str) -> str | None:
        """Put the key in the document; returns the document it was in before. Only a kind that moves
        keys says where from in its event."""
        kind = self.kind.doc
        self.get(doc_id)
        if not record.active:
            raise MembershipConflict("cannot assign a revoked key")
        previous = self.member_of(record)
        if previous == doc_id:
            raise MembershipConflict(f"key is already in this {kind}")
        if previous is not None and not self.kind.moves:
            current = self.store.doc_peek(kind, previous)
            if current is not None and _active(current):
                raise MembershipConflict(f"key already belongs to {kind} {previous}; remove it from that {kind} first")
        cap = self.kind.max_members
        if cap is not None and len(self.members(doc_id)) >= cap:
            raise MembershipConflict(f"a {kind} has at most {cap} keys")
        self._join(record, doc_id)
        moved = {f"previous{kind.capitalize()}Id": previous} if self.kind.moves else {}
        self._publish("key_assigned", actor, doc_id, keyMasked=record.masked, **moved)
        return previous

    def remove(self, record: KeyRecord, actor: str, doc_id: str | None = None) -> str:
        """Take the key out of its document (which must be `doc_id` when given); returns the id it left."""
        left = self.member_of(record)
        if left is None:
            raise MembershipConflict(f"key is not in a {self.kind.doc}")
        if doc_id is not None and left != doc_id:
            raise MembershipConflict(f"key is not in this {self.kind.doc}")
        self._join(record, None)
        self._publish("key_removed", actor, left, keyMasked=record.masked)
        return left


def _doc_id(doc: Doc) -> str:
    """A listed document's id (a document without a string id cannot be listed)."""
    doc_id = doc["id"]
    if not isinstance(doc_id, str):
        raise TypeError("the document has no id")
    return doc_id
