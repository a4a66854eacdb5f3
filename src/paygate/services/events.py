"""The one internal hook every state change is published through.

For now it writes a structured log line per event (keys masked, no secrets);
the events issue adds the durable audit log, webhooks and the admin stream as
subscribers of this same hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger("paygate.events")


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # e.g. key.created, key.topup, key.revoked, admin.auth_failed
    actor: str  # "admin", "system", or a masked key
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


Subscriber = Callable[[Event], None]


class EventHub:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = [self._log]

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, type_: str, actor: str, **data: Any) -> None:
        event = Event(type_, actor, data)
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must not break the action that published
                log.exception("event subscriber failed on %s", type_)

    @staticmethod
    def _log(event: Event) -> None:
        # One JSON object per line after the logger prefix: greppable, and parsed by the tests.
        log.info("%s", orjson.dumps({"type": event.type, "actor": event.actor, "data": event.data},
                                    default=str).decode())
