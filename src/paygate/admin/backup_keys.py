"""A key record in a backup: its camelCase JSON form, and the checks a restored record must pass
(admin/backup.py); also the errors a refused restore raises."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.alias_generators import to_camel

from paygate.core.domain_errors import Conflict, DomainError, Invalid
from paygate.core.keys import KEY_PREFIX
from paygate.core.policy import QUOTA_FIELDS
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS

_HASH = re.compile(r"^[0-9a-f]{64}$")
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,100}")  # the rule POST /keys/alias enforces (api/fields.py NAME_PATTERN)


class BackupError(DomainError):
    pass


class BackupInvalid(BackupError, Invalid):
    pass


class BackupConflict(BackupError, Conflict):
    pass


def _backup_key_model() -> type[BaseModel]:
    """A strict model of a key record in camelCase, built from KeyRecord itself so a field
    added to the record is backed up and validated without touching this file."""
    hints = typing.get_type_hints(KeyRecord)
    spec: dict[str, Any] = {}
    for f in dataclasses.fields(KeyRecord):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        spec[f.name] = (hints[f.name], default)
    config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=False)
    model: type[BaseModel] = create_model("BackupKey", __config__=config, **spec)
    return model


BackupKey = _backup_key_model()
KEY_FIELDS = tuple(f.name for f in dataclasses.fields(KeyRecord))


def key_to_json(record: KeyRecord) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps({to_camel(n): getattr(record, n) for n in KEY_FIELDS}))
    return out


def key_from_json(raw: Any, where: str) -> KeyRecord:
    try:
        parsed = BackupKey.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BackupInvalid(f"Invalid request: {where}.{loc}: {first['msg']}") from exc
    record = KeyRecord(**parsed.model_dump())
    if not _HASH.match(record.key_hash):
        raise BackupInvalid(f"Invalid request: {where}.keyHash must be 64 lowercase hex characters")
    if not 0 <= record.credits <= MAX_CREDITS or record.total_spent < 0 or record.total_calls < 0:
        raise BackupInvalid(f"Invalid request: {where}: credits and totals must be between 0 and {MAX_CREDITS}")
    problem = policy_problem(record)
    if problem:
        raise BackupInvalid(f"Invalid request: {where}: {problem}")
    if record.alias is not None and (not _ALIAS.fullmatch(record.alias) or record.alias.startswith(KEY_PREFIX)):
        raise BackupInvalid(
            f"Invalid request: {where}.alias must be 1-100 of A-Z a-z 0-9 _ - and not start with {KEY_PREFIX!r}"
        )
    return record


def _count(value: Any, least: int) -> bool:
    return type(value) is int and least <= value <= MAX_CREDITS


def policy_problem(record: KeyRecord) -> str | None:
    """Why a key's policy fields are not in the shape the gate and the charge path read (they are only
    type-checked above), or None: an auto-topup read after every charge must never fail nor move a
    negative amount, a quota holds only the four limits."""
    topup = record.auto_topup
    if topup is not None and (
        set(topup) != {"threshold", "amount", "maxDaily"}
        or not _count(topup["threshold"], 0)
        or not _count(topup["amount"], 1)
        or not _count(topup["maxDaily"], 0)
    ):
        return "autoTopup must be {threshold >= 0, amount > 0, maxDaily >= 0} (integers)"
    quota = record.quota
    if quota is not None and (set(quota) - set(QUOTA_FIELDS) or not all(_count(v, 0) for v in quota.values())):
        return f"quota may only hold {', '.join(QUOTA_FIELDS)} as integers >= 0"
    if not _count(record.spending_limit, 0):
        return "spendingLimit must be an integer >= 0"
    return None
