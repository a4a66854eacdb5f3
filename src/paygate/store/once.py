"""A credit move applied at most once per outside id (a Stripe event id): `Money.move_once`.

The id is recorded in the same transaction as the move, so a replayed or retried notification finds it
and moves nothing; its answer then repeats what the first one did (`requested`, `moved`), which lets
the caller finish any bookkeeping a crash interrupted after the move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["applied", "duplicate", "no_key"]


@dataclass(frozen=True, slots=True)
class OnceMove:
    outcome: Outcome  # applied now; applied before (nothing moved now); or no such key (nothing recorded)
    requested: int  # the delta asked for (by the first request, for a duplicate)
    moved: int  # what moved: all of a credit; of a take-back, at most the balance there was
    balance: int  # the key's balance now

    @property
    def short(self) -> int:
        """Credits a take-back could not take (the balance was smaller): 0 for a credit."""
        return self.moved - self.requested if self.requested < 0 else 0
