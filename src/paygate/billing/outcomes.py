"""What `BillingService` answers: an admitted call (its charge on its way to disk), a refused one, a
settlement, and a dry run's verdict. Plain records, shared by the dispatcher, batches, tasks and reports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from paygate.core import gate
from paygate.core.pricing import ToolPrice
from paygate.core.ratelimit import RateDecision
from paygate.core.records import KeyRecord


@dataclass(slots=True)
class Admitted:
    key: KeyRecord | None
    tool: str
    price: ToolPrice
    charged: int
    rate: RateDecision | None
    shadow_reason: str | None = None
    committed: asyncio.Future[None] | None = None  # await before acting on the charge
    refund_on_failure: bool = False  # the policy when admitted: a hot reload meanwhile does not change it


@dataclass(slots=True)
class Refused:
    denial: gate.Denial
    key: KeyRecord | None
    tool: str
    price: ToolPrice
    required: int
    rate: RateDecision | None


SHADOW = "shadow"  # the deny reason of shadow mode's usage rows (`shadow:<reason>`: would have been refused)


@dataclass(frozen=True, slots=True)
class Settlement:
    refunded: int = 0
    surcharge: int = 0


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What a dry run concludes: the same gate a real call meets, nothing charged or counted."""

    allowed: bool
    reason: str | None
    detail: str
    credits_required: int
    credits_available: int
