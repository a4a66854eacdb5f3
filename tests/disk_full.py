"""A full disk under the charge journal, for tests: its file descriptor writes to /dev/full meanwhile,
so every write fails with ENOSPC exactly as it would on a full file system."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from paygate.store.charge_journal import ChargeJournal


@contextmanager
def disk_full(journal: ChargeJournal) -> Iterator[None]:
    saved = os.dup(journal._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, journal._fd)
    os.close(full)
    try:
        yield
    finally:
        os.dup2(saved, journal._fd)
        os.close(saved)
