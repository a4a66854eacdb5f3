"""Credit reservations: hold credits now, commit (spend) or release them later.

Money model (balances always equal the ledger): reserving moves the credits out
of the key's balance at once (`adjust(-n, "reserve")`); releasing or expiring
returns them (`adjust(+n, "release")`); committing makes them spent without
touching the balance again (`adjust(0, "reserve_commit", spent_delta=n)`), and
a partial commit releases the rest. So at any moment:
    sum(balances) + sum(active holds) + sum(spent) == everything ever added.

Each reservation is a document (kind `reservation`) that survives restarts.
The store cannot write a document and a money move in one transaction, so a
reservation passes through a transitional status (`reserving`, `committing`,
`releasing`) written BEFORE its money moves. Every money move's ledger memo is
the reservation id, so `recover()` (run at startup) finishes or undoes a move a
crash interrupted by reading that key's ledger: no hold is lost or paid twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.services.keys import iso_time
from paygate.store.base import Store
from paygate.store.documents import Doc
from paygate.store.records import KeyRecord

KIND = "reservation"
DEFAULT_TTL = 300
MIN_TTL, MAX_TTL = 10, 3600
MAX_ACTIVE_PER_KEY = 50
SETTLED_KEEP_SECONDS = 3600  # settled reservations answer a second commit/release with 409 for this long

ACTIVE = "active"
SETTLED = ("committed", "released", "expired")

Publish = Callable[..., None]  # EventHub.publish(type_, actor, **data)


class ReservationError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Settled:
    doc: Doc
    committed: int
    released: int
    balance: int


class Reservations:
    def __init__(self, store: Store, publish: Publish) -> None:
        self.store = store
        self.publish = publish

    # queries ---------------------------------------------------------------
    def active(self, key_hash: str | None = None) -> list[Doc]:
        docs = [d for d in self.store.doc_list(KIND) if d["status"] == ACTIVE]
        if key_hash is not None:
            docs = [d for d in docs if d["keyHash"] == key_hash]
        return sorted(docs, key=lambda d: (d["createdAt"], d["id"]))

    def held(self, key_hash: str | None = None) -> int:
        """Credits currently held (out of balances, not yet spent), for one key or all."""
        return sum(int(d["credits"]) for d in self.active(key_hash))

    # moves -------------------------------------------------------------------
    def reserve(self, record: KeyRecord, credits: int, ttl: int, memo: str | None, actor: str,
                now: float | None = None) -> tuple[Doc, int]:
        """Hold `credits` of `record`'s balance for `ttl` seconds: (reservation, balance left)."""
        now = time.time() if now is None else now
        if not record.active:
            raise ReservationError(409, "cannot reserve credits on a revoked key")
        if record.suspended:
            raise ReservationError(409, "cannot reserve credits on a suspended key")
        if len(self.active(record.key_hash)) >= MAX_ACTIVE_PER_KEY:
            raise ReservationError(409, f"key already has {MAX_ACTIVE_PER_KEY} active reservations")
        if record.credits < credits:
            raise ReservationError(402, f"Insufficient credits: need {credits}, available {record.credits}",
                                   available=record.credits, requested=credits)
        rid = "rsv_" + secrets.token_hex(8)
        doc: Doc = {"id": rid, "keyHash": record.key_hash, "keyMasked": record.masked, "credits": credits,
                    "createdAt": now, "expiresAt": now + ttl, "memo": memo, "status": "reserving"}
        self.store.doc_put(KIND, rid, doc)
        result = self.store.adjust(record.key_hash, -credits, "reserve", rid)
        if not result.ok:  # the balance changed under us: nothing moved, forget the attempt
            self.store.doc_delete(KIND, rid)
            raise ReservationError(402, f"Insufficient credits: need {credits}, available {result.balance}",
                                   available=result.balance, requested=credits)
        doc["status"] = ACTIVE
        self.store.doc_put(KIND, rid, doc)
        self.publish("credits.reserved", actor, keyMasked=record.masked, reservationId=rid, credits=credits,
                     expiresAt=iso_time(doc["expiresAt"]), available=result.balance)
        return doc, result.balance

    def _settleable(self, rid: str) -> Doc:
        doc = self.store.doc_get(KIND, rid)
        if doc is None:
            raise ReservationError(404, "Reservation not found")
        if doc["status"] != ACTIVE:
            raise ReservationError(409, f"Reservation is already {doc['status']}", reservationStatus=doc["status"])
        return doc

    def commit(self, rid: str, credits: int | None, actor: str, now: float | None = None) -> Settled:
        """Spend `credits` (default: all) of the hold; the uncommitted rest goes back to the balance."""
        doc = self._settleable(rid)
        held = int(doc["credits"])
        spend = held if credits is None else credits
        if spend > held:
            raise ReservationError(400, f"Invalid request: credits ({spend}) exceeds the reservation ({held})")
        doc.update(status="committing", committedCredits=spend, settledAt=time.time() if now is None else now)
        self.store.doc_put(KIND, rid, doc)
        balance = self._apply_commit(doc)
        doc["status"] = "committed"
        self.store.doc_put(KIND, rid, doc)
        self.publish("credits.committed", actor, keyMasked=doc["keyMasked"], reservationId=rid,
                     credits=spend, released=held - spend, balance=balance)
        return Settled(doc, spend, held - spend, balance)

    def release(self, rid: str, actor: str, *, expired: bool = False, now: float | None = None) -> Settled:
        """Give the whole hold back to the key (an admin release, or the TTL running out)."""
        doc = self._settleable(rid)
        doc.update(status="releasing", finalStatus="expired" if expired else "released",
                   settledAt=time.time() if now is None else now)
        self.store.doc_put(KIND, rid, doc)
        balance = self._apply_release(doc)
        doc["status"] = doc.pop("finalStatus")
        self.store.doc_put(KIND, rid, doc)
        self.publish("credits.released", actor, keyMasked=doc["keyMasked"], reservationId=rid,
                     credits=doc["credits"], reason="expired" if expired else "released", balance=balance)
        return Settled(doc, 0, int(doc["credits"]), balance)

    def _apply_commit(self, doc: Doc, done: frozenset[str] = frozenset()) -> int:
        h, rid = doc["keyHash"], doc["id"]
        spend = int(doc["committedCredits"])
        rest = int(doc["credits"]) - spend
        balance = self._balance(h)
        if spend and "reserve_commit" not in done:
            balance = self.store.adjust(h, 0, "reserve_commit", rid, spent_delta=spend).balance
        if rest and "release" not in done:
            balance = self.store.adjust(h, rest, "release", rid).balance
        return balance

    def _apply_release(self, doc: Doc, done: frozenset[str] = frozenset()) -> int:
        if "release" in done:
            return self._balance(doc["keyHash"])
        return self.store.adjust(doc["keyHash"], int(doc["credits"]), "release", doc["id"]).balance

    def _balance(self, key_hash: str) -> int:
        record = self.store.get_key(key_hash)
        return record.credits if record is not None else 0

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's holds follow it: their credits come back to (or are spent by) the new key."""
        new = self.store.get_key(new_hash)
        for rid, doc in self.store.doc_items(KIND):
            if doc["keyHash"] == old_hash:
                doc["keyHash"] = new_hash
                doc["keyMasked"] = new.masked if new is not None else doc["keyMasked"]
                self.store.doc_put(KIND, rid, doc)

    # background ----------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Release holds whose TTL ran out; forget settled reservations after a while."""
        for rid, doc in self.store.doc_items(KIND):
            if doc["status"] == ACTIVE and doc["expiresAt"] <= now:
                self.release(rid, "system", expired=True, now=now)
            elif doc["status"] in SETTLED and doc.get("settledAt", now) + SETTLED_KEEP_SECONDS <= now:
                self.store.doc_delete(KIND, rid)

    def recover(self) -> int:
        """Finish (or undo) the moves of reservations a crash left in a transitional status."""
        fixed = 0
        for rid, doc in self.store.doc_items(KIND):
            status = doc["status"]
            if status not in ("reserving", "committing", "releasing"):
                continue
            done = frozenset(e.kind for e in self.store.ledger(doc["keyHash"]) if e.memo == rid)
            if status == "reserving":
                if "reserve" in done:
                    doc["status"] = ACTIVE
                    self.store.doc_put(KIND, rid, doc)
                else:
                    self.store.doc_delete(KIND, rid)
            elif status == "committing":
                self._apply_commit(doc, done)
                doc["status"] = "committed"
                self.store.doc_put(KIND, rid, doc)
            else:
                self._apply_release(doc, done)
                doc["status"] = doc.pop("finalStatus", "released")
                self.store.doc_put(KIND, rid, doc)
            fixed += 1
        return fixed


def reservation_view(doc: Doc) -> dict[str, Any]:
    """A reservation as the API shows it (masked key, ISO times, never the key hash)."""
    view: dict[str, Any] = {
        "id": doc["id"], "key": doc["keyMasked"], "credits": doc["credits"],
        "createdAt": iso_time(doc["createdAt"]), "expiresAt": iso_time(doc["expiresAt"]),
        "memo": doc.get("memo"), "status": doc["status"],
    }
    if "committedCredits" in doc:
        view["committedCredits"] = doc["committedCredits"]
    return view
