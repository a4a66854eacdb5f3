"""`paygate-mcp migrate-store --from SRC --to DST`: copy a whole store from SQLite into Redis, or back.

One side is a SQLite state file, the other a Redis URL (with `--redis-prefix`). The SQLite side is opened
as a gateway opens it, lock included, so a gateway running on that file makes the command refuse. The
destination must be empty. Everything is read and written a chunk at a time (store/history.py); then the
destination is opened through its real store class and checked against what was read (store_migration_check.py).
The call rollups are copied at their finest level and rebuilt into every level (store_migration_rollups.py).

Exit codes: 0 copied and verified (or, with `--dry-run`, counted: nothing written); 1 refused, failed, or
copied with a mismatch (each named).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from paygate.core.urls import redact_url
from paygate.store.errors import StateFileError, StoreError
from paygate.store.history import HistoryReader, HistoryWriter, RefundMark, UsageItem, chunks, successors
from paygate.store.history_sqlite import SQLiteHistory, occupied
from paygate.store.redis_backend.history import RedisHistory
from paygate.store.redis_backend.names import LINK_ERRORS, Names
from paygate.store.sqlite import SQLiteStore
from paygate.store.state_file import StateFileInUse, StateFileLock
from paygate.store_migration_check import KeyTally, Tally, verify_redis, verify_sqlite
from paygate.store_migration_rollups import copy_rollups

Echo = Callable[..., Any]
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class MigrationError(Exception):
    """The copy is refused or failed; the message says why (and what, if anything, was written)."""


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "sqlite" | "redis"
    where: str  # a path, or a URL
    prefix: str = ""

    @property
    def shown(self) -> str:
        if self.kind == "redis":
            return f"Redis {redact_url(self.where)} (prefix {self.prefix})"
        return f"SQLite {self.where}"

    def as_json(self) -> dict[str, str]:
        if self.kind == "redis":
            return {"kind": "redis", "url": redact_url(self.where), "prefix": self.prefix}
        return {"kind": "sqlite", "path": self.where}


def endpoint(text: str, prefix: str) -> Endpoint:
    if text.startswith(REDIS_SCHEMES):
        try:
            Names(prefix)
        except ValueError as exc:
            raise MigrationError(str(exc)) from exc
        return Endpoint("redis", text, prefix)
    if "://" in text:
        raise MigrationError(f"{text!r}: not a redis://, rediss:// or unix:// URL, nor a SQLite file path")
    if not text or text == ":memory:":
        raise MigrationError(f"{text!r}: give a SQLite state file path")
    return Endpoint("sqlite", str(Path(text).expanduser()))


# opening each side ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _sqlite_store(path: str) -> Iterator[SQLiteStore]:
    store = SQLiteStore(path)
    try:
        store.open()
    except StateFileInUse as exc:
        raise MigrationError(str(exc)) from exc
    except (StateFileError, OSError, sqlite3.Error) as exc:
        raise MigrationError(f"{path}: {exc}") from exc
    try:
        yield store
    finally:
        store.close()


def redis_client(url: str) -> redis.Redis:
    try:
        client = redis.Redis.from_url(url, socket_timeout=30.0, socket_connect_timeout=5.0)
    except ValueError as exc:
        raise MigrationError(f"{redact_url(url)}: {exc}") from exc
    try:
        client.ping()
    except (*LINK_ERRORS, redis.exceptions.RedisError) as exc:
        client.close()
        raise MigrationError(f"redis unreachable at {redact_url(url)}: {exc}") from exc
    return client


@contextlib.contextmanager
def _redis(end: Endpoint) -> Iterator[RedisHistory]:
    client = redis_client(end.where)
    try:
        yield RedisHistory(client, Names(end.prefix))
    finally:
        client.close()


@contextlib.contextmanager
def open_source(end: Endpoint) -> Iterator[HistoryReader]:
    if end.kind == "sqlite":
        if not Path(end.where).is_file():
            raise MigrationError(f"no SQLite state file at {end.where}")
        with _sqlite_store(end.where) as store:
            yield SQLiteHistory(store.db)
    else:
        with _redis(end) as history:
            if history.empty() is None:
                raise MigrationError(
                    f"nothing under prefix {end.prefix!r} at {redact_url(end.where)}: wrong --redis-prefix?"
                )
            yield history


@contextlib.contextmanager
def open_destination(end: Endpoint, dry_run: bool) -> Iterator[HistoryWriter | None]:
    """The destination's writer (None in a dry run), once it is known to be empty."""
    if end.kind == "redis":
        with _redis(end) as history:
            _require_empty(end, history.empty())
            yield None if dry_run else history
    elif dry_run:  # look, creating nothing: the lock says whether a gateway runs on it
        if Path(end.where).exists():
            lock = StateFileLock(end.where)
            try:
                lock.acquire()
            except StateFileInUse as exc:
                raise MigrationError(str(exc)) from exc
            try:
                with contextlib.closing(sqlite3.connect(f"file:{end.where}?mode=ro", uri=True)) as db:
                    _require_empty(end, occupied(db))
            except sqlite3.DatabaseError as exc:
                raise MigrationError(f"{end.where} is not a PayGate state database ({exc})") from exc
            finally:
                lock.release()
        yield None
    else:
        with _sqlite_store(end.where) as store:
            into = SQLiteHistory(store.db)
            _require_empty(end, into.empty())
            yield into


