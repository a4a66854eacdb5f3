"""The rollups' feed: a deferred subscriber of the event bus that turns each `gate.allow` / `gate.deny` into
a `CallFact` and hands a batch of them to the store, after the calls were answered (never on the tool-call
path). The namespace is the key's at the time of the call; a call without a valid key has none ("default").

If the store refuses a batch (Redis unreachable), the facts are kept and sent with the next batch, up to
`MAX_HELD` (then the oldest are dropped and counted in the log), so a short outage loses nothing. A call
recorded after its key was rotated is counted for the key's successor, as the rotation moved its history.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence

from paygate.core.records import KeyRecord
from paygate.events.hub import Event
from paygate.store.base import Store
from paygate.store.rollups import CallFact, RollupRow, base_group

log = logging.getLogger("paygate.analytics")
MAX_HELD = 100_000  # call groups (hour, key, tool, namespace, outcome) held while the store refuses them
FLUSH_SECONDS = 1.0
MAX_BATCH = 4096
CHUNK = 256
MAX_ROTATIONS = 100


def fact_of(event: Event, key: KeyRecord | None, key_hash: str | None) -> CallFact | None:
    data = event.data
    tool = data.get("tool")
    if not isinstance(tool, str):
        return None
    namespace = key.namespace if key is not None else "default"
    duration = float(data.get("durationMs") or 0.0)
    if event.type == "gate.deny":
        return CallFact(
            event.timestamp, key_hash, tool, namespace, str(data.get("reason") or "unknown"), duration_ms=duration
        )
    shadow = data.get("shadow")
    return CallFact(
        event.timestamp,
        key_hash,
        tool,
        namespace,
        str(shadow) if shadow else "",
        credits=int(data.get("credits") or 0),
        refunded=int(data.get("refunded") or 0),
        failed=bool(data.get("failed")),
        duration_ms=duration,
    )


def current_hash(get_key: Callable[[str], KeyRecord | None], key_hash: str) -> str:
    """The hash a key's history lives under now: a rotated key's successor (rotations of rotations too)."""
    for _ in range(MAX_ROTATIONS):
        record = get_key(key_hash)
        successor = record.extra.get("rotatedTo") if record is not None else None
        if not isinstance(successor, str):
            break
        key_hash = successor
    return key_hash


class RollupFeed:
    """Calls are summed as they come (per hour, key, tool, namespace and outcome: a busy gateway's calls
    collapse into few rows, and no object per call is kept, so the garbage collector never walks them) and
    the sums are written after up to `interval` seconds, or once `max_batch` calls are held, `chunk` rows
    per pass of the event loop, so no write holds the loop for long (bench/README.md). Readers call `flush`
    first, so a report still sees every call answered before it; a crash loses at most the held second of
    analytics (never money: charges are durable before a call is forwarded)."""

    def __init__(
        self, store: Store, interval: float = FLUSH_SECONDS, max_batch: int = MAX_BATCH, chunk: int = CHUNK
    ) -> None:
        self.store = store
        self.interval = interval
        self.max_batch = max_batch
        self.chunk = chunk
        self._held: dict[tuple[str | int | None, ...], RollupRow] = {}
        self._calls = 0  # calls in `_held`
        self._timer: asyncio.TimerHandle | None = None
        self._pacing: asyncio.Handle | None = None
        self._retrying = False  # the store refused the last write: wait `interval` before the next try

    def on_batch(self, events: Sequence[Event]) -> None:
        get_key = self.store.get_key
        held = self._held
        for event in events:
            if event.type != "gate.allow" and event.type != "gate.deny":
                continue
            key_hash = event.key_hash
            record = get_key(key_hash) if key_hash else None
            if record is not None and "rotatedTo" in record.extra:  # rotated since the call: follow the key
                key_hash = current_hash(get_key, record.key_hash)
            fact = fact_of(event, record, key_hash)
            if fact is None:
                continue
            group = base_group(fact)
            row = held.get(group)
            if row is None:
                row = held[group] = RollupRow(group)
            row.add(fact)
            self._calls += 1
        if not held or self._pacing is not None:
            return
        if self.interval <= 0:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script, a unit test): write now
            self.flush()
            return
        if self._calls >= self.max_batch and not self._retrying:
            if self._timer is not None:
                self._timer.cancel()
            self._pace()
        elif self._timer is None:
            self._timer = loop.call_later(self.interval, self._pace)

    def _pace(self) -> None:
        """Write one chunk now and the rest on the next passes of the loop (or try again in `interval`)."""
        self._timer = self._pacing = None
        loop = asyncio.get_running_loop()
        self._retrying = not self._write(self.chunk)
        if self._retrying:
            self._timer = loop.call_later(self.interval, self._pace)
        elif self._held:
            self._pacing = loop.call_soon(self._pace)

    def flush(self) -> None:
        """Write every held sum now (readers, shutdown). Kept for the next try if the store refuses."""
        for handle in (self._timer, self._pacing):
            if handle is not None:
                handle.cancel()
        self._timer = self._pacing = None
        while self._held and self._write(self.chunk):
            pass

    def _write(self, count: int) -> bool:
        """The oldest `count` held rows to the store; False (they stay held) if it refused them."""
        groups = list(itertools.islice(self._held, count))
        rows = [self._held[g] for g in groups]
        try:
            self.store.rollups.record_sums(rows)
        except Exception as exc:  # unreachable, disk full, …: keep them for the next try, and say so once
            if not self._retrying:
                log.warning(
                    "analytics: the store refused %d call sums (kept, retried every %gs): %s",
                    len(rows),
                    self.interval,
                    exc,
                )
            if len(self._held) > MAX_HELD:
                dropped = list(itertools.islice(self._held, len(self._held) - MAX_HELD))
                log.warning("analytics: dropped the sums of %d call groups the store could not take", len(dropped))
                for g in dropped:
                    self._calls -= self._held.pop(g).calls
            self._retrying = True
            return False
        for g, row in zip(groups, rows, strict=True):
            del self._held[g]
            self._calls -= row.calls
        self._retrying = False
        return True
