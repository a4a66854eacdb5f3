"""The charge journal: an append-only file that makes a charge durable in one `write()`.

A charge written to SQLite in a transaction of its own costs ~11 page writes and ~4 lock calls
(~130 µs here); appended to this file it costs one `write()` of ~200 bytes (~3 µs). Both land in
the kernel's page cache and neither waits for the disk (`synchronous=NORMAL`), so both survive the
process being killed and both can lose their last writes to a power cut: the journal is exactly as
durable as the commit it replaces. With `sqliteSync: FULL` each group of charges is also
`fdatasync`ed before any of them is acted on, as SQLite's FULL commit was.

The store applies the journalled charges to SQLite in batches, off the request's path
(store/group_commit.py), and empties the file after each batch commits. Each batch's transaction
also records the highest sequence number it applied (`meta.journal_seq`), so a crash between that
commit and the truncation replays nothing twice.

The first line names the database the journal belongs to (`meta.db_id`), so a journal holding
charges beside another database is refused rather than applied to it (an empty one is taken over:
deleting the state file to start afresh must not need deleting this one too). Then one line per commit unit (one charge,
or a `tools/call_batch`'s charges, all or none):
`<crc32 hex> <json [seq, [[ts, key_hash, amount, balance, masked, name, tool, namespace, request_id], …]]>\\n`.
A torn or corrupt line (a power cut mid-write) ends the replay: nothing after it is trusted.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from paygate.core.records import UsageEvent

log = logging.getLogger("paygate.store")

SUFFIX = "-charges"  # beside the state file, as SQLite's own -wal and -shm are
SEQ_META = "journal_seq"
ID_META = "db_id"
HEADER = b"paygate-charges 1 %s\n"


class ForeignJournal(Exception):
    """The journal names another database than the one it lies beside."""


_sync_data = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
Entry = tuple[UsageEvent, int, int]  # the call's usage row, the amount charged, the balance after it


def encode(seq: int, entries: Iterable[Entry]) -> bytes:
    """One commit unit as a journal line."""
    payload = orjson.dumps(
        [
            seq,
            [
                [e.timestamp, e.key_hash, amount, balance, e.key_masked, e.key_name, e.tool, e.namespace, e.request_id]
                for e, amount, balance in entries
            ],
        ]
    )
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode(line: bytes) -> tuple[int, list[Entry]] | None:
    """A line's sequence number and entries; None for a torn or corrupt line."""
    if len(line) < 10 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        seq, raw = orjson.loads(payload)
        return int(seq), [_entry(r) for r in raw]
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None


def _entry(r: list[Any]) -> Entry:
    ts, key_hash, amount, balance, masked, name, tool, namespace, request_id = r
    event = UsageEvent(float(ts), key_hash, masked, name, tool, int(amount), True, None, namespace, request_id)
    return event, int(amount), int(balance)


class ChargeJournal:
    """The file (see the module docstring). Not thread-safe: the event loop's thread owns it."""

    def __init__(self, path: str, *, fsync: bool, db_id: str = "") -> None:
        """Open (or create) the journal of the database `db_id`; raises ForeignJournal for another's."""
        self.path = path
        self.fsync = fsync
        self._header = HEADER % db_id.encode()
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            with open(self._fd, "rb", closefd=False) as f:
                first = f.readline(len(self._header))
                holds_charges = bool(f.read(1))
            if first != self._header and not holds_charges:  # new, or an empty one left by a deleted database
                os.ftruncate(self._fd, 0)
                self.append(self._header)
            elif first != self._header:
                raise ForeignJournal(
                    f"{path} is not the charge journal of this state file (its first line: {first[:80]!r})"
                )
        except BaseException:
            os.close(self._fd)
            raise

    def units(self) -> Iterator[tuple[int, list[Entry]]]:
        """Every intact commit unit in the file, in order, up to the first damaged line."""
        with open(self._fd, "rb", closefd=False) as f:
            f.seek(len(self._header))
            for number, line in enumerate(f, start=2):
                unit = decode(line)
                if unit is None:
                    log.warning("%s: line %d is damaged (torn write?); it and the rest are ignored", self.path, number)
                    return
                yield unit

    def append(self, data: bytes) -> None:
        """Write whole lines; durable (as the module docstring says) when this returns. Raises OSError."""
        view = memoryview(data)
        while view:  # a regular file takes it in one write() unless the disk is full
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            _sync_data(self._fd)

    def clear(self) -> None:
        """Every unit is in SQLite: start the file afresh (its header stays)."""
        os.ftruncate(self._fd, len(self._header))

    def close(self) -> None:
        os.close(self._fd)
