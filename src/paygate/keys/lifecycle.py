"""Key lifecycle moves that make or retire credentials: rotate, clone, and credit transfers.

Money moves only through the store's atomic operations (`rekey`, `transfer`,
`create_key`), each one transaction with its ledger entries.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from paygate.core.domain_errors import Invalid
from paygate.core.keys import generate_api_key, hash_key, mask_parts
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS
from paygate.keys.service import KeyConflict, KeyService, NewKey

CLONE_SUFFIX = "-clone"
MAX_NAME = 200


class InvalidMove(Invalid):
    """The request itself is wrong (e.g. a transfer to the same key)."""


class InsufficientCredits(Invalid):
    """The source key cannot pay for the move (answered as a bad request, as the reference does)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    source: KeyRecord
    target: KeyRecord
    amount: int
    source_balance: int
    target_balance: int


def is_expired(record: KeyRecord, now: float | None = None) -> bool:
    return record.expires_at is not None and (now or time.time()) >= record.expires_at


def rotate(keys: KeyService, record: KeyRecord) -> NewKey:
    """A new raw key that takes over everything the old one had; the old one is revoked at once."""
    if not record.active:
        raise KeyConflict("cannot rotate a revoked key")
    raw = generate_api_key()
    prefix, last4 = mask_parts(raw)
    # A deep copy: the new record must share no list or dict with the retired one.
    new = copy.deepcopy(record)
    new.key_hash, new.prefix, new.last4, new.created_at = hash_key(raw), prefix, last4, time.time()
    new.extra["rotatedFrom"] = record.masked
    old_hash = record.key_hash
    keys.store.rekey(old_hash, new)
    keys.notify_rekey(old_hash, new.key_hash)
    return NewKey(raw, new)


def clone(
    keys: KeyService,
    source: KeyRecord,
    *,
    name: str | None = None,
    credits: int | None = None,
    tags: dict[str, str] | None = None,
    namespace: str | None = None,
) -> NewKey:
    """A new key with the source's configuration and fresh counters. The alias, suspension,
    notes, usage and per-feature state (`extra`) are not copied. Credits default to the source's
    balance, granted anew (the source keeps its own) as the reference does."""
    if not source.active:
        raise KeyConflict("cannot clone a revoked key")
    return keys.create(
        name if name is not None else source.name[: MAX_NAME - len(CLONE_SUFFIX)] + CLONE_SUFFIX,
        source.credits if credits is None else credits,
        allowed_tools=list(source.allowed_tools),
        denied_tools=list(source.denied_tools),
        expires_at=source.expires_at,
        quota=copy.deepcopy(source.quota),
        tags=dict(source.tags if tags is None else tags),
        namespace=source.namespace if namespace is None else namespace,
        ip_allowlist=list(source.ip_allowlist),
        spending_limit=source.spending_limit,
        group_id=source.group_id,
        plan=source.plan,
        allowed_countries=list(source.allowed_countries),
        denied_countries=list(source.denied_countries),
        auto_topup=copy.deepcopy(source.auto_topup),
    )


def transfer(keys: KeyService, source: KeyRecord, target: KeyRecord, amount: int, memo: str | None) -> Transfer:
    """Move credits between two live keys in one transaction (a ledger entry on each side)."""
    if source.key_hash == target.key_hash:
        raise InvalidMove("cannot transfer credits to the same key")
    now = time.time()
    for side, record in (("source", source), ("destination", target)):
        if not record.active:
            raise KeyConflict(f"the {side} key is revoked")
        if is_expired(record, now):
            raise KeyConflict(f"the {side} key has expired")
    if source.credits < amount:
        raise InsufficientCredits(
            f"Insufficient credits: the source key has {source.credits}, the transfer needs {amount}"
        )
    if target.credits + amount > MAX_CREDITS:
        raise KeyConflict(f"the destination balance would exceed {MAX_CREDITS}")
    moved = keys.store.transfer(source.key_hash, target.key_hash, amount, memo or "transfer")
    if moved is None:  # a charge took the credits between the check and the move
        raise InsufficientCredits(
            f"Insufficient credits: the source key has {source.credits}, the transfer needs {amount}"
        )
    return Transfer(source, target, amount, moved[0], moved[1])


class KeyLifecycle:
    """The rotate, clone and transfer operations, each announced once it is done."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def rotate(self, record: KeyRecord, actor: str) -> NewKey:
        old_masked = record.masked
        new = rotate(self.keys, record)
        self.keys.publish(
            "key.rotated",
            actor,
            oldKeyMasked=old_masked,
            newKeyMasked=new.record.masked,
            name=new.record.name,
            credits=new.record.credits,
        )
        return new

    def clone(
        self,
        source: KeyRecord,
        actor: str,
        *,
        name: str | None = None,
        credits: int | None = None,
        tags: dict[str, str] | None = None,
        namespace: str | None = None,
    ) -> NewKey:
        new = clone(self.keys, source, name=name, credits=credits, tags=tags, namespace=namespace)
        self.keys.publish(
            "key.cloned",
            actor,
            keyMasked=new.record.masked,
            sourceKeyMasked=source.masked,
            name=new.record.name,
            credits=new.record.credits,
        )
        return new

    def transfer(self, source: KeyRecord, target: KeyRecord, amount: int, memo: str | None, actor: str) -> Transfer:
        moved = transfer(self.keys, source, target, amount, memo)
        self.keys.publish(
            "key.credits_transferred",
            actor,
            fromKeyMasked=source.masked,
            toKeyMasked=target.masked,
            credits=amount,
            fromBalance=moved.source_balance,
            toBalance=moved.target_balance,
            memo=memo,
        )
        return moved
