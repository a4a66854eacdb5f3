"""WAL checkpoints off the event loop.

SQLite's automatic checkpoint runs inside whichever commit crosses the
threshold — on our hot path, with an fsync of the WAL and the database file
(a multi-millisecond stall every few hundred charges). This thread runs
PASSIVE checkpoints on its own connection instead; PASSIVE never blocks the
writer. The main connection keeps a high automatic threshold as a safety net
should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("paygate.store")

SAFETY_NET_PAGES = 20_000  # ~80 MB of WAL before the writer checkpoints by itself


class WalCheckpointer:
    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paygate-wal-checkpoint", daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            db.execute("PRAGMA busy_timeout=100")
            while not self._stop.wait(self.interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or I/O trouble: the safety net still applies
                    log.debug("background checkpoint skipped: %s", exc)
        finally:
            db.close()
