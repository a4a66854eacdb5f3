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

Only due work costs anything in the background: the service keeps in memory when each reservation
next needs the ticker (its expiry, or when a settled one is forgotten) and which active holds each key
has, so a tick is one comparison until something is due. Those indexes are built at startup and after a
restore. On a fleet (Redis), settling a hold first claims it (`doc_put_if` on `active`): one instance wins.

A hold whose key was rotated belongs to the new key: `on_rekey` moves it when
the rotation happens, and `follow_rotations` (startup) and every settlement
repair a hold the move missed (a crash between the rotation and its
listeners), so credits never go back to a revoked, emptied key.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from paygate.core.documents import sort_number
from paygate.core.domain_errors import Conflict, Invalid, NotFound, PaymentRequired
from paygate.core.due_times import DueTimes
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.document_index import DocumentIndex
from paygate.keys.rotation import successor
from paygate.store.base import Store
from paygate.store.documents import Doc

log = logging.getLogger("paygate.reservations")

KIND = "reservation"
DEFAULT_TTL = 300
MIN_TTL, MAX_TTL = 10, 3600
MAX_ACTIVE_PER_KEY = 50
SETTLED_KEEP_SECONDS = 3600  # settled reservations answer a second commit/release with 409 for this long
RETRY_SECONDS = 60  # a due item whose work failed unexpectedly is tried again this much later

ACTIVE = "active"
SETTLED = ("committed", "released", "expired")

Publish = Callable[..., None]  # EventHub.publish(type_, actor, **data)


# reservations ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settled:
    doc: Doc
    committed: int
    released: int
    balance: int


