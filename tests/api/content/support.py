"""Helpers of the content controls' tests."""

from __future__ import annotations

from typing import Any

from paygate.events.hub import Event
from tests.inprocess import InProcessGateway


class GateEvents:
    """Every gate.allow / gate.deny the gateway publishes from now on (the in-process gateway keeps them
    out of `events()`): subscribed on its hub, inline, so one is recorded before the call's answer is sent."""

    def __init__(self, gw: InProcessGateway) -> None:
        assert gw.rt is not None
        self.seen: list[Event] = []
        gw.rt.events.subscribe(self.seen.append, ("gate.allow", "gate.deny"))

    def allowed(self, key_masked: str | None = None) -> list[dict[str, Any]]:
        return [
            e.data
            for e in list(self.seen)
            if e.type == "gate.allow" and (key_masked is None or e.data.get("keyMasked") == key_masked)
        ]
