"""Key metadata: POST /keys/alias, /keys/notes (add, list, delete), POST /keys/tags, POST /keys/search."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, field_validator

from paygate.api.common import ApiError, Body, KeyRefField, actor, find_key, require_admin, role
from paygate.core.keys import KEY_PREFIX
from paygate.core.values import iso_time
from paygate.keys.routes.crud import MAX_TAGS, NAME_PATTERN, NAMESPACE_PATTERN, TagName, TagValue
from paygate.keys.service import KeyConflict, key_view
from paygate.policy.routes.key_policy import live_key
from paygate.runtime import Runtime

MAX_NOTES = 50
MAX_NOTE_CHARS = 1000


class AliasBody(Body):
    key: KeyRefField
    alias: str | None = Field(pattern=NAME_PATTERN, description="1-100 of A-Z a-z 0-9 _ -; null clears it")

    @field_validator("alias")
    @classmethod
    def _not_a_key(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(KEY_PREFIX):
            raise ValueError(f"an alias must not start with {KEY_PREFIX!r} (it would look like an API key)")
        return value


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


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["key-meta"])

    @r.post("/keys/alias")
    async def set_alias(body: AliasBody, request: Request) -> dict[str, Any]:
        """Set (or, with null, clear) a key's unique human-readable alias."""
        record = find_key(rt, body.key)
        try:
            previous = rt.keys.set_alias(record, body.alias)
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.alias_set", actor(request), keyMasked=record.masked, alias=body.alias,
                          previousAlias=previous)
        message = "Alias cleared" if body.alias is None else f'Alias set to "{body.alias}"'
        return {"key": record.masked, "keyMasked": record.masked, "alias": body.alias, "previousAlias": previous,
                "message": message}

    @r.post("/keys/notes")
    async def add_note(body: NoteBody, request: Request) -> dict[str, Any]:
        """Attach a timestamped note (works on suspended and revoked keys too)."""
        record = find_key(rt, body.key)
        if len(record.notes) >= MAX_NOTES:
            raise ApiError(409, f"this key already has the maximum of {MAX_NOTES} notes; delete one first")
        note = {"timestamp": iso_time(time.time()), "author": actor(request), "text": body.text}
        rt.keys.save(record, notes=[*record.notes, note])
        rt.events.publish("key.note_added", actor(request), keyMasked=record.masked, index=len(record.notes) - 1)
        return {"key": record.masked, "note": note, "index": len(record.notes) - 1, "count": len(record.notes),
                "message": "Note added"}

    @r.get("/keys/notes")
    async def list_notes(key: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
        """A key's notes, oldest first."""
        record = find_key(rt, key)
        return {"key": record.masked, "notes": record.notes, "count": len(record.notes)}

    @r.delete("/keys/notes")
    async def delete_note(key: Annotated[str, Query(min_length=1, max_length=200)],
                          index: Annotated[int, Query(ge=0, le=MAX_NOTES)], request: Request) -> dict[str, Any]:
        """Remove the note at `index` (0 is the oldest)."""
        record = find_key(rt, key)
        if index >= len(record.notes):
            raise ApiError(404, f"no note at index {index} (this key has {len(record.notes)})")
        deleted = record.notes[index]
        rt.keys.save(record, notes=[n for i, n in enumerate(record.notes) if i != index])
        rt.events.publish("key.note_deleted", actor(request), keyMasked=record.masked, index=index)
        return {"key": record.masked, "deleted": deleted, "count": len(record.notes), "message": "Note deleted"}

    @r.post("/keys/tags")
    async def set_tags(body: TagsBody, request: Request) -> dict[str, Any]:
        """Merge tags into a key's tags; a null value removes that tag."""
        record = live_key(rt, body.key)
        merged = {**record.tags, **{k: v for k, v in body.tags.items() if v is not None}}
        for name, value in body.tags.items():
            if value is None:
                merged.pop(name, None)
        if len(merged) > MAX_TAGS:
            raise ApiError(400, f"Invalid request: a key may have at most {MAX_TAGS} tags (this would give "
                                f"{len(merged)})")
        rt.keys.save(record, tags=merged)
        rt.events.publish("key.tags_updated", actor(request), keyMasked=record.masked, changes=body.tags)
        return {"key": record.masked, "tags": record.tags, "message": "Tags updated"}

    @r.post("/keys/search", openapi_extra=role("viewer"))
    async def search(body: SearchBody) -> dict[str, Any]:
        """Keys whose tags include every given tag (optionally within one namespace)."""
        now = time.time()
        found = [key_view(k, now) for k in rt.store.list_keys()
                 if all(k.tags.get(name) == value for name, value in body.tags.items())
                 and (body.namespace is None or k.namespace == body.namespace)]
        return {"keys": found, "count": len(found)}

    return r
