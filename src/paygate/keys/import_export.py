"""Key export and import (backup, migration between gateways).

Keys are stored hashed, so an export carries each key's SHA-256 hash and masked
form, never the raw key; importing that hash elsewhere restores a key the same
raw value still unlocks (the hash is the identity). An import entry may instead
carry a raw `key` (e.g. from paygate-mcp), hashed on the way in.

Import is checked whole before anything is applied: in `error` mode one
conflict aborts everything; in `skip` / `overwrite` mode conflicting entries are
skipped or replace the existing key. Balances change only through the store's
money operations (`create_key`, `adjust`), so the ledger explains every credit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from paygate.core.csv_cells import csv_text
from paygate.core.domain_errors import Conflict, Invalid
from paygate.core.keys import hash_key, mask_parts
from paygate.core.records import KeyRecord
from paygate.core.values import iso_rounded
from paygate.keys.service import KeyService
from paygate.policy.memberships import GROUPS, TEAMS
from paygate.store.base import Store

EXPORT_VERSION = 1
Mode = Literal["skip", "overwrite", "error"]

# Policy fields an import sets on an existing key in `overwrite` mode (money and usage counters excluded).
_POLICY_FIELDS = (
    "name",
    "active",
    "suspended",
    "expires_at",
    "allowed_tools",
    "denied_tools",
    "quota",
    "tags",
    "namespace",
    "ip_allowlist",
    "spending_limit",
    "alias",
    "group_id",
    "team_id",
    "plan",
    "allowed_countries",
    "denied_countries",
    "notes",
    "auto_topup",
    "extra",
)
CSV_COLUMNS = (
    "keyHash",
    "keyMasked",
    "name",
    "credits",
    "totalSpent",
    "totalCalls",
    "active",
    "suspended",
    "namespace",
    "alias",
    "createdAt",
    "lastUsedAt",
    "expiresAt",
    "tags",
)


def parse_iso(value: str) -> float:
    """An ISO 8601 date-time with a time zone (`Z` or an offset) as a Unix timestamp."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone (e.g. Z)")
    return parsed.timestamp()


# export ----------------------------------------------------------------------------------------------------


def export_entry(r: KeyRecord) -> dict[str, Any]:
    """Every field of a key, camelCase, with its hash in place of the raw key (which is never stored)."""
    return {
        "keyHash": r.key_hash,
        "keyMasked": r.masked,
        "name": r.name,
        "credits": r.credits,
        "totalSpent": r.total_spent,
        "totalCalls": r.total_calls,
        "createdAt": iso_rounded(r.created_at),
        "lastUsedAt": iso_rounded(r.last_used_at),
        "active": r.active,
        "suspended": r.suspended,
        "expiresAt": iso_rounded(r.expires_at),
        "allowedTools": r.allowed_tools,
        "deniedTools": r.denied_tools,
        "quota": r.quota,
        "tags": r.tags,
        "namespace": r.namespace,
        "ipAllowlist": r.ip_allowlist,
        "spendingLimit": r.spending_limit,
        "alias": r.alias,
        "groupId": r.group_id,
        "teamId": r.team_id,
        "plan": r.plan,
        "allowedCountries": r.allowed_countries,
        "deniedCountries": r.denied_countries,
        "notes": r.notes,
        "autoTopup": r.auto_topup,
        "extra": r.extra,
    }


def select(records: list[KeyRecord], namespace: str | None, active_only: bool) -> list[KeyRecord]:
    out = [r for r in records if (namespace is None or r.namespace == namespace) and (r.active or not active_only)]
    return sorted(out, key=lambda r: (r.created_at, r.key_hash))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value  # text is made safe for spreadsheets by csv_text (core/csv_cells.py)


def export_csv(entries: list[dict[str, Any]]) -> str:
    return csv_text(CSV_COLUMNS, ([_cell(e[c]) for c in CSV_COLUMNS] for e in entries))


# import ----------------------------------------------------------------------------------------------------


class ImportInvalid(Invalid):
    """An entry is malformed: the whole import is refused and nothing changes."""


class ImportConflict(Conflict):
    """`error` mode and some entry conflicts: nothing is imported (the conflicts are in the answer)."""


@dataclass
class ImportPlan:
    mode: Mode
    records: list[KeyRecord]
    statuses: list[str] = field(default_factory=list)  # per entry: imported | overwritten | skipped | error
    errors: list[str | None] = field(default_factory=list)


