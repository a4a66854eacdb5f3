"""Errors the store raises, whatever backs it.

Callers catch these, never a driver's own exceptions (`sqlite3.IntegrityError`, a Redis
`ResponseError`…), so swapping the store does not change what a service has to handle.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class Conflict(StoreError):
    """A write would break a uniqueness rule (a key hash or an alias already taken); nothing was written."""


class ChargeNotRecorded(StoreError):
    """A group-committed charge could not be written; it was undone (nothing was spent)."""


class StoreUnavailable(StoreError):
    """The shared store (Redis) cannot be reached; nothing was written. Paid calls are refused meanwhile."""


class ChargeRefused(StoreError):
    """The shared store refused a charge this process had admitted on its copy of the balance and counters
    (another instance spent the credits, or used the quota, first); nothing was spent. `reason` is the
    gate's deny reason (`insufficient_credits`, `quota_exceeded`, …); `balance` is the store's."""

    def __init__(self, balance: int, reason: str = "insufficient_credits") -> None:
        super().__init__(f"{reason}: the shared balance is {balance}")
        self.balance = balance
        self.reason = reason


class StateFileError(RuntimeError):
    """The state file (or the charge journal beside it) exists but cannot be used."""
