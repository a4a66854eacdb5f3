"""Scheduled key actions: revoke, suspend, resume or top up a key at a given time.

Each pending schedule is a document (kind `schedule`) and survives restarts; a
ticker runs the due ones. The time of the earliest pending schedule is kept in
memory, so the once-a-second tick costs one comparison until something is due.
An executed or failed schedule is removed and reported through an event (an
action that no longer applies, e.g. suspending a revoked key, fails cleanly).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from paygate.services.keys import MAX_CREDITS, KeyConflict, KeyService, iso_time
from paygate.store.base import Store
from paygate.store.documents import Doc
from paygate.store.records import KeyRecord

KIND = "schedule"
ACTIONS = ("revoke", "suspend", "resume", "topup")
MAX_PER_KEY = 20

Publish = Callable[..., None]


class ScheduleError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Schedules:
    def __init__(self, store: Store, keys: KeyService, publish: Publish) -> None:
        self.store = store
        self.keys = keys
        self.publish = publish
        self._next_due = self._earliest()

    def _earliest(self) -> float:
        return min((float(d["executeAt"]) for d in self.store.doc_list(KIND)), default=math.inf)

    def pending(self, key_hash: str | None = None) -> list[Doc]:
        docs = self.store.doc_list(KIND)
        if key_hash is not None:
            docs = [d for d in docs if d["keyHash"] == key_hash]
        return sorted(docs, key=lambda d: (d["executeAt"], d["createdAt"], d["id"]))

    def create(self, record: KeyRecord, action: str, execute_at: float, params: dict[str, Any],
               actor: str, now: float | None = None) -> Doc:
        now = time.time() if now is None else now
        if action not in ACTIONS:
            raise ScheduleError(400, f"Invalid request: action must be one of {', '.join(ACTIONS)}")
        if not record.active:
            raise ScheduleError(409, "cannot schedule actions on a revoked key")
        if len(self.pending(record.key_hash)) >= MAX_PER_KEY:
            raise ScheduleError(409, f"key already has {MAX_PER_KEY} pending schedules")
        sid = "sched_" + secrets.token_hex(8)
        doc: Doc = {"id": sid, "keyHash": record.key_hash, "keyMasked": record.masked, "action": action,
                    "executeAt": execute_at, "createdAt": now, "params": params, "createdBy": actor}
        self.store.doc_put(KIND, sid, doc)
        self._next_due = min(self._next_due, execute_at)
        self.publish("schedule.created", actor, keyMasked=record.masked, scheduleId=sid, action=action,
                     executeAt=iso_time(execute_at), params=params)
        return doc

    def cancel(self, sid: str, actor: str) -> Doc:
        doc = self.store.doc_get(KIND, sid)
        if doc is None:
            raise ScheduleError(404, "Schedule not found")
        self.store.doc_delete(KIND, sid)
        self._next_due = self._earliest()
        self.publish("schedule.cancelled", actor, keyMasked=doc["keyMasked"], scheduleId=sid,
                     action=doc["action"])
        return doc

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's pending schedules follow it to the new key."""
        new = self.store.get_key(new_hash)
        for sid, doc in self.store.doc_items(KIND):
            if doc["keyHash"] == old_hash:
                doc["keyHash"] = new_hash
                doc["keyMasked"] = new.masked if new is not None else doc["keyMasked"]
                self.store.doc_put(KIND, sid, doc)

    def tick(self, now: float) -> None:
        if now < self._next_due:
            return
        for doc in self.pending():
            if doc["executeAt"] > now:
                break
            self._execute(doc, now)
        self._next_due = self._earliest()

    def _execute(self, doc: Doc, now: float) -> None:
        # Remove first: a schedule runs at most once, even if the action or the process fails midway.
        self.store.doc_delete(KIND, doc["id"])
        record = self.store.get_key(doc["keyHash"])
        error: str | None = None
        detail: dict[str, Any] = {}
        try:
            if record is None:
                raise KeyConflict("key no longer exists")
            detail = self._apply(record, doc["action"], doc.get("params") or {})
        except KeyConflict as exc:
            error = str(exc)
        self.publish("schedule.executed", "system", keyMasked=doc["keyMasked"], scheduleId=doc["id"],
                     action=doc["action"], ok=error is None, error=error, lateSeconds=round(now - doc["executeAt"], 3),
                     **detail)

    def _apply(self, record: KeyRecord, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action == "revoke":
            if not record.active:
                raise KeyConflict("key is already revoked")
            record.active = False
            self.store.update_key(record)
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


def schedule_view(doc: Doc) -> dict[str, Any]:
    return {"id": doc["id"], "key": doc["keyMasked"], "action": doc["action"],
            "executeAt": iso_time(doc["executeAt"]), "createdAt": iso_time(doc["createdAt"]),
            "params": doc.get("params") or {}}