class Reservations(DocumentIndex):
    kind = KIND

    def __init__(self, store: Store, publish: Publish) -> None:
        self.store = store
        self.publish = publish
        self._due = DueTimes()
        self._holds: dict[str, set[str]] = {}  # key hash -> ids of its active reservations
        self._holder: dict[str, str] = {}  # active reservation id -> key hash
        self.reload()

    # the in-memory indexes --------------------------------------------------------------------------------
    def _clear_indexes(self) -> None:
        self._due.clear()
        self._holds.clear()
        self._holder.clear()

    def _index(self, doc: Doc) -> None:
        rid = doc["id"]
        self._unindex(rid)
        if doc["status"] == ACTIVE:
            self._holder[rid] = doc["keyHash"]
            self._holds.setdefault(doc["keyHash"], set()).add(rid)
            self._due.set(rid, float(doc["expiresAt"]))
        elif doc["status"] in SETTLED:
            self._due.set(rid, float(doc.get("settledAt") or doc["createdAt"]) + SETTLED_KEEP_SECONDS)

    def _unindex(self, rid: str) -> None:
        self._due.discard(rid)
        key_hash = self._holder.pop(rid, None)
        if key_hash is not None:
            ids = self._holds[key_hash]
            ids.discard(rid)
            if not ids:
                del self._holds[key_hash]

    def _put(self, doc: Doc) -> None:
        self.store.doc_put(KIND, doc["id"], doc)
        self._index(doc)

    def _claim(self, doc: Doc) -> None:
        if not self.store.doc_put_if(KIND, doc["id"], doc, "status", ACTIVE):
            raise Conflict("Reservation is already settled", reservationStatus="settled")
        self._index(doc)

    def _delete(self, rid: str) -> None:
        self.store.doc_delete(KIND, rid)
        self._unindex(rid)

    # queries ---------------------------------------------------------------
    def active(self, key_hash: str | None = None) -> list[Doc]:
        """Active reservations (of one key, or all), oldest first. The store's own objects: read only."""
        ids: Iterable[str] = self._holder if key_hash is None else self._holds.get(key_hash, ())
        docs = [d for d in (self.store.doc_peek(KIND, rid) for rid in ids) if d is not None]
        return sorted(docs, key=lambda d: (sort_number(d.get("createdAt")), str(d.get("id"))))

    def held(self, key_hash: str | None = None) -> int:
        """Credits currently held (out of balances, not yet spent), for one key or all."""
        return sum(int(d["credits"]) for d in self.active(key_hash))

    # moves -------------------------------------------------------------------
    def reserve(
        self, record: KeyRecord, credits: int, ttl: int, memo: str | None, actor: str, now: float | None = None
    ) -> tuple[Doc, int]:
        """Hold `credits` of `record`'s balance for `ttl` seconds: (reservation, balance left)."""
        now = time.time() if now is None else now
        if not record.active:
            raise Conflict("cannot reserve credits on a revoked key")
        if record.suspended:
            raise Conflict("cannot reserve credits on a suspended key")
        if len(self._holds.get(record.key_hash, ())) >= MAX_ACTIVE_PER_KEY:
            raise Conflict(f"key already has {MAX_ACTIVE_PER_KEY} active reservations")
        if record.credits < credits:
            raise PaymentRequired(
                f"Insufficient credits: need {credits}, available {record.credits}",
                available=record.credits,
                requested=credits,
            )
        rid = "rsv_" + secrets.token_hex(8)
        doc: Doc = {
            "id": rid,
            "keyHash": record.key_hash,
            "keyMasked": record.masked,
            "credits": credits,
            "createdAt": now,
            "expiresAt": now + ttl,
            "memo": memo,
            "status": "reserving",
        }
        self._put(doc)
        result = self.store.adjust(record.key_hash, -credits, "reserve", rid)
        if not result.ok:  # the balance changed under us: nothing moved, forget the attempt
            self._delete(rid)
            raise PaymentRequired(
                f"Insufficient credits: need {credits}, available {result.balance}",
                available=result.balance,
                requested=credits,
            )
        doc["status"] = ACTIVE
        self._put(doc)
        self.publish(
            "credits.reserved",
            actor,
            keyMasked=record.masked,
            reservationId=rid,
            credits=credits,
            expiresAt=iso_time(doc["expiresAt"]),
            available=result.balance,
        )
        return doc, result.balance

    def _settleable(self, rid: str) -> Doc:
        doc = self.store.doc_get(KIND, rid)
        if doc is None:
            raise NotFound("Reservation not found")
        if doc["status"] != ACTIVE:
            raise Conflict(f"Reservation is already {doc['status']}", reservationStatus=doc["status"])
        self._follow_rotation(doc)  # written with the transitional status, before any credit moves
        return doc

    def commit(self, rid: str, credits: int | None, actor: str, now: float | None = None) -> Settled:
        """Spend `credits` (default: all) of the hold; the uncommitted rest goes back to the balance."""
        doc = self._settleable(rid)
        held = int(doc["credits"])
        spend = held if credits is None else credits
        if spend > held:
            raise Invalid(f"Invalid request: credits ({spend}) exceeds the reservation ({held})")
        doc.update(status="committing", committedCredits=spend, settledAt=time.time() if now is None else now)
        self._claim(doc)
        balance = self._apply_commit(doc)
        doc["status"] = "committed"
        self._put(doc)
        self.publish(
            "credits.committed",
            actor,
            keyMasked=doc["keyMasked"],
            reservationId=rid,
            credits=spend,
            released=held - spend,
            balance=balance,
        )
        return Settled(doc, spend, held - spend, balance)

    def release(self, rid: str, actor: str, *, expired: bool = False, now: float | None = None) -> Settled:
        """Give the whole hold back to the key (an admin release, or the TTL running out)."""
        doc = self._settleable(rid)
        doc.update(
            status="releasing",
            finalStatus="expired" if expired else "released",
            settledAt=time.time() if now is None else now,
        )
        self._claim(doc)
        balance = self._apply_release(doc)
        doc["status"] = doc.pop("finalStatus")
        self._put(doc)
        self.publish(
            "credits.released",
            actor,
            keyMasked=doc["keyMasked"],
            reservationId=rid,
            credits=doc["credits"],
            reason="expired" if expired else "released",
            balance=balance,
        )
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

    # rotation ------------------------------------------------------------------------------------------------
    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's holds follow it: their credits come back to (or are spent by) the new key."""
        for rid in sorted(self._holds.get(old_hash, ())):
            doc = self.store.doc_get(KIND, rid)
            if doc is not None:
                self._move_to(doc, new_hash)
                self._put(doc)

    def follow_rotations(self) -> int:
        """Move the holds still naming a rotated key to its replacement (a crash between the rotation and
        `on_rekey` leaves them behind): holds moved. Run at startup."""
        moved = 0
        for key_hash in list(self._holds):
            if successor(self.store, key_hash) == key_hash:
                continue
            for rid in sorted(self._holds.get(key_hash, ())):
                doc = self.store.doc_get(KIND, rid)
                if doc is not None and self._follow_rotation(doc):
                    self._put(doc)
                    moved += 1
        return moved

    def _follow_rotation(self, doc: Doc) -> bool:
        """Point `doc` (not yet written) at the live successor of its key: whether it changed."""
        target = successor(self.store, doc["keyHash"])
        if target == doc["keyHash"]:
            return False
        self._move_to(doc, target)
        return True

    def _move_to(self, doc: Doc, key_hash: str) -> None:
        record = self.store.get_key(key_hash)
        doc["keyHash"] = key_hash
        doc["keyMasked"] = record.masked if record is not None else doc["keyMasked"]

    # background ----------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Release holds whose TTL ran out; forget settled reservations after a while. Costs one comparison
        until one of those is due."""
        for rid in self._due.pop_due(now):
            try:
                self._run_due(rid, now)
            except Exception:  # one bad document must not stall the others (nor retry every second)
                log.exception("reservation %s: background work failed", rid)
                self._due.set(rid, now + RETRY_SECONDS)

    def _run_due(self, rid: str, now: float) -> None:
        doc = self.store.doc_peek(KIND, rid)
        if doc is None:
            return
        if doc["status"] == ACTIVE:
            self.release(rid, "system", expired=True, now=now)
        elif doc["status"] in SETTLED:
            self._delete(rid)

    def recover(self) -> int:
        """Finish (or undo) the moves of reservations a crash left in a transitional status."""
        fixed = 0
        for rid, doc in self.store.doc_items(KIND):
            status = doc["status"]
            if status not in ("reserving", "committing", "releasing"):
                continue
            # The moves already made are on the key the document names; the rest go to its live successor.
            done = frozenset(e.kind for e in self.store.ledger(doc["keyHash"]) if e.memo == rid)
            if status == "reserving":
                if "reserve" in done:
                    doc["status"] = ACTIVE
                    self._follow_rotation(doc)
                    self._put(doc)
                else:
                    self._delete(rid)
                fixed += 1
                continue
            if not done:
                self._follow_rotation(doc)
            if status == "committing":
                self._apply_commit(doc, done)
                doc["status"] = "committed"
            else:
                self._apply_release(doc, done)
                doc["status"] = doc.pop("finalStatus", "released")
            self._put(doc)
            fixed += 1
        return fixed


TRANSITIONAL = ("reserving", "committing", "releasing")
DOC_FIELDS = frozenset(
    {"id", "keyHash", "keyMasked", "credits", "createdAt", "expiresAt", "memo", "status"}
    | {"committedCredits", "settledAt", "finalStatus"}
)
_HASH = re.compile(r"^[0-9a-f]{64}$")


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def reservation_doc_problem(doc_id: str, doc: Doc) -> str | None:
    """Why a reservation document (e.g. from a backup) is not one this service writes, or None: the
    fields the service itself sets (the route's own fields, credits and memo, are checked against its
    request model by the caller)."""
    if doc.get("id") != doc_id or not doc_id.startswith("rsv_"):
        return "id: must equal the document id (rsv_…)"
    if not isinstance(doc.get("keyHash"), str) or not _HASH.match(doc["keyHash"]):
        return "keyHash: must be a key's SHA-256 (64 lowercase hex characters)"
    if not isinstance(doc.get("keyMasked"), str):
        return "keyMasked: must be a string"
    status = doc.get("status")
    if status not in (ACTIVE, *SETTLED, *TRANSITIONAL):
        return f"status: must be one of {', '.join((ACTIVE, *SETTLED, *TRANSITIONAL))}"
    if doc.get("finalStatus") not in (None, "released", "expired"):
        return "finalStatus: must be released or expired"
    committed = doc.get("committedCredits")
    if committed is not None and (type(committed) is not int or not 0 <= committed <= _int(doc.get("credits"))):
        return "committedCredits: must be an integer between 0 and credits"
    for name in ("createdAt", "expiresAt", "settledAt"):
        value = doc.get(name)
        if (value is not None or name != "settledAt") and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            return f"{name}: must be a time in epoch seconds"
    return None


def reservation_view(doc: Doc) -> dict[str, Any]:
    """A reservation as the API shows it (masked key, ISO times, never the key hash)."""
    view: dict[str, Any] = {
        "id": doc["id"],
        "key": doc["keyMasked"],
        "credits": int(doc["credits"]),
        "createdAt": iso_time(doc["createdAt"]),
        "expiresAt": iso_time(doc["expiresAt"]),
        "memo": doc.get("memo"),
        "status": doc["status"],
    }
    if "committedCredits" in doc:
        view["committedCredits"] = doc["committedCredits"]
    return view
