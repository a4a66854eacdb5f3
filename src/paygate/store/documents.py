"""Small JSON documents by kind: groups, teams, templates, admin keys, plans, schedules…

Every document is mirrored in memory (the gate reads groups and teams on the
hot path) and written through to the `docs` table before a mutation returns.
Documents are plain JSON objects; callers own their shape and get copies, so
a caller mutating what it read never changes the store behind its back.
"""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

import orjson

Doc = dict[str, Any]


class DocumentTable:
    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Doc]] = {}
        self._db: sqlite3.Connection | None = None

    def load(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._docs = {}
        for kind, doc_id, body in db.execute("SELECT kind, id, body FROM docs"):
            self._docs.setdefault(kind, {})[doc_id] = orjson.loads(body)

    def get(self, kind: str, doc_id: str) -> Doc | None:
        doc = self._docs.get(kind, {}).get(doc_id)
        return None if doc is None else copy.deepcopy(doc)

    def peek(self, kind: str, doc_id: str) -> Doc | None:
        """The stored document itself, for hot-path reads that never mutate it."""
        return self._docs.get(kind, {}).get(doc_id)

    def all(self, kind: str) -> list[Doc]:
        return [copy.deepcopy(d) for d in self._docs.get(kind, {}).values()]

    def scan(self, kind: str) -> list[Doc]:
        """The stored documents themselves (no copies), for reads that never mutate them."""
        return list(self._docs.get(kind, {}).values())

    def kinds(self) -> list[str]:
        return [kind for kind, docs in self._docs.items() if docs]

    def items(self, kind: str) -> list[tuple[str, Doc]]:
        return [(doc_id, copy.deepcopy(d)) for doc_id, d in self._docs.get(kind, {}).items()]

    def put(self, kind: str, doc_id: str, body: Doc) -> None:
        assert self._db is not None, "store is not open"
        stored = copy.deepcopy(body)
        self._db.execute(
            "INSERT INTO docs (kind, id, body) VALUES (?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET body=excluded.body",
            (kind, doc_id, orjson.dumps(stored).decode()),
        )
        self._docs.setdefault(kind, {})[doc_id] = stored

    def remember(self, kind: str, doc_id: str, body: Doc) -> None:
        """Mirror a document the caller has already committed to the `docs` table."""
        self._docs.setdefault(kind, {})[doc_id] = copy.deepcopy(body)

    def forget(self, kind: str, doc_id: str) -> None:
        """Drop a document the caller has already deleted from the store behind the mirror."""
        self._docs.get(kind, {}).pop(doc_id, None)

    def delete(self, kind: str, doc_id: str) -> bool:
        assert self._db is not None, "store is not open"
        if doc_id not in self._docs.get(kind, {}):
            return False
        self._db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
        del self._docs[kind][doc_id]
        return True
