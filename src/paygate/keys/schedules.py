"""Scheduled key actions: revoke, suspend, resume or top up a key at a given time.

Each pending schedule is a document (kind `schedule`) and survives restarts; a
ticker runs the due ones. When each schedule is due and which ones each key
has are kept in memory (built at startup, rebuilt after a backup restore), so
the once-a-second tick costs one comparison until something is due and no
request reads every schedule. An executed or failed schedule is removed and
reported through an event (an action that no longer applies, e.g. suspending a
revoked key, fails cleanly). A schedule whose key was rotated acts on the key
that replaced it, even when a crash kept `on_rekey` from moving it.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from paygate.core.documents import sort_number
from paygate.core.domain_errors import Conflict, DomainError, Invalid, NotFound
from paygate.core.due_times import DueTimes
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.keys.document_index import DocumentIndex
from paygate.keys.rotation import successor
from paygate.keys.service import KeyConflict, KeyService
from paygate.store.base import Store
from paygate.store.documents import Doc

KIND = "schedule"
ACTIONS = ("revoke", "suspend", "resume", "topup")
MAX_PER_KEY = 20

log = logging.getLogger("paygate.schedules")

Publish = Callable[..., None]


class ScheduleError(DomainError):
    pass


class ScheduleInvalid(ScheduleError, Invalid):
    pass


class ScheduleConflict(ScheduleError, Conflict):
    pass


class ScheduleNotFound(ScheduleError, NotFound):
    pass


class Schedules(DocumentIndex):
    kind = KIND

    def __init__(self, store: Store, keys: KeyService, publish: Publish) -> None:
        self.store = store
        self.keys = keys
        self.publish = publish
        self._due = DueTimes()
        self._by_key: dict[str, set[str]] = {}  # key hash -> ids of its pending schedules
        self.reload()

    def _clear_indexes(self) -> None:
        self._due.clear()
        self._by_key.clear()

    def _index(self, doc: Doc) -> None:
        self._due.set(doc["id"], float(doc["executeAt"]))
        self._by_key.setdefault(doc["keyHash"], set()).add(doc["id"])

    def _delete(self, doc: Doc) -> bool:
        """Whether this call deleted it (instances sharing a store race for a due schedule: one wins)."""
        deleted = self.store.doc_delete(KIND, doc["id"])
        self._due.discard(doc["id"])
        ids = self._by_key.get(doc["keyHash"], set())
        ids.discard(doc["id"])
        if not ids:
            self._by_key.pop(doc["keyHash"], None)
        return deleted

    def pending(self, key_hash: str | None = None) -> list[Doc]:
        """Pending schedules (of one key, or all), soonest first. The store's own objects: read only."""
        ids = (
            [i for group in self._by_key.values() for i in group]
            if key_hash is None
            else self._by_key.get(key_hash, ())
        )
        docs = [d for d in (self.store.doc_peek(KIND, sid) for sid in ids) if d is not None]
        return sorted(
            docs, key=lambda d: (sort_number(d.get("executeAt")), sort_number(d.get("createdAt")), str(d.get("id")))
        )

    def create(
        self,
        record: KeyRecord,
        action: str,
        execute_at: float,
        params: dict[str, Any],
        actor: str,
        now: float | None = None,
    ) -> Doc:
        now = time.time() if now is None else now
        if action not in ACTIONS:
            raise ScheduleInvalid(f"Invalid request: action must be one of {', '.join(ACTIONS)}")
        if not record.active:
            raise ScheduleConflict("cannot schedule actions on a revoked key")
        if len(self._by_key.get(record.key_hash, ())) >= MAX_PER_KEY:
            raise ScheduleConflict(f"key already has {MAX_PER_KEY} pending schedules")
        sid = "sched_" + secrets.token_hex(8)
        doc: Doc = {
            "id": sid,
            "keyHash": record.key_hash,
            "keyMasked": record.masked,
            "action": action,
            "executeAt": execute_at,
            "createdAt": now,
            "params": params,
            "createdBy": actor,
        }
        self.store.doc_put(KIND, sid, doc)
        self._index(doc)
        self.publish(
            "schedule.created",
            actor,
            keyMasked=record.masked,
            scheduleId=sid,
            action=action,
            executeAt=iso_time(execute_at),
            params=params,
        )
        return doc

    def cancel(self, sid: str, actor: str) -> Doc:
        doc = self.store.doc_get(KIND, sid)
        if doc is None:
            raise ScheduleNotFound("Schedule not found")
        self._delete(doc)
        self.publish("schedule.cancelled", actor, keyMasked=doc["keyMasked"], scheduleId=sid, action=doc["action"])
        return doc

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's pending schedules follow it to the new key."""
        new = self.store.get_key(new_hash)
        for sid in sorted(self._by_key.pop(old_hash, ())):
            doc = self.store.doc_get(KIND, sid)
            if doc is None:
                continue
            doc["keyHash"] = new_hash
            doc["keyMasked"] = new.masked if new is not None else doc["keyMasked"]
            self.store.doc_put(KIND, sid, doc)
            self._index(doc)

    def follow_rotations(self) -> int:
        """Move the schedules still naming a rotated key to its replacement (a crash between the rotation
        and `on_rekey` leaves them behind): keys followed. Run at startup."""
        moved = 0
        for key_hash in list(self._by_key):
            target = successor(self.store, key_hash)
            if target != key_hash:
                self.on_rekey(key_hash, target)
                moved += 1
        return moved

    def tick(self, now: float) -> None:
        """Carry out the due schedules; costs one comparison until one is due."""
        for sid in self._due.pop_due(now):
            doc = self.store.doc_get(KIND, sid)
            if doc is None:
                continue
            try:
                self._execute(doc, now)
            except Exception:  # unexpected (the store failed): the others still run; this one is not retried
                log.exception("schedule %s failed", sid)

    def _execute(self, doc: Doc, now: float) -> None:
        # Remove first: a schedule runs at most once, even if the action or the process fails midway, and
        # once across instances sharing the store (the one whose delete took it runs it).
        if not self._delete(doc):
            return
        record = self.store.get_key(successor(self.store, doc["keyHash"]))
        error: str | None = None
        detail: dict[str, Any] = {}
        try:
            if record is None:
                raise KeyConflict("key no longer exists")
            detail = self._apply(record, doc["action"], doc.get("params") or {})
        except KeyConflict as exc:
            error = str(exc)
        self.publish(
            "schedule.executed",
            "system",
            keyMasked=record.masked if record else doc["keyMasked"],
            scheduleId=doc["id"],
            action=doc["action"],
            ok=error is None,
            error=error,
            lateSeconds=round(now - doc["executeAt"], 3),
            **detail,
        )

    def _apply(self, record: KeyRecord, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action == "revoke":
            if not record.active:
                raise KeyConflict("key is already revoked")
            self.keys.save(record, active=False)  # put back in memory if the write fails
            return {}
        if action == "suspend":
            self.keys.suspend(record, reason="scheduled")
            return {}
        if action == "resume":
            self.keys.resume(record)
            return {}
        credits = int(params["credits"])
        if not record.active:
            raise KeyConflict("cannot top up a revoked key")
        if record.credits + credits > MAX_CREDITS:
            raise KeyConflict(f"balance would exceed {MAX_CREDITS}")
        result = self.store.topup(record.key_hash, credits, "scheduled topup")
        if not result.ok:
            raise KeyConflict("topup refused by the store")
        return {"credits": credits, "newBalance": result.balance}


DOC_FIELDS = frozenset({"id", "keyHash", "keyMasked", "action", "executeAt", "createdAt", "params", "createdBy"})
_HASH = re.compile(r"^[0-9a-f]{64}$")


def schedule_doc_problem(doc_id: str, doc: Doc) -> str | None:
    """Why a schedule document (e.g. from a backup) is not one this service writes, or None: the fields
    the service itself sets (the route's own, the topup's params, are checked against its request model
    by the caller)."""
    if doc.get("id") != doc_id or not doc_id.startswith("sched_"):
        return "id: must equal the document id (sched_…)"
    if not isinstance(doc.get("keyHash"), str) or not _HASH.match(doc["keyHash"]):
        return "keyHash: must be a key's SHA-256 (64 lowercase hex characters)"
    for name in ("keyMasked", "createdBy"):
        if not isinstance(doc.get(name), str):
            return f"{name}: must be a string"
    if doc.get("action") not in ACTIONS:
        return f"action: must be one of {', '.join(ACTIONS)}"
    if not isinstance(doc.get("params"), dict):
        return "params: must be an object"
    for name in ("executeAt", "createdAt"):
        value = doc.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{name}: must be a time in epoch seconds"
    return None


def schedule_view(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "key": doc["keyMasked"],
        "action": doc["action"],
        "executeAt": iso_time(doc["executeAt"]),
        "createdAt": iso_time(doc["createdAt"]),
        "params": doc.get("params") or {},
    }
