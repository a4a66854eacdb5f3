"""Adaptive rates (GET/POST /admin/adaptive-rates; docs/money-rules.md#adaptive-rates).

Each key's calls are tracked over a sliding window (their outcome: failed or not, from `gate.allow`). Once
a key has made `minCalls` calls in the window, an error rate at or over `errorRateThreshold` tightens its
rate limit to `tightenFactor` of what it was, and a clean record (no error) boosts it to `boostFactor`,
each for `cooldownSeconds`; then the key is back to its own limit. An adjustment consumes the evidence
that made it (the key's window starts again), so a key is judged afresh after its cooldown. A boosted key
that starts failing is tightened at once. Keys are tracked in LRU order, at most `maxTrackedKeys`.

The seam is the key's limit where the rate decision is made (`GateFacts.rate_limit`): with adaptive rates
off the billing facts hold no source, and nothing is tracked. The clock is a field, so tests set it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from paygate.billing.facts import GateFacts
from paygate.core.domain_errors import Invalid
from paygate.core.values import iso_seconds
from paygate.events.hub import Event, EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate.rules")
META_KEY = "rules.adaptive_rates"
ACTOR = "adaptive-rates"
RELOAD_SECONDS = 5.0
MAX_HISTORY = 1000  # outcomes kept per key: the newest, whatever the window
DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "errorRateThreshold": 0.5,
    "minCalls": 10,
    "windowSeconds": 300,
    "tightenFactor": 0.5,
    "boostFactor": 1.5,
    "cooldownSeconds": 300,
    "maxTrackedKeys": 10_000,
}
# name -> (type, low, high): the bounds each field is checked against
BOUNDS: dict[str, tuple[type, float, float]] = {
    "errorRateThreshold": (float, 0.01, 1.0),
    "minCalls": (int, 1, 10_000),
    "windowSeconds": (int, 10, 86_400),
    "tightenFactor": (float, 0.01, 1.0),
    "boostFactor": (float, 1.0, 10.0),
    "cooldownSeconds": (int, 1, 86_400),
    "maxTrackedKeys": (int, 1, 1_000_000),
}


@dataclass(slots=True)
class _Track:
    masked: str
    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    factor: float = 1.0
    until: float = 0.0
    direction: str = ""
    error_rate: float = 0.0
    calls: int = 0


class AdaptiveRates:
    def __init__(self, store: Store, events: EventHub, facts: GateFacts) -> None:
        self.store = store
        self.events = events
        self.gate_facts = facts
        self.config: dict[str, Any] = dict(DEFAULTS)
        self.clock: Callable[[], float] = time.time
        self._keys: OrderedDict[str, _Track] = OrderedDict()
        self._subscribed = False
        self._seen: str | None = None
        self._last_reload = 0.0
        self.adjustments = {"tighten": 0, "boost": 0}
        self.evictions = 0

    # --- settings -----------------------------------------------------------------------------------
    def load(self) -> None:
        raw = self._seen = self.store.get_meta(META_KEY)
        doc = dict(DEFAULTS)
        if raw:
            try:
                doc.update(checked(orjson.loads(raw)))
            except (Invalid, orjson.JSONDecodeError, TypeError) as exc:
                log.error("adaptive rates: the stored settings are unreadable (%s); off", exc)
        self._apply(doc)

    def _apply(self, doc: dict[str, Any]) -> None:
        self.config = doc
        if not doc["enabled"]:
            self._keys.clear()
        elif not self._subscribed:  # subscribed on the first enable only: never enabled, never called
            self.events.subscribe(self.record, ("gate.allow",))
            self._subscribed = True
        self.gate_facts.adaptive = self if doc["enabled"] else None
        while len(self._keys) > doc["maxTrackedKeys"]:
            self._keys.popitem(last=False)
            self.evictions += 1

    def configure(self, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        if not changes:
            raise Invalid(f"Nothing to change: give any of enabled, {', '.join(BOUNDS)}")
        doc = {**self.config, **checked(changes)}
        raw = orjson.dumps(doc).decode()
        self.store.set_meta(META_KEY, raw)
        self._seen = raw
        self._apply(doc)
        self.events.publish("adaptive_rates.updated", actor, changed=sorted(changes), **doc)
        return self.view()

    def reload(self, now: float) -> None:
        """A ticker on a fleet: follow another instance's change."""
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        if self.store.get_meta(META_KEY) != self._seen:
            self.load()

    # --- the call path ------------------------------------------------------------------------------
    def limit(self, key_hash: str, base: int) -> int:
        """The key's calls/min: `base` scaled while an adjustment holds (never below 1)."""
        track = self._keys.get(key_hash)
        if track is None or track.until <= self.clock():
            return base
        return max(1, int(base * track.factor))

    def record(self, event: Event) -> None:
        """An inline subscriber of `gate.allow`: one settled call's outcome."""
        if not self.config["enabled"] or event.key_hash is None or event.data.get("shadow"):
            return
        now = self.clock()
        track = self._keys.get(event.key_hash)
        if track is None:
            track = self._keys[event.key_hash] = _Track(str(event.data.get("keyMasked") or ""))
            if len(self._keys) > self.config["maxTrackedKeys"]:
                self._keys.popitem(last=False)  # the least recently seen key
                self.evictions += 1
        else:
            self._keys.move_to_end(event.key_hash)
        outcomes = track.outcomes
        outcomes.append((now, bool(event.data.get("failed"))))
        edge = now - self.config["windowSeconds"]
        while outcomes and outcomes[0][0] <= edge:
            outcomes.popleft()
        self._judge(track, now)

    def _judge(self, track: _Track, now: float) -> None:
        cfg = self.config
        calls = len(track.outcomes)
        if calls < cfg["minCalls"]:
            return
        errors = sum(1 for _, failed in track.outcomes if failed)
        rate = errors / calls
        holding = track.until > now
        if rate >= cfg["errorRateThreshold"] and (not holding or track.direction == "boost"):
            self._adjust(track, "tighten", cfg["tightenFactor"], rate, calls, now)
        elif not errors and not holding and cfg["boostFactor"] > 1:
            self._adjust(track, "boost", cfg["boostFactor"], rate, calls, now)

    def _adjust(self, track: _Track, direction: str, factor: float, rate: float, calls: int, now: float) -> None:
        track.factor, track.direction, track.error_rate, track.calls = factor, direction, rate, calls
        track.until = now + self.config["cooldownSeconds"]
        track.outcomes.clear()  # the evidence is used: the key is judged afresh after its cooldown
        self.adjustments[direction] += 1
        self.events.publish(
            "adaptive_rates.adjusted",
            ACTOR,
            keyMasked=track.masked,
            direction=direction,
            factor=factor,
            errorRate=round(rate, 4),
            calls=calls,
            until=iso_seconds(track.until),
        )

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key keeps its record (a rotation is no way out of a tightened limit)."""
        track = self._keys.pop(old_hash, None)
        if track is not None:
            self._keys[new_hash] = track

    # --- the admin view -----------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        now = self.clock()
        adjusted = [
            {
                "key": t.masked,
                "direction": t.direction,
                "factor": t.factor,
                "until": iso_seconds(t.until),
                "secondsLeft": int(t.until - now + 0.999),
                "errorRate": round(t.error_rate, 4),
                "calls": t.calls,
            }
            for t in self._keys.values()
            if t.until > now
        ]
        return {
            **self.config,
            "trackedKeys": len(self._keys),
            "adjustedCount": len(adjusted),
            "adjusted": adjusted,
            "adjustments": dict(self.adjustments),
            "evictions": self.evictions,
        }


def checked(doc: Any) -> dict[str, Any]:
    """The fields of `doc`, each checked; unknown fields refused."""
    if not isinstance(doc, dict):
        raise Invalid("adaptive rates must be an object")
    unknown = sorted(set(doc) - {"enabled", *BOUNDS})
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)} (allowed: enabled, {', '.join(BOUNDS)})")
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "enabled":
            if type(value) is not bool:
                raise Invalid("enabled must be true or false")
        else:
            kind, low, high = BOUNDS[name]
            number = type(value) is int or (kind is float and type(value) is float)
            if not number or not low <= value <= high:
                what = "an integer" if kind is int else "a number"
                raise Invalid(f"{name} must be {what} from {low:g} to {high:g}")
            value = kind(value)
        out[name] = value
    return out
