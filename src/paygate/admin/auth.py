"""Admin keys: the bootstrap key and the role-bearing keys made through /admin/keys.

The bootstrap key is generated once, stored hashed, compared in constant time
and is always `super_admin`. A generated key's plaintext is also written, mode
0600, next to the state file (`admin.key`) so the operator can read it again
after a restart; a key given by flag or env is never written anywhere and never
echoed. Other admin keys are documents (kind `admin_key`, id = SHA-256 of the
key) holding a name, a role and masked parts; the raw key is shown once.

`POST /admin/keys/rotate-bootstrap` replaces the bootstrap key with a generated one (shown once, kept
hashed); the old key's hash joins the retired list (meta `admin_key_retired`), a generated key's
`admin.key` file is removed (it held the old key), and a later start given a retired key by flag or env
keeps the rotated key and says so in the log: restarting with the old `--admin-key` never revives it.
A key given that was never retired still replaces the bootstrap key, as before (the operator's new key).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from paygate.billing.facts import TENANT_DOC
from paygate.core.documents import readable, sort_number
from paygate.core.domain_errors import Conflict, DomainError, Invalid, NotFound
from paygate.core.keys import generate_admin_key, hash_key, mask_parts
from paygate.core.values import iso_time
from paygate.store.base import Store

log = logging.getLogger("paygate.admin")

META_ADMIN_HASH = "admin_key_hash"
META_RETIRED = "admin_key_retired"  # space-separated SHA-256s of rotated-away bootstrap keys, newest last
MAX_RETIRED = 50
ROTATED_NOTE = "(rotated: the key POST /admin/keys/rotate-bootstrap returned)"
ADMIN_KEY_DOC = "admin_key"
# Ascending power: a route declares the least role it needs.
ROLES: Final = ("viewer", "admin", "super_admin")
ROLE_RANK: Final = {name: rank for rank, name in enumerate(ROLES)}
MAX_ADMIN_KEYS = 100


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    name: str
    role: str
    key_hash: str
    masked: str
    bootstrap: bool = False
    # A key scoped to one tenant (docs/tenants.md): a viewer that may read only that tenant's view
    # (`GET /admin/tenants`) and `GET /admin/whoami`; the guard refuses it every other admin route.
    tenant_id: str | None = None

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        """How audit events name this admin (never the key)."""
        return "admin" if self.bootstrap else f"admin:{self.name} ({self.masked})"


class AdminKeyError(DomainError):
    """An admin-key change refused (nothing changed); the subclass says which kind."""


class AdminKeyInvalid(AdminKeyError, Invalid):
    pass


class AdminKeyNotFound(AdminKeyError, NotFound):
    pass


class AdminKeyConflict(AdminKeyError, Conflict):
    pass


class AdminAuth:
    def __init__(self, store: Store, given: str | None, key_file: Path | None) -> None:
        self.store = store
        self.key_file = key_file
        self.generated: str | None = None  # plaintext we made (or re-read from key_file), to print
        self.rotated = store.get_meta(META_RETIRED) is not None  # the bootstrap key was rotated once
        if given:
            if hash_key(given) in self._retired():
                log.warning(
                    "the admin key given by --admin-key / PAYGATE_ADMIN_KEY was rotated away "
                    "(POST /admin/keys/rotate-bootstrap) and stays revoked: the rotated key remains the "
                    "bootstrap key; give a new key, or none, to stop this warning"
                )
                return
            store.set_meta(META_ADMIN_HASH, hash_key(given))
            self.rotated = False
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
        if self.key_file.is_symlink():
            return None  # never read (or print) through a link someone planted at its name
        raw = self.key_file.read_text(encoding="utf-8").strip()
        if not hmac.compare_digest(hash_key(raw), stored_hash):
            return None
        if self.key_file.stat().st_mode & 0o077:
            os.chmod(self.key_file, 0o600)  # an older install's file: make it private now
        return raw

    def _write_file(self, raw: str) -> None:
        """Write the key to a new 0600 file, then move it into place: opening an existing file would keep
        its permissions (a stale world-readable admin.key) or follow a symlink planted at its name."""
        if self.key_file is None:
            return
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.key_file.with_name(f".{self.key_file.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(raw + "\n")
        os.replace(temp, self.key_file)

    def _retired(self) -> list[str]:
        return (self.store.get_meta(META_RETIRED) or "").split()

    def rotate_bootstrap(self) -> str:
        """Replace the bootstrap key with a new generated one and return it (shown once; stored hashed).
        The old key stops working at once and is retired for good (module docstring)."""
        raw = generate_admin_key()
        old = self.store.get_meta(META_ADMIN_HASH)
        retired = [h for h in self._retired() if h != old] + ([old] if old else [])
        self.store.set_meta(META_RETIRED, " ".join(retired[-MAX_RETIRED:]))
        self.store.set_meta(META_ADMIN_HASH, hash_key(raw))
        self.generated, self.rotated = None, True
        if self.key_file is not None and (self.key_file.exists() or self.key_file.is_symlink()):
            self.key_file.unlink()  # it held the old key
        return raw

    # authentication ---------------------------------------------------------
    def identify(self, presented: str | None) -> AdminIdentity | None:
        """Who holds `presented`, or None. The bootstrap hash is compared in constant time;
        other keys are found by their SHA-256 (a lookup by a hash leaks nothing about the key)."""
        if not presented:
            return None
        digest = hash_key(presented)
        stored = self.store.get_meta(META_ADMIN_HASH)
        if stored is not None and hmac.compare_digest(digest, stored):
            return AdminIdentity("bootstrap", "super_admin", digest, "bootstrap", bootstrap=True)
        doc = self.store.doc_peek(ADMIN_KEY_DOC, digest)
        if doc is None or not doc.get("active", False):
            return None
        tenant = doc.get("tenantId")
        return AdminIdentity(
            doc["name"], doc["role"], digest, doc["keyMasked"], tenant_id=tenant if isinstance(tenant, str) else None
        )

    def check(self, presented: str | None) -> bool:
        return self.identify(presented) is not None

    def touch(self, identity: AdminIdentity) -> None:
        """Record when a non-bootstrap admin key was last used (at most once a minute)."""
        if identity.bootstrap:
            return
        doc = self.store.doc_get(ADMIN_KEY_DOC, identity.key_hash)
        now = time.time()
        if doc is not None and now - float(doc.get("lastUsedTs") or 0) >= 60:
            doc["lastUsedTs"] = now
            self.store.doc_put(ADMIN_KEY_DOC, identity.key_hash, doc)

    # management (super_admin routes) ---------------------------------------------
    def create(self, name: str, role: str, created_by: str, tenant_id: str | None = None) -> tuple[str, dict[str, Any]]:
        if role not in ROLE_RANK:
            raise AdminKeyInvalid(f"Invalid request: role must be one of {', '.join(ROLES)}")
        if tenant_id is not None and role != "viewer":
            raise AdminKeyInvalid("Invalid request: a key scoped to a tenant has the viewer role")
        if tenant_id is not None and self.store.doc_peek(TENANT_DOC, tenant_id) is None:
            raise AdminKeyInvalid(f"Invalid request: no tenant {tenant_id!r}")
        docs = self.store.doc_list(ADMIN_KEY_DOC)
        if sum(1 for d in docs if d.get("active")) >= MAX_ADMIN_KEYS:
            raise AdminKeyConflict(f"at most {MAX_ADMIN_KEYS} active admin keys")
        raw = "ak_" + generate_admin_key().removeprefix("admin_")
        prefix, last4 = mask_parts(raw)
        doc = {
            "name": name,
            "role": role,
            "keyMasked": f"{prefix}…{last4}",
            "active": True,
            "createdTs": time.time(),
            "createdBy": created_by,
            "lastUsedTs": None,
            "revokedTs": None,
            **({"tenantId": tenant_id} if tenant_id is not None else {}),
        }
        self.store.doc_put(ADMIN_KEY_DOC, hash_key(raw), doc)
        return raw, doc

    def find(self, ref: str) -> tuple[str, dict[str, Any]]:
        """An admin key by its raw value or its masked form (a masked form two keys share is a 409)."""
        digest = hash_key(ref)
        doc = self.store.doc_get(ADMIN_KEY_DOC, digest)
        if doc is not None:
            return digest, doc
        matches = [(h, d) for h, d in self.store.doc_items(ADMIN_KEY_DOC) if d.get("keyMasked") == ref]
        if len(matches) > 1:
            raise AdminKeyConflict("that masked key matches several admin keys: give the full key")
        if not matches:
            raise AdminKeyNotFound("admin key not found")
        return matches[0]

    def revoke(self, ref: str, by: AdminIdentity) -> dict[str, Any]:
        """The bootstrap key is not a document, so it can never be revoked here: a super_admin
        always remains."""
        stored = self.store.get_meta(META_ADMIN_HASH)
        if ref == "bootstrap" or (stored is not None and hmac.compare_digest(hash_key(ref), stored)):
            raise AdminKeyInvalid("the bootstrap admin key cannot be revoked")
        key_hash, doc = self.find(ref)
        if key_hash == by.key_hash:
            raise AdminKeyInvalid("you cannot revoke the admin key you are using")
        if not doc["active"]:
            raise AdminKeyConflict("admin key is already revoked")
        doc["active"] = False
        doc["revokedTs"] = time.time()
        self.store.doc_put(ADMIN_KEY_DOC, key_hash, doc)
        return doc

    def active_count(self) -> int:
        """Admin keys that authenticate: the bootstrap key and the active role-bearing ones (for /metrics)."""
        return 1 + sum(1 for d in self.store.doc_scan(ADMIN_KEY_DOC) if d.get("active") is True)

    def list(self) -> list[dict[str, Any]]:
        """Every admin key as listings show it (masked; never the key or its hash), oldest first,
        the bootstrap key first of all."""
        docs = sorted(self.store.doc_list(ADMIN_KEY_DOC), key=lambda d: sort_number(d.get("createdTs") or 0))
        bootstrap = {
            "name": "bootstrap",
            "role": "super_admin",
            "keyMasked": "bootstrap",
            "active": True,
            "bootstrap": True,
            "createdAt": None,
            "createdBy": None,
            "lastUsedAt": None,
            "revokedAt": None,
        }
        return [bootstrap, *readable(ADMIN_KEY_DOC, docs, admin_key_view)]


def admin_key_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why an admin key document (e.g. from a backup) could not authenticate safely, or None."""
    if len(doc_id) != 64 or any(c not in "0123456789abcdef" for c in doc_id):
        return "the id must be the key's SHA-256 (64 lowercase hex characters)"
    if doc.get("role") not in ROLE_RANK:
        return f"role must be one of {', '.join(ROLES)}"
    if not isinstance(doc.get("name"), str) or not isinstance(doc.get("keyMasked"), str):
        return "name and keyMasked must be strings"
    if not isinstance(doc.get("active"), bool):
        return "active must be true or false"
    if "tenantId" in doc and (not isinstance(doc["tenantId"], str) or doc.get("role") != "viewer"):
        return "tenantId must be a tenant's id, on a viewer key"
    for name in ("createdTs", "lastUsedTs", "revokedTs"):  # read by the listing
        value = doc.get(name)
        if value is not None and sort_number(value) == float("inf"):
            return f"{name} must be a time in epoch seconds"
    return None


def admin_key_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": doc["name"],
        "role": doc["role"],
        "keyMasked": doc["keyMasked"],
        "active": doc["active"],
        "bootstrap": False,
        "createdAt": iso_time(doc.get("createdTs")),
        "createdBy": doc.get("createdBy"),
        "lastUsedAt": iso_time(doc.get("lastUsedTs")),
        "revokedAt": iso_time(doc.get("revokedTs")),
        **({"tenantId": doc["tenantId"]} if doc.get("tenantId") is not None else {}),  # only on a scoped key
    }
