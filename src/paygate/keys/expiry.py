"""The key expiry scanner: warn (event `key.expiry_warning`) before keys expire.

Thresholds default to 7 days, 24 hours and 1 hour before expiry. Each key and
threshold pair is warned about once: the thresholds already covered are kept
in `record.extra["expiryWarnings"]` with the expiry they were for, so they
survive restarts and start afresh when the key's expiry is changed. A scan
that finds a key past several unwarned thresholds at once (a key created with
2 hours left, or a gateway that was down) sends one warning, for the tightest
threshold, and marks the wider ones as covered: nobody needs a "7 days left"
notice about a key with 2 hours left.

The scanner runs on the first background tick after startup, then every
`intervalSeconds` (default 3600, at least 60).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.config import Settings
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyService
from paygate.store.base import Store

WARNED = "expiryWarnings"
DEFAULT_THRESHOLDS = (604_800, 86_400, 3_600)
DEFAULT_INTERVAL = 3600
MIN_INTERVAL = 60

Publish = Callable[..., None]


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    enabled: bool = True
    interval_seconds: int = DEFAULT_INTERVAL
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS

    @classmethod
    def from_settings(cls, settings: Settings) -> ScannerConfig:
        """The `expiryScanner` config key (validated by Settings: interval ≥ 60 s, thresholds > 0)."""
        raw = settings.expiry_scanner
        return cls(raw.enabled, raw.interval_seconds, tuple(sorted(set(raw.thresholds), reverse=True)))


class ExpiryScanner:
    def __init__(self, store: Store, publish: Publish, config: ScannerConfig, keys: KeyService | None = None) -> None:
        self.store = store
        self.publish = publish
        self.config = config
        self.keys = keys or KeyService(store)  # the rollback-safe write path for the warnings state
        self.next_scan = 0.0  # the first tick scans
        self.last_scan_at: float | None = None
        self.scans = 0
        self.warnings_sent = 0

    def tick(self, now: float) -> None:
        if not self.config.enabled or now < self.next_scan:
            return
        self.next_scan = now + self.config.interval_seconds
        self.scan(now)

    def scan(self, now: float) -> int:
        """One pass over every key: warnings sent."""
        sent = 0
        for record in self.store.list_keys():
            if record.active and record.expires_at is not None and record.expires_at > now:
                sent += self._check(record, now)
        self.last_scan_at = now
        self.scans += 1
        self.warnings_sent += sent
        return sent

    def _check(self, record: KeyRecord, now: float) -> int:
        assert record.expires_at is not None
        remaining = record.expires_at - now
        crossed = [t for t in self.config.thresholds if remaining <= t]
        if not crossed:
            return 0
        state = record.extra.get(WARNED)
        if not isinstance(state, dict) or state.get("expiresAt") != record.expires_at:
            state = {"expiresAt": record.expires_at, "thresholds": []}
        covered = set(state["thresholds"])
        tightest = min(crossed)
        if tightest in covered:
            return 0
        warned = {"expiresAt": record.expires_at, "thresholds": sorted(covered | set(crossed), reverse=True)}
        # remembered before it is announced: a crash never repeats a warning (a failed write announces nothing)
        self.keys.save(record, extra={**record.extra, WARNED: warned})
        self.publish(
            "key.expiry_warning",
            "system",
            keyMasked=record.masked,
            name=record.name,
            alias=record.alias,
            namespace=record.namespace,
            expiresAt=iso_time(record.expires_at),
            remainingSeconds=int(remaining),
            threshold=tightest,
        )
        return 1

    def report(self, within: int) -> dict[str, Any]:
        """GET /keys/expiring: the active keys expiring within `within` seconds, and the scanner's state."""
        keys = expiring(self.store.list_keys(), within)
        return {"within": within, "count": len(keys), "scanner": self.status(), "keys": keys}

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.config.enabled,
            "intervalSeconds": self.config.interval_seconds,
            "thresholds": list(self.config.thresholds),
            "lastScanAt": iso_time(self.last_scan_at),
            "nextScanAt": iso_time(self.next_scan) if self.config.enabled and self.scans else None,
            "scans": self.scans,
            "warningsSent": self.warnings_sent,
        }


def expiring(records: list[KeyRecord], within: int, now: float | None = None) -> list[dict[str, Any]]:
    """Active keys expiring within `within` seconds from now, soonest first (already expired ones excluded)."""
    now = time.time() if now is None else now
    soon = [r for r in records if r.active and r.expires_at is not None and now < r.expires_at <= now + within]
    soon.sort(key=lambda r: (r.expires_at or 0.0, r.key_hash))
    return [
        {
            "keyMasked": r.masked,
            "name": r.name,
            "alias": r.alias,
            "namespace": r.namespace,
            "expiresAt": iso_time(r.expires_at),
            "remainingSeconds": int((r.expires_at or now) - now),
            "suspended": r.suspended,
            "credits": r.credits,
        }
        for r in soon
    ]
