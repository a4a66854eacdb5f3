"""New key records and documents written all or nothing (a mixin of `SQLiteStore`): one transaction,
and the in-memory mirrors change only once it committed. Used by `paygate-mcp import-state`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Protocol

import orjson

from paygate.core.records import KeyRecord
from paygate.store.documents import Doc, DocumentTable
from paygate.store.rows import KEY_COLUMNS, LEDGER_SQL, integrity_error, record_values

_INSERT_KEY = f"INSERT INTO keys ({','.join(KEY_COLUMNS)}) VALUES ({','.join('?' * len(KEY_COLUMNS))})"
_INSERT_DOC = "INSERT INTO docs (kind, id, body) VALUES (?, ?, ?)"


class _StoreParts(Protocol):
    _documents: DocumentTable
    _keys: dict[str, KeyRecord]
    generation: int
    flush: Callable[[], None]

    @property
    def db(self) -> sqlite3.Connection: ...


class BulkInsert:
    def insert_all(
        self: _StoreParts, records: Sequence[KeyRecord], docs: Sequence[tuple[str, str, Doc]], memo: str
    ) -> None:
        """Create every key (its balance ledgered with `memo`) and every document, in one transaction.
        Nothing is replaced: a key hash, alias or document id already taken raises `Conflict` and
        nothing is written."""
        self.flush()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                db.execute(_INSERT_KEY, record_values(r))
                if r.credits:
                    db.execute(LEDGER_SQL, (r.created_at, r.key_hash, r.credits, memo, r.credits, None))
            for kind, doc_id, body in docs:
                db.execute(_INSERT_DOC, (kind, doc_id, orjson.dumps(body).decode()))
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise integrity_error(exc, "import") from exc
            raise
        for r in records:
            self._keys[r.key_hash] = r
        for kind, doc_id, body in docs:
            self._documents.remember(kind, doc_id, body)
        self.generation += 1
