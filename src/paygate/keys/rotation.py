"""Following a rotated key: the store's `rekey` leaves `extra["rotatedTo"]` on the retired record, in the
rotation's own transaction, so state still naming the old hash (a hold, a schedule, a call in flight) can
find the key it belongs to now."""

from __future__ import annotations

from paygate.core.records import KeyRecord
from paygate.store.base import Store

ROTATED_TO = "rotatedTo"


def successor(store: Store, key_hash: str) -> str:
    """The key that state kept under `key_hash` belongs to now: `key_hash` itself, unless that key was
    rotated, then (transitively) the key that replaced it: the store's `rekey` leaves the pointer
    `extra["rotatedTo"]` on the retired record, in the rotation's own transaction."""
    seen = {key_hash}
    while True:
        record = store.get_key(key_hash)
        if record is None or record.active:
            return key_hash
        pointer = record.extra.get(ROTATED_TO)
        if not isinstance(pointer, str) or pointer in seen or store.get_key(pointer) is None:
            return key_hash
        seen.add(pointer)
        key_hash = pointer


def current(store: Store, record: KeyRecord) -> KeyRecord:
    """The live record `record`'s state belongs to (itself unless it was rotated away)."""
    key_hash = successor(store, record.key_hash)
    return record if key_hash == record.key_hash else store.get_key(key_hash) or record
