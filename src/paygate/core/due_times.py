"""When each of many documents next needs a periodic ticker (pure)."""

from __future__ import annotations

import heapq
import math


class DueTimes:
    """When each document next needs the ticker: a min-heap with lazy deletion, so asking "is anything due?"
    is one comparison and taking the due ones costs O(due · log n), however many documents wait."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, doc_id: str, at: float | None) -> None:
        if at is None:
            self.discard(doc_id)
            return
        self._at[doc_id] = at
        heapq.heappush(self._heap, (at, doc_id))
        if len(self._heap) > 2 * len(self._at) + 64:  # drop superseded entries now and then
            self._heap = [(t, i) for i, t in self._at.items()]
            heapq.heapify(self._heap)

    def discard(self, doc_id: str) -> None:
        self._at.pop(doc_id, None)  # its heap entry goes stale and is skipped when it surfaces

    def clear(self) -> None:
        self._at.clear()
        self._heap.clear()

    def next_at(self) -> float:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> list[str]:
        """The ids due at `now`, soonest first; they leave the index (the caller re-adds what stays)."""
        due: list[str] = []
        while self.next_at() <= now:
            _, doc_id = heapq.heappop(self._heap)
            del self._at[doc_id]
            due.append(doc_id)
        return due
