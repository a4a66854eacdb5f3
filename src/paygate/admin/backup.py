"""Whole-gateway backup and restore: versioned JSON with a SHA-256 checksum.

A backup is `{version, createdAt, checksum, data}`; `data` is `{keys, documents}`:
every key record (its hash and every field, never a raw key — none is stored)
and every document of every kind (groups, teams, templates, plans, admin keys …).
The checksum is SHA-256 over `canonical(data)`; a restore verifies version and
checksum first, then validates all of `data`, then plans every change, and only
then writes — so a bad backup is refused with nothing changed.

Money moves only through the store's ledgered operations: a new key is created
with its balance (`create_key`, ledger kind "restore"), an existing key is
brought to the backup's balance by one `adjust` (kind "restore").

Deliberately not in a backup: the meta table (the bootstrap admin key's hash is a
credential of *this* instance, and maintenance mode is an operational switch),
usage history and the ledger (history, not state).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import orjson

from paygate.admin.auth import ADMIN_KEY_DOC, admin_key_doc_problem
from paygate.admin.backup_keys import KEY_FIELDS, BackupConflict, BackupInvalid, key_from_json, key_to_json
from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.reservations import KIND as RESERVATION_DOC
from paygate.keys.schedules import KIND as SCHEDULE_DOC
from paygate.keys.service import KeyService
from paygate.policy.plans import PLAN_DOC, plan_doc_problem
from paygate.store.base import Store

BACKUP_VERSION = 1
MAX_KEYS = 100_000
MAX_DOCS = 100_000
Mode = Literal["merge", "overwrite", "full"]
_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,200}$")
# Every kind a restore may write, with the check its documents must pass first: kind -> check returning a
# problem naming the field (or None). Plans and admin keys here; the composition root adds every other
# kind (checked against its route's request model, which admin/ may not import). A kind with no check has
# no reader in this gateway and is refused: a backup cannot smuggle in documents nothing validates.
DocCheck = Callable[[str, dict[str, Any]], str | None]
DOC_CHECKS: dict[str, DocCheck] = {
    PLAN_DOC: plan_doc_problem,
    ADMIN_KEY_DOC: admin_key_doc_problem,
}
# Kinds whose documents carry a revocation (`active: false`): like a revoked API key, a revoked
# document is never rewritten (reactivated) nor deleted (its tombstone keeps a later merge from
# bringing the old active copy back) by a restore.
REVOCABLE_DOCS = frozenset({ADMIN_KEY_DOC})
# Kinds whose documents belong to one key and move its money (kind -> the field naming the key's hash):
# credit holds and scheduled actions (topups). Such a document follows its key: a restore writes or
# deletes it only along with a key it rewrites, so a hold or a schedule is never revived on a balance
# the restore did not set — releasing the hold or running the topup again would pay out twice.
KEY_BOUND_DOCS: dict[str, str] = {RESERVATION_DOC: "keyHash", SCHEDULE_DOC: "keyHash"}
MONEY_FIELDS = frozenset({"key_hash", "credits", "total_spent", "total_calls"})  # never set by KeyService.save


def canonical(data: Any) -> bytes:
    """The bytes the checksum covers: JSON, keys sorted, no whitespace, UTF-8, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def checksum(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def document_kinds(store: Store) -> list[str]:
    """Every document kind in the store."""
    return sorted(store.doc_kinds())


@dataclasses.dataclass
class RestorePlan:
    mode: Mode
    keys: list[KeyRecord]
    documents: dict[str, dict[str, dict[str, Any]]]


class BackupService:
    """Key records change only through `KeyService.save` (rollback-safe) and the store's ledgered money
    operations; an export and a restore are each announced once done."""

    def __init__(self, keys: KeyService, doc_checks: Mapping[str, DocCheck] | None = None) -> None:
        """`doc_checks`: the other kinds a restore may write, each with its check (the composition root
        passes the checks built on the API's own request models: compose/doc_checks.py)."""
        self.keys = keys
        self.store = keys.store
        self.doc_checks = {**DOC_CHECKS, **(doc_checks or {})}

    def export(self, actor: str) -> dict[str, Any]:
        """The whole state as a checksummed backup (announced as `backup.exported`)."""
        backup = self.snapshot()
        data = backup["data"]
        self.keys.publish(
            "backup.exported", actor, keys=len(data["keys"]), documents=sum(len(d) for d in data["documents"].values())
        )
        return backup

    def restore(
        self, backup: dict[str, Any], mode: Mode, keep_docs: set[tuple[str, str]], actor: str
    ) -> dict[str, Any]:
        """Verify, validate, plan, then write (announced as `backup.restored`); returns the counts."""
        counts = self.apply(self.parse(backup, mode), keep_docs)
        self.keys.publish("backup.restored", actor, mode=mode, counts=counts)
        return counts

    # export ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        keys = [key_to_json(r) for r in sorted(self.store.list_keys(), key=lambda r: (r.created_at, r.key_hash))]
        documents = {kind: dict(sorted(self.store.doc_items(kind))) for kind in document_kinds(self.store)}
        # through JSON once, so the checksum covers exactly what the client receives
        data = orjson.loads(
            orjson.dumps({"keys": keys, "documents": {k: v for k, v in documents.items() if v}}, default=str)
        )
        return {"version": BACKUP_VERSION, "createdAt": iso_time(time.time()), "checksum": checksum(data), "data": data}

    # restore: verify, then validate, then plan, then write --------------------------------
    def parse(self, backup: dict[str, Any], mode: Mode) -> RestorePlan:
        version = backup.get("version")
        if type(version) is not int or version != BACKUP_VERSION:
            raise BackupInvalid(
                f"Invalid request: unsupported backup version {version!r} (this gateway reads version {BACKUP_VERSION})"
            )
        given = backup.get("checksum")
        data = backup.get("data")
        if not isinstance(given, str) or not isinstance(data, dict):
            raise BackupInvalid("Invalid request: a backup needs a checksum and a data object")
        try:
            actual = checksum(data)
        except ValueError as exc:
            raise BackupInvalid("Invalid request: backup data is not plain JSON") from exc
        if not hmac.compare_digest(actual.encode(), given.lower().encode()):
            raise BackupInvalid(
                "Invalid request: backup checksum does not match its data (corrupted or edited); nothing was restored"
            )
        unknown = sorted(set(data) - {"keys", "documents"})
        if unknown:
            raise BackupInvalid(f"Invalid request: unknown data sections {unknown}")
        raw_keys = data.get("keys", [])
        raw_docs = data.get("documents", {})
        if not isinstance(raw_keys, list) or len(raw_keys) > MAX_KEYS:
            raise BackupInvalid(f"Invalid request: data.keys must be a list of at most {MAX_KEYS} keys")
        keys = [key_from_json(k, f"data.keys[{i}]") for i, k in enumerate(raw_keys)]
        if len({k.key_hash for k in keys}) != len(keys):
            raise BackupInvalid("Invalid request: data.keys lists a key hash twice")
        aliases = [k.alias for k in keys if k.alias is not None]
        if len(set(aliases)) != len(aliases):
            raise BackupInvalid("Invalid request: data.keys gives an alias to two keys")
        return RestorePlan(mode, keys, self._documents(raw_docs))

    def _documents(self, raw: Any) -> dict[str, dict[str, dict[str, Any]]]:
        if not isinstance(raw, dict):
            raise BackupInvalid("Invalid request: data.documents must be an object of kinds")
        total = 0
        for kind, docs in raw.items():
            if not _NAME.match(kind) or not isinstance(docs, dict):
                raise BackupInvalid(f"Invalid request: data.documents[{kind!r}] must be an object of documents")
            check = self.doc_checks.get(kind)
            if check is None:
                raise BackupInvalid(
                    f"Invalid request: data.documents[{kind!r}]: unknown document kind (this gateway stores "
                    f"{', '.join(sorted(self.doc_checks))}); nothing was restored"
                )
            for doc_id, body in docs.items():
                if not doc_id or len(doc_id) > 200 or not isinstance(body, dict):
                    raise BackupInvalid(
                        f"Invalid request: data.documents[{kind!r}][{doc_id!r}] must be an "
                        "object with an id of 1-200 characters"
                    )
                problem = check(doc_id, body)
                if problem:
                    raise BackupInvalid(f"Invalid request: data.documents[{kind!r}][{doc_id!r}]: {problem}")
            total += len(docs)
        if total > MAX_DOCS:
            raise BackupInvalid(f"Invalid request: at most {MAX_DOCS} documents")
        return raw

    def check_aliases(self, plan: RestorePlan) -> set[str]:
        """Refuse (409, nothing changed) a restore whose aliases would collide with keys it does not
        rewrite. Returns the hashes whose alias must be released first (full mode's revoked keys)."""
        incoming = {k.key_hash: k for k in plan.keys}
        release: set[str] = set()
        owners = {r.alias: r for r in self.store.list_keys() if r.alias is not None}
        for key in plan.keys:
            if (
                key.alias is not None
                and self._written(plan.mode, key)
                and (hash_key(key.alias) in incoming or self.store.get_key(hash_key(key.alias)) is not None)
            ):
                # as POST /keys/alias: an alias that is another key's raw value would be shadowed by it
                raise BackupConflict(f"alias {key.alias!r} collides with an API key; nothing was restored")
            owner = owners.get(key.alias) if key.alias is not None else None
            if owner is None or owner.key_hash == key.key_hash:
                continue
            if not self._written(plan.mode, key):
                continue
            # the owner gives the alias up: rewritten with another alias, or revoked by a full restore
            rewritten = owner.key_hash in incoming and plan.mode != "merge" and owner.active
            moves_away = rewritten and incoming[owner.key_hash].alias != owner.alias
            if moves_away or (plan.mode == "full" and owner.key_hash not in incoming):
                release.add(owner.key_hash)
            else:
                raise BackupConflict(
                    f"alias {key.alias!r} belongs to another key here ({owner.masked}); nothing was restored"
                )
        return release

    def check_plans(self, plan: RestorePlan) -> None:
        """Refuse (400, nothing changed) to write an active key on a plan that will not exist: the gate
        would run it without the plan's limits, a state the plan rules never allow."""
        plans = set(plan.documents.get(PLAN_DOC, {}))
        if plan.mode != "full":
            plans |= {doc_id for doc_id, _ in self.store.doc_items(PLAN_DOC)}
        written = [k for k in plan.keys if self._written(plan.mode, k)]
        # a full restore also keeps the successors of rotated backup keys as they are here
        kept = (
            [r for h in self._successors(plan.keys) if (r := self.store.get_key(h)) is not None]
            if plan.mode == "full"
            else []
        )
        for key in (*written, *kept):
            if key.active and key.plan is not None and key.plan not in plans:
                raise BackupInvalid(
                    f"Invalid request: key {key.masked} is on plan {key.plan!r}, which is "
                    "neither in the backup nor kept here; nothing was restored"
                )

    def _written(self, mode: Mode, key: KeyRecord) -> bool:
        current = self.store.get_key(key.key_hash)
        return current is None or (mode != "merge" and current.active)

    def apply(self, plan: RestorePlan, keep_docs: set[tuple[str, str]]) -> dict[str, Any]:
        """Write a validated plan. `keep_docs` (kind, id) are never touched (the caller's own admin key)."""
        self.check_plans(plan)
        release = self.check_aliases(plan)
        rewritten = {k.key_hash for k in plan.keys if self._written(plan.mode, k)}
        doc_counts = self._apply_documents(plan, keep_docs, rewritten)
        return {"keys": self._apply_keys(plan, release), "documents": doc_counts}

    def _apply_documents(
        self, plan: RestorePlan, keep: set[tuple[str, str]], rewritten: set[str]
    ) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        kinds = set(plan.documents) | (set(document_kinds(self.store)) if plan.mode == "full" else set())
        for kind in sorted(kinds):
            c = counts.setdefault(kind, {"created": 0, "updated": 0, "skipped": 0, "deleted": 0})
            incoming = plan.documents.get(kind, {})
            for doc_id, body in incoming.items():
                current = self.store.doc_peek(kind, doc_id)
                if not self._key_rewritten(kind, body, rewritten) or (
                    current is not None
                    and (
                        plan.mode == "merge"
                        or current == body
                        or not self._rewritable(kind, doc_id, current, keep, rewritten)
                    )
                ):
                    c["skipped"] += 1
                    continue
                self.store.doc_put(kind, doc_id, body)
                c["created" if current is None else "updated"] += 1
            if plan.mode == "full":
                for doc_id, current in self.store.doc_items(kind):
                    if doc_id not in incoming and self._rewritable(kind, doc_id, current, keep, rewritten):
                        self.store.doc_delete(kind, doc_id)
                        c["deleted"] += 1
        return counts

    @staticmethod
    def _key_rewritten(kind: str, doc: dict[str, Any], rewritten: set[str]) -> bool:
        """Whether a document of `kind` is free of any key, or bound to one this restore rewrites."""
        field = KEY_BOUND_DOCS.get(kind)
        return field is None or doc.get(field) in rewritten

    def _rewritable(
        self, kind: str, doc_id: str, current: dict[str, Any], keep: set[tuple[str, str]], rewritten: set[str]
    ) -> bool:
        """May a restore replace or delete this existing document? Not the caller's own admin key, not a
        revoked one (revocation is permanent), not a hold on a key the restore leaves alone."""
        revoked = kind in REVOCABLE_DOCS and current.get("active") is False
        return (kind, doc_id) not in keep and not revoked and self._key_rewritten(kind, current, rewritten)

    def _apply_keys(self, plan: RestorePlan, release: set[str]) -> dict[str, int]:
        c = {"created": 0, "updated": 0, "skipped": 0, "revoked": 0}
        for key_hash in release:  # free aliases first: the column is unique
            record = self.store.get_key(key_hash)
            if record is not None:
                self.keys.save(record, alias=None)
        incoming = {k.key_hash for k in plan.keys}
        for key in plan.keys:
            current = self.store.get_key(key.key_hash)
            if current is None:
                self.store.create_key(key, memo="restore")
                c["created"] += 1
            elif plan.mode == "merge" or not current.active or self._unchanged(current, key):
                # revocation is permanent: a key revoked here is not brought back by a restore
                c["skipped"] += 1
            else:
                self._overwrite(current, key)
                c["updated"] += 1
        if plan.mode == "full":
            kept = incoming | self._successors(plan.keys)
            for record in self.store.list_keys():
                if record.key_hash in kept:
                    continue
                if record.active:
                    self.keys.save(record, active=False)
                    c["revoked"] += 1
                if record.credits:
                    self._move(record.key_hash, -record.credits, 0, "restore: not in backup (full mode)")
        return c

    def _successors(self, keys: list[KeyRecord]) -> set[str]:
        """The keys that took over backup keys by rotation since the backup (`extra.rotatedTo`, followed
        to the end). A full restore cannot bring a rotated-away key back, so it keeps its successor rather
        than revoking the only live copy of that key's credits and configuration."""
        out: set[str] = set()
        for key in keys:
            current = self.store.get_key(key.key_hash)
            while current is not None and not current.active and "rotatedTo" in current.extra:
                successor = str(current.extra["rotatedTo"])
                if successor in out:
                    break
                out.add(successor)
                current = self.store.get_key(successor)
        return out

    @staticmethod
    def _unchanged(current: KeyRecord, key: KeyRecord) -> bool:
        """Nothing an overwrite would write differs (totalCalls is never rewritten)."""
        return all(getattr(current, n) == getattr(key, n) for n in KEY_FIELDS if n != "total_calls")

    def _overwrite(self, current: KeyRecord, key: KeyRecord) -> None:
        self.keys.save(current, **{name: getattr(key, name) for name in KEY_FIELDS if name not in MONEY_FIELDS})
        self._move(
            current.key_hash,
            key.credits - current.credits,
            key.total_spent - current.total_spent,
            "restore: balance from backup",
        )

    def _move(self, key_hash: str, delta: int, spent_delta: int, memo: str) -> None:
        if delta == 0 and spent_delta == 0:
            return
        result = self.store.adjust(key_hash, delta, "restore", memo, spent_delta=spent_delta)
        if not result.ok:  # cannot happen without interleaving (routes run on the event loop)
            raise RuntimeError(f"restore could not move {delta} credits")
