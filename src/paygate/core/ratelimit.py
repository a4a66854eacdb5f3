"""Sliding-window rate limiting (pure; the clock is passed in).

A sliding-window log per subject: exact, and small because limits are per
minute. The window holds the timestamps of admitted calls only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(slots=True)  # not frozen: one per rate-limited call (a frozen __init__ costs ~4x). Read only.
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class SlidingWindow:
    """Admitted-call timestamps for many subjects (a key, or a key and a tool)."""

    __slots__ = ("_hits", "window")

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def _trim(self, subject: str, now: float) -> deque[float]:
        hits = self._hits.get(subject)
        if hits is None:
            hits = deque()
            self._hits[subject] = hits
        edge = now - self.window
        while hits and hits[0] <= edge:
            hits.popleft()
        return hits

    def peek(self, subject: str, limit: int, now: float) -> RateDecision:
        """The state of the window without recording a call."""
        if limit <= 0:
            return RateDecision(True, 0, 0, 0)
        hits = self._trim(subject, now)
        used = len(hits)
        reset = int(hits[0] + self.window - now) + 1 if hits else int(self.window)
        return RateDecision(used < limit, limit, max(limit - used, 0), reset)

    def hit(self, subject: str, limit: int, now: float) -> RateDecision:
        """Record a call if the window admits it."""
        decision = self.peek(subject, limit, now)
        if decision.allowed and limit > 0:
            self._hits[subject].append(now)
            return RateDecision(True, limit, decision.remaining - 1, decision.reset_seconds)
        return decision

    def undo(self, subject: str) -> None:
        """Forget the newest call (it was admitted here but denied later in the gate)."""
        hits = self._hits.get(subject)
        if hits:
            hits.pop()

    def move(self, old_key: str, new_key: str) -> None:
        """A rotated key keeps its windows: `old_key` and every `old_key\x00tool` subject are renamed."""
        for subject in [s for s in self._hits if s == old_key or s.startswith(old_key + "\x00")]:
            self._hits[new_key + subject[len(old_key) :]] = self._hits.pop(subject)

    def forget_idle(self, now: float) -> None:
        """Drop empty windows so the map does not grow with every key ever seen."""
        for subject in [s for s, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[subject]
