"""The bootstrap admin key: generated once, stored hashed, compared in constant time.

A generated key's plaintext is also written, mode 0600, next to the state
file (`admin.key`) so the operator can read it again after a restart; a key
given by flag or env is never written anywhere and never echoed.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from paygate.core.keys import generate_admin_key, hash_key
from paygate.store.base import Store

META_ADMIN_HASH = "admin_key_hash"


class AdminAuth:
    def __init__(self, store: Store, given: str | None, key_file: Path | None) -> None:
        self.store = store
        self.key_file = key_file
        self.generated: str | None = None  # plaintext we made (or re-read from key_file), to print
        if given:
            store.set_meta(META_ADMIN_HASH, hash_key(given))
            return
        stored = store.get_meta(META_ADMIN_HASH)
        if stored is not None:
            self.generated = self._read_file(stored)
            return
        raw = generate_admin_key()
        store.set_meta(META_ADMIN_HASH, hash_key(raw))
        self.generated = raw
        self._write_file(raw)

    def _read_file(self, stored_hash: str) -> str | None:
        if self.key_file is None or not self.key_file.exists():
            return None
        raw = self.key_file.read_text(encoding="utf-8").strip()
        return raw if hmac.compare_digest(hash_key(raw), stored_hash) else None

    def _write_file(self, raw: str) -> None:
        if self.key_file is None:
            return
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(raw + "\n")

    def check(self, presented: str | None) -> bool:
        stored = self.store.get_meta(META_ADMIN_HASH)
        if not presented or stored is None:
            return False
        return hmac.compare_digest(hash_key(presented), stored)