def _require_empty(end: Endpoint, held: str | None) -> None:
    if held is not None:
        raise MigrationError(
            f"the destination {end.shown} is not empty ({held}): migrate-store copies into an empty store "
            "only, and wrote nothing"
        )


# the copy --------------------------------------------------------------------------------------------------------
def copy(src: HistoryReader, dst: HistoryWriter | None) -> Tally:
    """Everything of `src` into `dst` (or only counted, with None), a chunk at a time; what was read."""
    tally = Tally()
    records = src.keys()
    tally.counts["keys"] = len(records)
    tally.counts["rotated"] = sum(1 for r in records if r.extra.get("rotatedTo"))
    for r in records:
        tally.per_key[r.key_hash] = KeyTally(r.credits, r.total_spent, r.total_calls, r.last_used_at)
    if dst is not None:
        dst.write_keys(records)
    for ledger in chunks(src.ledger()):
        for _, entry in ledger:
            tally.add("ledger")
            key = tally.per_key.setdefault(entry.key_hash, KeyTally(0, 0, 0, None, missing=True))
            key.ledger_sum += entry.delta
            key.ledger_count += 1
        if dst is not None:
            dst.write_ledger(ledger)
    for usage in chunks(src.usage()):
        _count_usage(tally, usage)
        if dst is not None:
            dst.write_usage(usage)
    parts: list[tuple[str, Callable[[], Any], Callable[[Any], None] | None]] = [
        ("documents", src.documents, dst.write_documents if dst else None),
        ("meta", src.meta, dst.write_meta if dst else None),
        ("audit", src.audit, dst.write_audit if dst else None),
        ("webhookQueued", src.queued, dst.write_queued if dst else None),
        ("webhookBatches", src.batches, dst.write_batches if dst else None),
        ("webhookDeadLetters", src.dead_letters, dst.write_dead_letters if dst else None),
        ("onceMoves", src.once_moves, dst.write_once_moves if dst else None),
    ]
    for name, read, write in parts:
        tally.counts.setdefault(name, 0)
        for chunk in chunks(read()):
            tally.add(name, len(chunk))
            if write is not None:
                write(chunk)
    # before `finish`: into SQLite, the rollups are part of the copy's one transaction
    moved = successors(records)
    tally.rollups = copy_rollups(src.rollups(moved), dst.write_rollups if dst else None, moved)
    if dst is not None:
        dst.finish()
    return tally


def _count_usage(tally: Tally, items: list[UsageItem]) -> None:
    marks = sum(1 for i in items if isinstance(i, RefundMark))
    tally.add("usage", len(items) - marks)
    tally.add("refundMarks", marks)


