"""`paygate-mcp import-state`: a paygate-mcp state (reference_state.py) planned, then written whole.

Each item (key, group, template, admin key) gets one status:

- `imported`: new here (written, or would be in a dry run);
- `unchanged`: already here with the same data (a second run of the same import lands here: the
  key's hash, the group's id, the template's name, the admin key's hash are the identity);
- `conflict`: already here with other data (e.g. credits spent since): left as it is, never
  overwritten, and the fields that differ are named;
- `error`: could not be imported (invalid, or it needs something that is not there, such as its
  group); the reason is given.

Every check passes before anything is written; then every new key and document goes in one
transaction (`Store.insert_all`), so a failure leaves the store as it was. Keys are checked as a
backup's keys are (`backup_keys.key_from_json`), documents by the same checks as a restore
(`DocCheck`s: the API's own request models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paygate.admin.backup import DocCheck
from paygate.admin.backup_keys import KEY_FIELDS, BackupInvalid, key_from_json
from paygate.admin.reference_state import DOC_KINDS, GROUP_DOC, Item, ReferenceState
from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord
from paygate.store.base import Store

MEMO = "import-state"
STATUSES = ("imported", "unchanged", "conflict", "error")
# fields a re-run compares with what is here (usage-derived ones change with use, but a changed balance
# is exactly the conflict to report)
_COMPARED = tuple(n for n in KEY_FIELDS if n not in ("last_used_at", "extra"))


@dataclass
class Planned:
    item: Item
    status: str
    reason: str | None = None
    record: KeyRecord | None = None


class StateImport:
    def __init__(self, store: Store, doc_checks: Mapping[str, DocCheck]) -> None:
        self.store = store
        self.doc_checks = doc_checks

    def plan(self, state: ReferenceState) -> list[Planned]:
        """Every item's fate; changes nothing."""
        planned = [self._plan_doc(i) if i.kind != "key" else self._plan_key(i) for i in state.items]
        self._check_duplicates(planned)
        self._check_keys(planned)
        return planned

    def apply(self, planned: list[Planned]) -> None:
        """Write every `imported` item in one transaction (all or nothing)."""
        records = [p.record for p in planned if p.status == "imported" and p.record is not None]
        docs = [
            (DOC_KINDS[p.item.kind], str(p.item.doc_id), p.item.record)
            for p in planned
            if p.status == "imported" and p.item.kind != "key"
        ]
        if records or docs:
            self.store.insert_all(records, docs, MEMO)

    # keys -----------------------------------------------------------------------------------------
    def _plan_key(self, item: Item) -> Planned:
        if item.error is not None or item.record is None:
            return Planned(item, "error", item.error)
        camel = {_camel(k): v for k, v in item.record.items()}
        try:
            record = key_from_json(camel, "key")
        except BackupInvalid as exc:
            return Planned(item, "error", str(exc).removeprefix("Invalid request: key").lstrip(".: "))
        current = self.store.get_key(record.key_hash)
        if current is None:
            return Planned(item, "imported", record=record)
        differ = [_camel(n) for n in _COMPARED if getattr(current, n) != getattr(record, n)]
        if not differ:
            return Planned(item, "unchanged", "already here with the same data", record)
        return Planned(item, "conflict", f"already here with other data ({', '.join(differ)}); not overwritten", record)

    def _check_keys(self, planned: list[Planned]) -> None:
        """What a key needs around it: its group, an alias nobody else holds, no alias equal to a key."""
        groups = {p.item.doc_id for p in planned if p.item.kind == "group" and p.status in ("imported", "unchanged")}
        file_hashes = {p.record.key_hash for p in planned if p.record is not None}
        owners = {k.alias: k.key_hash for k in self.store.list_keys() if k.alias is not None}
        for p in planned:
            r = p.record
            if p.status != "imported" or r is None:
                continue
            missing_group = r.group_id is not None and r.group_id not in groups
            if missing_group and self.store.doc_peek(GROUP_DOC, str(r.group_id)) is None:
                # imported without it, the key would lose the group's limits: refused instead
                p.status, p.reason = "error", f"its group {r.group_id} is not in the groups file nor here"
            elif r.alias is not None and owners.get(r.alias, r.key_hash) != r.key_hash:
                p.status, p.reason = "error", f"alias {r.alias!r} belongs to another key here"
            elif r.alias is not None and (
                hash_key(r.alias) in file_hashes or self.store.get_key(hash_key(r.alias)) is not None
            ):
                p.status, p.reason = "error", f"alias {r.alias!r} equals an API key"
            elif r.alias is not None:
                owners[r.alias] = r.key_hash

    # documents ------------------------------------------------------------------------------------
    def _plan_doc(self, item: Item) -> Planned:
        if item.error is not None or item.record is None or item.doc_id is None:
            return Planned(item, "error", item.error)
        kind = DOC_KINDS[item.kind]
        check = self.doc_checks.get(kind)
        problem = "no check for this kind" if check is None else check(item.doc_id, item.record)
        if problem:
            return Planned(item, "error", problem)
        current = self.store.doc_peek(kind, item.doc_id)
        if current is None:
            return Planned(item, "imported")
        if current == item.record:
            return Planned(item, "unchanged", "already here with the same data")
        differ = sorted(k for k in {*current, *item.record} if current.get(k) != item.record.get(k))
        return Planned(item, "conflict", f"already here with other data ({', '.join(differ)}); not overwritten")

    @staticmethod
    def _check_duplicates(planned: list[Planned]) -> None:
        """The same key, document or alias twice in the files: the later one is an error."""
        seen: set[tuple[str, str]] = set()
        for p in planned:
            ident = p.record.key_hash if p.record is not None else p.item.doc_id
            marks = [(p.item.kind, ident)] if ident is not None else []
            if p.record is not None and p.record.alias is not None:
                marks.append(("alias", p.record.alias))
            if any(m in seen for m in marks) and p.status != "error":
                p.status, p.reason = "error", "appears twice in the state files (key, id, name or alias)"
            seen.update(marks)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def report(state: ReferenceState, planned: list[Planned], source: str, target: str, dry_run: bool) -> dict[str, Any]:
    """What was (or, in a dry run, would be) imported and what was not, per item."""
    items = []
    for p in planned:
        entry: dict[str, Any] = {"kind": p.item.kind, "id": p.item.ref, "name": p.item.name, "status": p.status}
        if p.reason:
            entry["reason"] = p.reason
        if p.item.warnings and p.status == "imported":
            entry["warnings"] = p.item.warnings
        if p.item.ignored:
            entry["ignoredFields"] = p.item.ignored
        items.append(entry)
    summary = {s: sum(1 for p in planned if p.status == s) for s in STATUSES}
    return {
        "source": source,
        "stateFile": target,
        "dryRun": dry_run,
        "files": state.files,
        "ignoredSections": state.ignored_sections,
        "summary": summary,
        "items": items,
    }


