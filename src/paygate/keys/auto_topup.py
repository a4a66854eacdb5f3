"""Usage-based auto-topup: refill a key when a charge leaves it below its threshold.

Config lives in `record.auto_topup` ({threshold, amount, maxDaily}); the UTC-day
counter in `record.extra["autoTopupDaily"]` ({date, count}); both persist with
the key. The check runs on the hot path right after a charge (`on_charge`), so
it only compares numbers; the topup itself (a store transaction and an event)
is scheduled to run just after, on the same event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS
from paygate.keys.service import KeyConflict, KeyService
from paygate.store.base import Store

DAILY = "autoTopupDaily"
MEMO = "auto-topup"

Publish = Callable[..., None]


def utc_day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def today_count(record: KeyRecord, now: float) -> int:
    daily = record.extra.get(DAILY)
    if isinstance(daily, dict) and daily.get("date") == utc_day(now):
        return int(daily.get("count", 0))
    return 0


class AutoTopup:
    def __init__(self, store: Store, publish: Publish, keys: KeyService | None = None) -> None:
        self.store = store
        self.publish = publish
        self.keys = keys or KeyService(store)  # the rollback-safe write path for the key records
        self._pending: set[str] = set()  # keys with a topup already scheduled (a burst schedules one)

    def configure(
        self, record: KeyRecord, threshold: int, amount: int, max_daily: int, actor: str = "system"
    ) -> dict[str, int]:
        """Enable or change the key's auto-topup (announced as `key.auto_topup_configured`)."""
        config = {"threshold": threshold, "amount": amount, "maxDaily": max_daily}
        self._configure(record, config, actor, enabled=True, **config)
        return config

    def disable(self, record: KeyRecord, actor: str = "system") -> None:
        self._configure(record, None, actor, enabled=False)

    def _configure(self, record: KeyRecord, config: dict[str, int] | None, actor: str, **data: Any) -> None:
        if not record.active:
            raise KeyConflict("cannot configure auto-topup on a revoked key")
        self.keys.update_policy(record, actor, "key.auto_topup_configured", {"auto_topup": config}, **data)

    def on_charge(self, record: KeyRecord) -> None:
        """`BillingService.after_charge` hook: cheap checks only; never raises."""
        config = record.auto_topup
        if not config or record.key_hash in self._pending or record.credits >= config.get("threshold", 0):
            return
        self._pending.add(record.key_hash)
        try:
            asyncio.get_running_loop().call_soon(self._run, record.key_hash)
        except RuntimeError:  # no event loop (direct use of the billing service): do it now
            self._run(record.key_hash)

    def _run(self, key_hash: str) -> None:
        self._pending.discard(key_hash)
        self.maybe_topup(key_hash, time.time())

    def maybe_topup(self, key_hash: str, now: float) -> int:
        """Top the key up if it is still below its threshold and under today's cap: credits added."""
        record = self.store.get_key(key_hash)
        if record is None or not record.active or not record.auto_topup:
            return 0
        config: dict[str, Any] = record.auto_topup
        threshold, amount, max_daily = int(config["threshold"]), int(config["amount"]), int(config["maxDaily"])
        count = today_count(record, now)
        if record.credits >= threshold or (max_daily and count >= max_daily):
            return 0
        if record.credits + amount > MAX_CREDITS:
            return 0
        # Counted before the credits move: a crash in between can cost a topup, never exceed the cap.
        uncounted = record.extra
        self.keys.save(record, extra={**uncounted, DAILY: {"date": utc_day(now), "count": count + 1}})
        result = self.store.topup_below(key_hash, amount, threshold, MEMO)  # once, whoever else races
        if not result.ok:
            self.keys.save(record, extra=uncounted)
            return 0
        self.publish(
            "key.auto_topped_up",
            "system",
            keyMasked=record.masked,
            amount=amount,
            newBalance=result.balance,
            threshold=threshold,
            todayCount=count + 1,
            maxDaily=max_daily,
        )
        return amount


def config_view(record: KeyRecord, now: float | None = None) -> dict[str, Any] | None:
    if not record.auto_topup:
        return None
    return {**record.auto_topup, "todayCount": today_count(record, time.time() if now is None else now)}
