"""Key metadata: POST /keys/alias, /keys/notes (add, list, delete), POST /keys/tags, POST /keys/search."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field, field_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key, role
from paygate.api.fields import MAX_TAGS, NAMESPACE_PATTERN, Alias, TagName, TagValue
from paygate.keys.meta import MAX_NOTES, KeyMeta
from paygate.keys.service import KeyService, key_view

MAX_NOTE_CHARS = 1000


class AliasBody(Body):
    key: KeyRefField
    alias: Alias | None = Field(description="1-100 of A-Z a-z 0-9 _ -; null clears it")


class NoteBody(Body):
    key: KeyRefField
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note needs some text")
        return value


class TagsBody(Body):
    key: KeyRefField
    tags: Annotated[dict[TagName, TagValue | None], Field(min_length=1, max_length=2 * MAX_TAGS)]


class SearchBody(Body):
    tags: Annotated[dict[TagName, TagValue], Field(min_length=1, max_length=MAX_TAGS)]
    namespace: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)


def router(guard: AdminGuard, keys: KeyService, meta: KeyMeta) -> APIRouter:
    r = guard.router("key-meta")

    @r.post("/keys/alias")
    async def set_alias(body: AliasBody, request: Request) -> dict[str, Any]:
        """Set (or, with null, clear) a key's unique human-readable alias."""
        record = find_key(keys, body.key)
        previous = keys.set_alias(record, body.alias, actor(request))
        message = "Alias cleared" if body.alias is None else f'Alias set to "{body.alias}"'
        return {
            "key": record.masked,
            "keyMasked": record.masked,
            "alias": body.alias,
            "previousAlias": previous,
            "message": message,
        }

    @r.post("/keys/notes")
    async def add_note(body: NoteBody, request: Request) -> dict[str, Any]:
        """Attach a timestamped note (works on suspended and revoked keys too)."""
        record = find_key(keys, body.key)
        note = meta.add_note(record, body.text, actor(request))
        return {
            "key": record.masked,
            "note": note,
            "index": len(record.notes) - 1,
            "count": len(record.notes),
            "message": "Note added",
        }

    @r.get("/keys/notes")
    async def list_notes(key: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
        """A key's notes, oldest first."""
        record = find_key(keys, key)
        return {"key": record.masked, "notes": record.notes, "count": len(record.notes)}

    @r.delete("/keys/notes")
    async def delete_note(
        key: Annotated[str, Query(min_length=1, max_length=200)],
        index: Annotated[int, Query(ge=0, le=MAX_NOTES)],
        request: Request,
    ) -> dict[str, Any]:
        """Remove the note at `index` (0 is the oldest)."""
        record = find_key(keys, key)
        deleted = meta.delete_note(record, index, actor(request))
        return {"key": record.masked, "deleted": deleted, "count": len(record.notes), "message": "Note deleted"}

    @r.post("/keys/tags")
    async def set_tags(body: TagsBody, request: Request) -> dict[str, Any]:
        """Merge tags into a key's tags; a null value removes that tag."""
        record = meta.set_tags(body.key, body.tags, actor(request))
        return {"key": record.masked, "tags": record.tags, "message": "Tags updated"}

    @r.post("/keys/search", openapi_extra=role("viewer"))
    async def search(body: SearchBody) -> dict[str, Any]:
        """Keys whose tags include every given tag (optionally within one namespace)."""
        now = time.time()
        found = [key_view(k, now) for k in meta.search(body.tags, body.namespace)]
        return {"keys": found, "count": len(found)}

    return r