def record_from_entry(entry: dict[str, Any], now: float) -> KeyRecord:
    """A key record from one validated import entry (snake_case field names, ISO times as strings)."""
    raw, key_hash, masked = entry.get("key"), entry.get("key_hash"), entry.get("key_masked")
    if raw is not None:
        if key_hash is not None and key_hash != hash_key(raw):
            raise ImportInvalid("keyHash does not match key")
        key_hash = hash_key(raw)
        prefix, last4 = mask_parts(raw)
    elif key_hash is not None:
        if masked is None or masked.count("…") != 1:
            raise ImportInvalid("an entry with keyHash needs keyMasked as exported (prefix…last4)")
        prefix, last4 = masked.split("…")
    else:
        raise ImportInvalid("each entry needs key (a raw API key) or keyHash (from an export)")

    def when(name: str) -> float | None:
        value = entry.get(name)
        if value is None:
            return None
        try:
            return parse_iso(value)
        except ValueError as exc:
            raise ImportInvalid(f"{name} is not an ISO 8601 date-time with a time zone") from exc

    return KeyRecord(
        key_hash=key_hash,
        prefix=prefix,
        last4=last4,
        name=entry.get("name") or "imported",
        credits=entry.get("credits", 0),
        created_at=when("created_at") or now,
        total_spent=entry.get("total_spent", 0),
        total_calls=entry.get("total_calls", 0),
        last_used_at=when("last_used_at"),
        active=entry.get("active", True),
        suspended=entry.get("suspended", False),
        expires_at=when("expires_at"),
        allowed_tools=list(entry.get("allowed_tools") or []),
        denied_tools=list(entry.get("denied_tools") or []),
        quota=entry.get("quota"),
        tags=dict(entry.get("tags") or {}),
        namespace=entry.get("namespace") or "default",
        ip_allowlist=list(entry.get("ip_allowlist") or []),
        spending_limit=entry.get("spending_limit", 0),
        alias=entry.get("alias"),
        group_id=entry.get("group_id"),
        team_id=entry.get("team_id"),
        plan=entry.get("plan"),
        allowed_countries=list(entry.get("allowed_countries") or []),
        denied_countries=list(entry.get("denied_countries") or []),
        notes=list(entry.get("notes") or []),
        auto_topup=entry.get("auto_topup"),
        extra=dict(entry.get("extra") or {}),
    )


def records_from_entries(entries: list[dict[str, Any]], now: float) -> list[KeyRecord]:
    """The key records of validated import entries, or ImportInvalid naming the first bad entry."""
    records = []
    for i, entry in enumerate(entries):
        for name in ("notes", "extra"):  # free-form JSON, but it must be storable (e.g. no integer ≥ 2**64)
            try:
                orjson.dumps(entry[name])
            except orjson.JSONEncodeError as exc:
                raise ImportInvalid(f"Invalid request: keys.{i}.{name}: cannot be stored ({exc})") from exc
        try:
            records.append(record_from_entry(entry, now))
        except ImportInvalid as exc:
            raise ImportInvalid(f"Invalid request: keys.{i}: {exc}") from exc
    return records


def plan_import(store: Store, records: list[KeyRecord], mode: Mode) -> ImportPlan:
    """Decide every entry's fate without changing anything (duplicates inside the request are invalid)."""
    seen_hashes: set[str] = set()
    seen_aliases: set[str] = set()
    for r in records:
        if r.key_hash in seen_hashes:
            raise ImportInvalid(f"Invalid request: key {r.masked} appears more than once")
        seen_hashes.add(r.key_hash)
        if r.alias is not None:
            if r.alias in seen_aliases:
                raise ImportInvalid(f"Invalid request: alias {r.alias!r} appears more than once")
            seen_aliases.add(r.alias)
    alias_owner = {k.alias: k.key_hash for k in store.list_keys() if k.alias is not None}
    plan = ImportPlan(mode, records)
    for r in records:
        current = store.get_key(r.key_hash)
        exists = current is not None
        owner = alias_owner.get(r.alias) if r.alias is not None else None
        alias_is_a_key = r.alias is not None and (
            hash_key(r.alias) in seen_hashes or store.get_key(hash_key(r.alias)) is not None
        )
        if (owner not in (None, r.key_hash) or alias_is_a_key) and not (exists and mode == "skip"):
            plan.statuses.append("error")
            plan.errors.append(
                f"alias {r.alias!r} belongs to another key"
                if owner not in (None, r.key_hash)
                else f"alias {r.alias!r} collides with an API key"
            )
        elif not exists:
            plan.statuses.append("imported")
            plan.errors.append(None)
        elif mode == "overwrite" and current is not None and not current.active:
            # Revocation is permanent (as in a restore): an import never brings a revoked (or rotated-away)
            # key back to life, nor gives it credits. An entry that is revoked too (a round trip) is skipped.
            plan.statuses.append("error" if r.active else "skipped")
            plan.errors.append("key is revoked here; a revoked key cannot be overwritten" if r.active else None)
        elif mode == "overwrite":
            plan.statuses.append("overwritten")
            plan.errors.append(None)
        else:
            plan.statuses.append("skipped" if mode == "skip" else "error")
            plan.errors.append(None if mode == "skip" else "key already exists")
    _check_memberships(store, plan)
    return plan


