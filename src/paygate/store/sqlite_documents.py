"""Small documents and meta values for the SQLite store (a mixin of `SQLiteStore`).

Documents are served from the in-memory `DocumentTable` (written through to the `docs` table); a change
bumps the store's `generation`. Meta values are single named strings in the `meta` table.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from paygate.store.documents import Doc, DocumentTable


class _StoreParts(Protocol):
    _documents: DocumentTable
    generation: int

    @property
    def db(self) -> sqlite3.Connection: ...


class DocumentsAndMeta:
    def doc_get(self: _StoreParts, kind: str, doc_id: str) -> Doc | None:
        return self._documents.get(kind, doc_id)

    def doc_peek(self: _StoreParts, kind: str, doc_id: str) -> Doc | None:
        return self._documents.peek(kind, doc_id)

    def doc_list(self: _StoreParts, kind: str) -> list[Doc]:
        return self._documents.all(kind)

    def doc_scan(self: _StoreParts, kind: str) -> list[Doc]:
        return self._documents.scan(kind)

    def doc_kinds(self: _StoreParts) -> list[str]:
        return self._documents.kinds()

    def doc_items(self: _StoreParts, kind: str) -> list[tuple[str, Doc]]:
        return self._documents.items(kind)

    def doc_put(self: _StoreParts, kind: str, doc_id: str, body: Doc) -> None:
        self._documents.put(kind, doc_id, body)
        self.generation += 1

    def doc_put_if(self: _StoreParts, kind: str, doc_id: str, body: Doc, field: str, expected: str) -> bool:
        """One process owns the file: the mirror is the truth, so the check is exact."""
        current = self._documents.peek(kind, doc_id)
        if current is None or str(current.get(field)) != expected:
            return False
        self._documents.put(kind, doc_id, body)
        self.generation += 1
        return True

    def doc_create(self: _StoreParts, kind: str, doc_id: str, body: Doc) -> bool:
        """One process owns the file: the mirror is the truth, so the check is exact."""
        if self._documents.peek(kind, doc_id) is not None:
            return False
        self._documents.put(kind, doc_id, body)
        self.generation += 1
        return True

    def doc_delete(self: _StoreParts, kind: str, doc_id: str) -> bool:
        self.generation += 1
        return self._documents.delete(kind, doc_id)

    def get_meta(self: _StoreParts, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self: _StoreParts, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (name, value),
        )

    def claim_meta(self: _StoreParts, name: str, value: str) -> str:
        self.db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING", (name, value))
        return str(self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0])
