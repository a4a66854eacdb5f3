"""A three-state circuit breaker: closed → open after `threshold` consecutive failures → half-open once
`cooldown` seconds have passed (one probe call at a time) → closed on the probe's success, open again on
its failure. One instance guards one backend (or one tool, or a canary); the stage that applies it on
the call path and its admin endpoint are in their own modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

State = Literal["closed", "open", "half_open"]


class Breaker:
    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold  # consecutive failures that open it; 0 = never opens
        self.cooldown = cooldown  # seconds open before a probe is let through
        self._clock = clock
        self._state: State = "closed"
        self.failures = 0  # consecutive, since the last success
        self.rejections = 0  # calls refused while open, in all
        self.opened = 0  # times it opened, in all
        self._opened_at = 0.0
        self._probing = False  # half-open: the one probe is out

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._state = "half_open"
            self._probing = False
        return self._state

    def allow(self) -> bool:
        """May a call go through now? Half-open lets one probe out at a time; a refusal is counted."""
        if self._state == "closed":  # the common case, without a clock read
            return True
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        self.rejections += 1
        return False

    def record(self, ok: bool) -> tuple[State, State] | None:
        """The outcome of a call `allow` let through; the transition it made (from, to), if any. While
        open, an outcome arriving late (a call let through before it opened) is counted but changes
        nothing: only a probe may close it, and a late failure must not restart the cooldown."""
        if ok and self._state == "closed":  # the common case, without a clock read
            self.failures = 0
            return None
        state = self.state
        if state == "open":
            if not ok:
                self.failures += 1
            return None
        if ok:
            self.failures = 0
            self._state = "closed"
            self._probing = False
            return (state, "closed") if state != "closed" else None
        self.failures += 1
        if state == "half_open" or (self.threshold and self.failures >= self.threshold):
            self._open()
            return state, "open"
        return None

    @property
    def probe_out(self) -> bool:
        """Half-open and its one probe let through (right after `allow`: the caller's call is it)."""
        return self._probing

    def release_probe(self) -> None:
        """The half-open probe ended without an outcome (refused by the gate, cancelled): let another out."""
        if self._state == "half_open":
            self._probing = False

    def reset(self) -> None:
        """Closed, counts cleared (an operator's `POST /admin/circuit`)."""
        self._state = "closed"
        self.failures = 0
        self._probing = False

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        if self.state != "open":
            return 0.0
        return max(self.cooldown - (self._clock() - self._opened_at), 0.0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "threshold": self.threshold,
            "cooldownSeconds": self.cooldown,
            "rejections": self.rejections,
            "timesOpened": self.opened,
            "retryAfterSeconds": round(self.retry_after(), 3),
        }

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probing = False
        self.opened += 1