def _check_memberships(store: Store, plan: ImportPlan) -> None:
    """An entry may only join a group, team or plan that exists here, and a team only up to its cap
    (counting the keys this import adds): the import must not do what /teams/assign would refuse."""
    members: dict[str, int] = {}
    for k in store.list_keys():
        if k.active and k.team_id is not None:
            members[k.team_id] = members.get(k.team_id, 0) + 1
    for i, (r, status) in enumerate(zip(plan.records, plan.statuses, strict=True)):
        if status not in ("imported", "overwritten"):
            continue
        error = None
        if r.group_id is not None and not _active_doc(store, GROUPS.doc, r.group_id):
            error = f"group {r.group_id!r} does not exist here"
        elif r.plan is not None and store.doc_peek("plan", r.plan) is None:
            error = f"plan {r.plan!r} does not exist here"
        elif r.team_id is not None:
            if not _active_doc(store, TEAMS.doc, r.team_id):
                error = f"team {r.team_id!r} does not exist here"
            else:
                current = store.get_key(r.key_hash)
                if current is None or current.team_id != r.team_id or not current.active:
                    members[r.team_id] = members.get(r.team_id, 0) + 1  # joins with this import
                if TEAMS.max_members is not None and members[r.team_id] > TEAMS.max_members:
                    error = f"team {r.team_id!r} would have more than {TEAMS.max_members} keys"
        if error is not None:
            plan.statuses[i], plan.errors[i] = "error", error


def _active_doc(store: Store, kind: str, doc_id: str) -> bool:
    doc = store.doc_peek(kind, doc_id)
    return doc is not None and bool(doc.get("active", True))


class KeyImportExport:
    """GET /keys/export and POST /keys/import as operations, each announced. Key records change only
    through `KeyService.save` (policy fields) and the store's ledgered money operations."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self.store = keys.store

    def export(self, namespace: str | None, active_only: bool, format: str, actor: str) -> list[dict[str, Any]]:
        """Every selected key as an export entry (oldest first), announced as `keys.exported`."""
        entries = [export_entry(k) for k in select(self.store.list_keys(), namespace, active_only)]
        self.keys.publish(
            "keys.exported", actor, count=len(entries), format=format, namespace=namespace, activeOnly=active_only
        )
        return entries

    def import_keys(
        self, entries: list[dict[str, Any]], ignored: list[list[str]], mode: Mode, actor: str
    ) -> dict[str, Any]:
        """Check every entry, then (unless `error` mode found a conflict: ImportConflict, nothing
        changed) apply them; announced as `keys.imported`. `ignored`: each entry's unknown fields."""
        records = records_from_entries(entries, time.time())
        plan = plan_import(self.store, records, mode)
        results: list[dict[str, Any]] = []
        for record, status, error, unknown in zip(records, plan.statuses, plan.errors, ignored, strict=True):
            result: dict[str, Any] = {"key": record.masked, "name": record.name, "status": status}
            if error:
                result["error"] = error
            if unknown:
                result["ignoredFields"] = unknown
            results.append(result)
        if mode == "error" and "error" in plan.statuses:
            conflicts = [res for res in results if res["status"] == "error"]
            raise ImportConflict(
                f"Import aborted: {len(conflicts)} conflicting key(s); nothing was imported", conflicts=conflicts
            )
        self._apply(plan)
        summary = {status: plan.statuses.count(status) for status in ("imported", "overwritten", "skipped")}
        errors = plan.statuses.count("error")
        self.keys.publish(
            "keys.imported",
            actor,
            mode=mode,
            total=len(records),
            errors=errors,
            **summary,
            keys=[res["key"] for res in results if res["status"] in ("imported", "overwritten")][:100],
        )
        return {"total": len(records), **summary, "errors": errors, "mode": mode, "results": results}

    def _apply(self, plan: ImportPlan) -> None:
        """Carry out a plan (in `error` mode only a plan without errors may be applied)."""
        assert plan.mode != "error" or "error" not in plan.statuses
        for record, status in zip(plan.records, plan.statuses, strict=True):
            if status == "imported":
                self.store.create_key(record, memo="import")
            elif status == "overwritten":
                existing = self.store.get_key(record.key_hash)
                assert existing is not None
                self.keys.save(existing, **{name: getattr(record, name) for name in _POLICY_FIELDS})
                delta = record.credits - existing.credits
                if delta:
                    self.store.adjust(existing.key_hash, delta, "import", "import overwrite")