def format_text(result: dict[str, Any]) -> str:
    s = result["summary"]
    verb = "would import" if result["dryRun"] else "imported"
    dry = " (dry run: nothing written)" if result["dryRun"] else ""
    lines = [f"{result['source']} → {result['stateFile']}{dry}"]
    lines += [f"  {name}: {state}" for name, state in result["files"].items()]
    for item in result["items"]:
        label = {"imported": verb}.get(item["status"], item["status"])
        text = f"  {label:<12} {item['kind']:<9} {item['id']}" + (f" ({item['name']})" if item["name"] else "")
        lines.append(text + (f": {item['reason']}" if item.get("reason") else ""))
        lines += [f"               warning: {w}" for w in item.get("warnings", [])]
        if item.get("ignoredFields"):
            lines.append(f"               ignored fields: {', '.join(item['ignoredFields'])}")
    if result["ignoredSections"]:
        lines.append(f"  ignored sections: {', '.join(result['ignoredSections'])}")
    lines.append(f"{verb} {s['imported']}, unchanged {s['unchanged']}, conflicts {s['conflict']}, errors {s['error']}")
    return "\n".join(lines)


def exit_code(result: dict[str, Any]) -> int:
    """0: everything in the files is here as they say; 3: some items were not imported (conflicts, errors)."""
    s = result["summary"]
    return 3 if s["conflict"] or s["error"] else 0
