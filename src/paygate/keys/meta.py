"""Key metadata operations: notes, tags, tag search. Each change goes through the rollback-safe
`KeyService.save` and is announced after the write succeeded."""

from __future__ import annotations

import time
from typing import Any

from paygate.core.domain_errors import Invalid, NotFound
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyConflict, KeyService

MAX_NOTES = 50
MAX_TAGS = 50


class KeyMeta:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def add_note(self, record: KeyRecord, text: str, actor: str) -> dict[str, Any]:
        """Attach a timestamped note (suspended and revoked keys too); returns the note."""
        if len(record.notes) >= MAX_NOTES:
            raise KeyConflict(f"this key already has the maximum of {MAX_NOTES} notes; delete one first")
        note = {"timestamp": iso_time(time.time()), "author": actor, "text": text}
        self.keys.update_policy(
            record, actor, "key.note_added", {"notes": [*record.notes, note]}, index=len(record.notes)
        )
        return note

    def delete_note(self, record: KeyRecord, index: int, actor: str) -> dict[str, Any]:
        """Remove the note at `index` (0 is the oldest); returns it."""
        if index >= len(record.notes):
            raise NotFound(f"no note at index {index} (this key has {len(record.notes)})")
        deleted = record.notes[index]
        self.keys.update_policy(
            record,
            actor,
            "key.note_deleted",
            {"notes": [n for i, n in enumerate(record.notes) if i != index]},
            index=index,
        )
        return deleted

    def set_tags(self, ref: str, changes: dict[str, str | None], actor: str) -> KeyRecord:
        """Merge tags into a live key's tags; a None value removes that tag."""
        record = self.keys.live(ref)
        merged = {**record.tags, **{k: v for k, v in changes.items() if v is not None}}
        for name, value in changes.items():
            if value is None:
                merged.pop(name, None)
        if len(merged) > MAX_TAGS:
            raise Invalid(f"Invalid request: a key may have at most {MAX_TAGS} tags (this would give {len(merged)})")
        self.keys.update_policy(record, actor, "key.tags_updated", {"tags": merged}, changes=changes)
        return record

    def search(self, tags: dict[str, str], namespace: str | None) -> list[KeyRecord]:
        """Keys whose tags include every given tag (optionally within one namespace)."""
        return [
            k
            for k in self.keys.all()
            if all(k.tags.get(name) == value for name, value in tags.items())
            and (namespace is None or k.namespace == namespace)
        ]
