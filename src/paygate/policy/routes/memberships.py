"""What the /groups and /teams routers share: name and id fields, the update rule, and one
`MembershipRoutes` that runs each operation (refusals → 404/409, one event per change).

The routers keep their own paths, request bodies and answers (the reference shapes them
differently); this module is not a router.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from pydantic import AfterValidator, BaseModel, Field

from paygate.api.common import ApiError, actor, find_key
from paygate.core.records import KeyRecord
from paygate.policy.memberships import Doc, MembershipError, MembershipKind, MembershipNotFound, MembershipService
from paygate.runtime import Runtime


def _display_name(text: str) -> str:
    # Names are unique ignoring case; trimmed, so that "Eng " cannot sit beside "Eng" as another name.
    name = text.strip()
    if not name:
        raise ValueError("name cannot be blank")
    if not name.isprintable():
        raise ValueError("name cannot contain control characters")
    return name


DocName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_display_name)]
DocId = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(max_length=500)]


def check_update(body: BaseModel, id_fields: set[str]) -> None:
    """An update body must change something, and a name is never null (pydantic model validators call this)."""
    if "name" in body.model_fields_set and getattr(body, "name", None) is None:
        raise ValueError("name cannot be null")
    if not body.model_fields_set - id_fields:
        raise ValueError("nothing to update")


class MembershipRoutes:
    """One router's operations on its kind of document. Each validates through the service, which
    refuses before it writes anything, then publishes `<kind>.<action>` naming the document as
    `<kind>Id`. All of it is synchronous: run from an async route, a check and the write it guards
    never interleave with another request."""

    def __init__(self, rt: Runtime, kind: MembershipKind, created_fields: tuple[str, ...] = ()) -> None:
        self.rt = rt
        self.kind = kind
        self.service = MembershipService(rt.store, kind)
        self.id_field = kind.doc + "Id"
        self.created_fields = created_fields  # document fields the `created` event carries besides the name

    @staticmethod
    def refused(exc: MembershipError) -> ApiError:
        return ApiError(404 if isinstance(exc, MembershipNotFound) else 409, str(exc))

    def publish(self, request: Request, action: str, doc_id: str, **data: Any) -> None:
        self.rt.events.publish(f"{self.kind.doc}.{action}", actor(request), **{self.id_field: doc_id}, **data)

    def get(self, doc_id: str, *, include_inactive: bool = False) -> Doc:
        try:
            return self.service.get(doc_id, include_inactive=include_inactive)
        except MembershipError as exc:
            raise self.refused(exc) from exc

    def create(self, request: Request, fields: Doc) -> Doc:
        """The new document (fields: the request's, `name` among them), with memberCount."""
        try:
            doc = self.service.create(fields)
        except MembershipError as exc:
            raise self.refused(exc) from exc
        self.publish(request, "created", doc["id"], name=doc["name"], **{f: doc[f] for f in self.created_fields})
        return {**doc, "memberCount": 0}

    def update(self, request: Request, doc_id: str, changes: Doc) -> Doc:
        """The changed document, with memberCount."""
        try:
            doc = self.service.update(doc_id, changes)
        except MembershipError as exc:
            raise self.refused(exc) from exc
        self.publish(request, "updated", doc["id"], changes=sorted(changes))
        return self.service.view(doc)

    def delete(self, request: Request, doc_id: str) -> tuple[Doc, int]:
        """(the document as it was deleted, keys released)."""
        try:
            doc, released = self.service.delete(doc_id)
        except MembershipError as exc:
            raise self.refused(exc) from exc
        self.publish(request, "deleted", doc["id"], name=doc["name"], keysReleased=released)
        return doc, released

    def assign(self, request: Request, key_ref: str, doc_id: str) -> tuple[KeyRecord, str | None]:
        """(the key, the document it was in before). Only a kind that moves keys says where from."""
        record = find_key(self.rt, key_ref)
        try:
            previous = self.service.assign(record, doc_id)
        except MembershipError as exc:
            raise self.refused(exc) from exc
        moved = {f"previous{self.kind.doc.capitalize()}Id": previous} if self.kind.moves else {}
        self.publish(request, "key_assigned", doc_id, keyMasked=record.masked, **moved)
        return record, previous

    def remove(self, request: Request, key_ref: str, doc_id: str | None = None) -> tuple[KeyRecord, str]:
        """(the key, the document it left)."""
        record = find_key(self.rt, key_ref)
        try:
            left = self.service.remove(record, doc_id)
        except MembershipError as exc:
            raise self.refused(exc) from exc
        self.publish(request, "key_removed", left, keyMasked=record.masked)
        return record, left
