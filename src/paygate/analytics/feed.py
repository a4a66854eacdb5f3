"""The rollups' feed: a deferred subscriber of the event bus that turns each `gate.allow` / `gate.deny` into
a `CallFact` and hands a batch of them to the store, after the calls were answered (never on the tool-call
path). The namespace is the key's at the time of the call; a call without a valid key has none ("default").

If the store refuses a batch (Redis unreachable), the facts are kept and sent with the next batch, up to
`MAX_HELD` (then the oldest are dropped and counted in the log), so a short outage loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from paygate.core.records import KeyRecord
from paygate.events.hub import Event
from paygate.store.base import Store
from paygate.store.rollups import CallFact

log = logging.getLogger("paygate.analytics")
MAX_HELD = 100_000


def fact_of(event: Event, key: KeyRecord | None) -> CallFact | None:
    data = event.data
    tool = data.get("tool")
    if not isinstance(tool, str):
        return None
    namespace = key.namespace if key is not None else "default"
    duration = float(data.get("durationMs") or 0.0)
    if event.type == "gate.deny":
        return CallFact(
            event.timestamp, event.key_hash, tool, namespace, str(data.get("reason") or "unknown"), duration_ms=duration
        )
    shadow = data.get("shadow")
    return CallFact(
        event.timestamp,
        event.key_hash,
        tool,
        namespace,
        str(shadow) if shadow else "",
        credits=int(data.get("credits") or 0),
        refunded=int(data.get("refunded") or 0),
        failed=bool(data.get("failed")),
        duration_ms=duration,
    )


class RollupFeed:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: list[CallFact] = []

    def on_batch(self, events: Sequence[Event]) -> None:
        get_key = self.store.get_key
        facts = self._held
        for event in events:
            if event.type != "gate.allow" and event.type != "gate.deny":
                continue
            fact = fact_of(event, get_key(event.key_hash) if event.key_hash else None)
            if fact is not None:
                facts.append(fact)
        if not facts:
            return
        try:
            self.store.rollups.record(facts)
        except Exception:  # the store's own error (unreachable): keep them for the next batch
            if len(facts) > MAX_HELD:
                log.warning("analytics: dropped %d call facts the store could not take", len(facts) - MAX_HELD)
                del facts[: len(facts) - MAX_HELD]
            return
        self._held = []
