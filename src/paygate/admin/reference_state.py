"""Reading a paygate-mcp (Node reference) state file and its side files, and mapping what they hold
onto our records: key records (raw keys hashed on the way) and documents (groups, key templates,
admin keys). `state_import.py` plans and writes what this module maps.

The reference (10.24.0) writes, next to `--state-file state.json`:
`state.json` (a JSON array of `[rawKey, record]` pairs), `state-admin.json` (admin keys with roles),
`state-groups.json` (`{groups: [[id, group]…], assignments: [[rawKey, groupId]…]}`) and
`state-templates.json` (`[[name, template]…]`). It keeps teams, plans, schedules and reservations in
memory only, so a state file never holds them. A field this module does not know is reported per
item (`ignoredFields`), never fatal: a newer reference may add some.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paygate.admin.auth import ADMIN_KEY_DOC
from paygate.core.keys import hash_key, mask_key, mask_parts
from paygate.keys.import_export import parse_iso

SIDE_FILES = ("admin", "groups", "templates")
GROUP_DOC = "group"
TEMPLATE_DOC = "key_template"

# reference key field -> our KeyRecord field, carried as they are
KEY_FIELDS = {
    "name": "name",
    "credits": "credits",
    "totalSpent": "total_spent",
    "totalCalls": "total_calls",
    "active": "active",
    "suspended": "suspended",
    "spendingLimit": "spending_limit",
    "allowedTools": "allowed_tools",
    "deniedTools": "denied_tools",
    "quota": "quota",
    "tags": "tags",
    "ipAllowlist": "ip_allowlist",
    "namespace": "namespace",
    "alias": "alias",
    "autoTopup": "auto_topup",
    "notes": "notes",
}
KEY_TIMES = {"createdAt": "created_at", "lastUsedAt": "last_used_at", "expiresAt": "expires_at"}
# the reference's running counters: quota windows are rebuilt from our own usage log, so today's and
# this month's counts start again at the import (reported when not zero)
QUOTA_COUNTERS = ("quotaDailyCalls", "quotaMonthlyCalls", "quotaDailyCredits", "quotaMonthlyCredits")
KEY_KNOWN = {
    "key",
    "group",
    "autoTopupTodayCount",
    "autoTopupLastResetDay",
    "quotaLastResetDay",
    "quotaLastResetMonth",
    *KEY_FIELDS,
    *KEY_TIMES,
    *QUOTA_COUNTERS,
}
GROUP_FIELDS = (
    "id",
    "name",
    "description",
    "allowedTools",
    "deniedTools",
    "rateLimitPerMin",
    "ipAllowlist",
    "quota",
    "toolPricing",
    "maxSpendingLimit",
    "tags",
)
TEMPLATE_FIELDS = (
    "name",
    "description",
    "credits",
    "allowedTools",
    "deniedTools",
    "quota",
    "ipAllowlist",
    "spendingLimit",
    "tags",
    "namespace",
    "expiryTtlSeconds",
    "autoTopup",
)
MIN_ADMIN_KEY = 16  # as the adminKey setting (config.py)
ADMIN_FIELDS = ("key", "name", "role", "createdAt", "createdBy", "active", "lastUsedAt")


class StateFileInvalid(Exception):
    """The state file (or a side file) cannot be read or is not a paygate-mcp state: nothing is imported."""


@dataclass
class Item:
    """One thing in the reference state and what becomes of it."""

    kind: str  # key | group | template | admin_key
    ref: str  # what the report names it by: a masked key, a group id, a template name
    name: str | None = None
    record: Any = None  # the mapped KeyRecord fields (a dict) or document, None when it cannot be mapped
    doc_id: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    raw_key: str | None = field(default=None, repr=False)  # never reported


@dataclass
class ReferenceState:
    files: dict[str, str]  # file name -> read | absent
    items: list[Item]
    ignored_sections: list[str]


def side_path(main: Path, suffix: str) -> Path:
    return main.with_name(f"{main.stem}-{suffix}.json")


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileInvalid(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise StateFileInvalid(f"{path} is not JSON ({exc}); nothing was imported") from exc


def _pairs(value: Any, where: str) -> list[tuple[Any, Any]]:
    """A reference Map, serialised as `[[id, value]…]`."""
    if isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        return [(p[0], p[1]) for p in value]
    raise StateFileInvalid(f"{where}: expected [[id, value], …] pairs as paygate-mcp writes them")


def read_state(main: Path) -> ReferenceState:
    """Read the state file and its side files; raises StateFileInvalid when one is not a paygate-mcp state."""
    if not main.is_file():
        raise StateFileInvalid(f"{main}: no such file")
    data = _load(main)
    ignored_sections: list[str] = []
    if isinstance(data, dict) and "keys" in data:  # a possible future shape: {keys: …, …}
        ignored_sections = sorted(k for k in data if k != "keys")
        data = data["keys"]
    files = {main.name: "read"}
    items = [_key_item(raw, entry) for raw, entry in _pairs(data, main.name)]
    assignments: dict[str, str] = {}
    for suffix in SIDE_FILES:
        path = side_path(main, suffix)
        if not path.exists():
            files[path.name] = "absent"
            continue
        files[path.name] = "read"
        side = _load(path)
        if suffix == "admin":
            if not isinstance(side, list):
                raise StateFileInvalid(f"{path.name}: expected a list of admin keys")
            items += [_admin_item(entry) for entry in side]
        elif suffix == "groups":
            if not isinstance(side, dict):
                raise StateFileInvalid(f"{path.name}: expected {{groups, assignments}}")
            ignored_sections += sorted(f"{path.name}:{k}" for k in side if k not in ("groups", "assignments"))
            items += [_group_item(gid, g) for gid, g in _pairs(side.get("groups", []), f"{path.name} groups")]
            for raw, gid in _pairs(side.get("assignments", []), f"{path.name} assignments"):
                if isinstance(raw, str) and isinstance(gid, str):
                    assignments[raw] = gid
        else:
            items += [_template_item(name, t) for name, t in _pairs(side, path.name)]
    for item in items:  # the groups file's assignments fill in a key record that lacks its group
        if item.kind == "key" and item.record is not None and item.raw_key in assignments:
            item.record.setdefault("group_id", assignments[item.raw_key])
    return ReferenceState(files, items, ignored_sections)


def _when(entry: dict[str, Any], name: str) -> float | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: not an ISO 8601 date-time")
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise ValueError(f"{name}: not an ISO 8601 date-time with a time zone") from exc


def _key_item(raw: Any, entry: Any) -> Item:
    if not isinstance(raw, str) or not raw or not isinstance(entry, dict):
        return Item("key", "(unreadable entry)", error="not a [key, record] pair with a key string")
    item = Item("key", mask_key(raw), name=entry.get("name") if isinstance(entry.get("name"), str) else None)
    if entry.get("key", raw) != raw:
        item.error = "the record's key differs from the key it is filed under"
        return item
    item.raw_key = raw
    item.ignored = sorted(set(entry) - KEY_KNOWN)
    prefix, last4 = mask_parts(raw)
    record: dict[str, Any] = {"key_hash": hash_key(raw), "prefix": prefix, "last4": last4}
    record.update({ours: entry[theirs] for theirs, ours in KEY_FIELDS.items() if entry.get(theirs) is not None})
    try:
        record.update({ours: _when(entry, theirs) for theirs, ours in KEY_TIMES.items()})
    except ValueError as exc:
        item.error = str(exc)
        return item
    if record["created_at"] is None:
        item.error = "createdAt is missing"
        return item
    if isinstance(entry.get("group"), str):
        record["group_id"] = entry["group"]
    day, count = entry.get("autoTopupLastResetDay"), entry.get("autoTopupTodayCount")
    if isinstance(day, str) and isinstance(count, int) and count > 0:
        record["extra"] = {"autoTopupDaily": {"date": day, "count": count}}
    counted = {c: entry.get(c) for c in QUOTA_COUNTERS if entry.get(c)}
    if counted:
        shown = ", ".join(f"{k} {v}" for k, v in counted.items())
        item.warnings.append(f"quota usage so far ({shown}) is not carried over: the windows start again")
    item.record = record
    return item


def _group_item(gid: Any, group: Any) -> Item:
    if not isinstance(gid, str) or not isinstance(group, dict):
        return Item("group", str(gid), error="not an [id, group] pair")
    item = Item("group", gid, name=group.get("name") if isinstance(group.get("name"), str) else None, doc_id=gid)
    if group.get("active") is False:
        item.error = "deleted in paygate-mcp (inactive): not imported"
        return item
    item.ignored = sorted(set(group) - {*GROUP_FIELDS, "active", "createdAt", "updatedAt", "defaultCredits"})
    if group.get("defaultCredits"):
        item.warnings.append("defaultCredits is not a group setting here: not imported")
    created = group.get("createdAt")
    doc = {"id": gid, **{k: group[k] for k in GROUP_FIELDS if group.get(k) is not None}}
    doc.update(active=True, createdAt=created, updatedAt=group.get("updatedAt") or created)
    item.record = doc
    return item


def _template_item(name: Any, template: Any) -> Item:
    if not isinstance(name, str) or not isinstance(template, dict):
        return Item("template", str(name), error="not a [name, template] pair")
    item = Item("template", name, name=name, doc_id=name)
    item.ignored = sorted(set(template) - {*TEMPLATE_FIELDS, "createdAt", "updatedAt"})
    doc = {k: template[k] for k in TEMPLATE_FIELDS if template.get(k) is not None}
    try:
        created = _when(template, "createdAt")
        updated = _when(template, "updatedAt")
    except ValueError as exc:
        item.error = str(exc)
        return item
    doc.update(name=name, createdAt=created, updatedAt=updated or created)
    item.record = doc
    return item


def _admin_item(entry: Any) -> Item:
    raw = entry.get("key") if isinstance(entry, dict) else None
    if not isinstance(raw, str) or not raw:
        return Item("admin_key", "(unreadable entry)", error="an admin key entry without its key")
    assert isinstance(entry, dict)
    item = Item("admin_key", mask_key(raw), name=entry.get("name"), doc_id=hash_key(raw))
    item.ignored = sorted(set(entry) - set(ADMIN_FIELDS))
    if len(raw) < MIN_ADMIN_KEY:
        item.error = f"shorter than {MIN_ADMIN_KEY} characters (adminKey's minimum here): too weak; create a new one"
        return item
    try:
        created, used = _when(entry, "createdAt"), _when(entry, "lastUsedAt")
    except ValueError as exc:
        item.error = str(exc)
        return item
    active = entry.get("active", True)
    prefix, last4 = mask_parts(raw)
    item.record = {
        "name": entry.get("name"),
        "role": entry.get("role"),
        "keyMasked": f"{prefix}…{last4}",
        "active": active,
        "createdTs": created,
        "createdBy": f"paygate-mcp ({entry.get('createdBy') or 'unknown'})",
        "lastUsedTs": used,
        "revokedTs": None,
    }
    return item


DOC_KINDS = {"group": GROUP_DOC, "template": TEMPLATE_DOC, "admin_key": ADMIN_KEY_DOC}