# the command -----------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    source: Endpoint
    target: Endpoint
    dry_run: bool
    tally: Tally | None = None
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def migrate(src_text: str, dst_text: str, prefix: str, dry_run: bool) -> Outcome:
    source, target = endpoint(src_text, prefix), endpoint(dst_text, prefix)
    outcome = Outcome(source, target, dry_run)
    if source.kind == target.kind:
        raise MigrationError(
            f"--from and --to are both {'Redis' if source.kind == 'redis' else 'SQLite'}: migrate-store copies "
            "between a SQLite state file and Redis (one of each)"
        )
    with open_source(source) as reader, open_destination(target, dry_run) as writer:
        try:
            outcome.tally = copy(reader, writer)
        except (StoreError, sqlite3.Error, redis.exceptions.RedisError, *LINK_ERRORS) as exc:
            left = writer.abort() if writer is not None else "nothing was written"
            raise MigrationError(f"the copy failed ({exc}); {left}") from exc
    if not dry_run and outcome.tally is not None:
        check = verify_redis if target.kind == "redis" else verify_sqlite
        try:
            outcome.mismatches, outcome.notes = check(target.where, target.prefix, outcome.tally)
        except (StoreError, StateFileInUse, sqlite3.Error, redis.exceptions.RedisError, *LINK_ERRORS) as exc:
            outcome.mismatches = [f"copied, but the destination could not be opened to check it: {exc}"]
    return outcome


def run_migrate(source: str, target: str, *, prefix: str, dry_run: bool, as_json: bool, echo: Echo) -> int:
    try:
        outcome = migrate(source, target, prefix, dry_run)
    except MigrationError as exc:
        if as_json:
            echo(json.dumps({"error": str(exc), "copied": False}))
        else:
            echo(f"error: {exc}", err=True)
        return 1
    failed = bool(outcome.mismatches)
    if as_json:
        echo(json.dumps(_as_json(outcome), indent=2))
    else:
        echo(_as_text(outcome), err=failed)
    return 1 if failed else 0


def _counts(o: Outcome) -> dict[str, int]:
    if o.tally is None:
        return {}
    return {**o.tally.counts, "rollupRows": o.tally.rollups.rows, "rollupCalls": o.tally.rollups.calls}


def _as_json(o: Outcome) -> dict[str, Any]:
    counts = _counts(o)
    return {
        "from": o.source.as_json(),
        "to": o.target.as_json(),
        "dryRun": o.dry_run,
        ("found" if o.dry_run else "copied"): counts,
        "verified": None if o.dry_run else not o.mismatches,
        "mismatches": o.mismatches,
        "notes": o.notes,
    }


def _as_text(o: Outcome) -> str:
    c = _counts(o)
    verb = "would copy" if o.dry_run else "copied"
    lines = [
        f"migrate-store: {o.source.shown} -> {o.target.shown}{' (dry run: nothing written)' if o.dry_run else ''}",
        f"  {verb}: {c.get('keys', 0)} keys ({c.get('rotated', 0)} rotated away), {c.get('ledger', 0)} ledger "
        f"entries, {c.get('usage', 0)} usage rows ({c.get('refundMarks', 0)} refunds), {c.get('documents', 0)} "
        f"documents, {c.get('meta', 0)} meta values, {c.get('audit', 0)} audit entries",
        f"  webhooks: {c.get('webhookQueued', 0)} queued events, {c.get('webhookBatches', 0)} batches, "
        f"{c.get('webhookDeadLetters', 0)} dead letters",
        f"  call rollups: {c.get('rollupRows', 0)} hourly rows ({c.get('rollupCalls', 0)} calls)",
    ]
    lines += [f"  note: {n}" for n in o.notes]
    if o.mismatches:
        lines.append(f"error: the copy does not match its source ({len(o.mismatches)} mismatches):")
        lines += [f"  - {m}" for m in o.mismatches]
    elif not o.dry_run:
        lines.append(
            "  verified: every balance equals its ledger and the source's; every count matches; the rollups' "
            "totals per key, per tool and overall equal the source's"
        )
    return "\n".join(lines)
