"""The request log ring, its filters and summary, the /tools/stats math, and the refill from the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from paygate.audit.service import AuditService
from paygate.compose.events import start_request_log
from paygate.events.hub import Event, EventHub
from paygate.reports.request_log import (
    RequestEntry,
    RequestFilter,
    RequestLog,
    entry_of,
    summary,
)
from paygate.reports.tool_stats import detail, overview, p95
from paygate.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0
KEY_A = "pg_aaaa…1111"
KEY_B = "pg_bbbb…2222"


def allow(
    tool: str = "echo", key: str | None = KEY_A, credits: int = 1, ms: float = 1.0, rid: str = "req_1"
) -> dict[str, Any]:
    return {"tool": tool, "keyMasked": key, "credits": credits, "durationMs": ms, "requestId": rid, "failed": False}


def deny(
    tool: str = "echo", key: str | None = KEY_A, reason: str = "insufficient_credits", ms: float = 0.5
) -> dict[str, Any]:
    return {
        "tool": tool,
        "keyMasked": key,
        "reason": reason,
        "creditsRequired": 5,
        "durationMs": ms,
        "requestId": "req_d",
    }


def entry(
    i: int,
    *,
    allowed: bool = True,
    tool: str = "echo",
    key: str | None = KEY_A,
    credits: int = 1,
    ms: float = 1.0,
    reason: str = "insufficient_credits",
) -> RequestEntry:
    data = allow(tool, key, credits, ms) if allowed else deny(tool, key, reason, ms)
    made = entry_of(i, T0 + i, "gate.allow" if allowed else "gate.deny", data)
    assert made is not None
    return made


def gate_event(i: int, *, allowed: bool = True, tool: str = "echo", key: str | None = KEY_A) -> Event:
    data = allow(tool, key) if allowed else deny(tool, key)
    return Event("gate.allow" if allowed else "gate.deny", key or "anonymous", data, T0 + i, i)


def test_gate_events_become_entries_and_other_events_do_not() -> None:
    allowed = entry_of(7, T0, "gate.allow", allow(credits=3, ms=2.5, rid="req_x"))
    assert allowed is not None and allowed.json() == {
        "id": 7,
        "timestamp": "2023-11-14T22:13:20.000Z",
        "tool": "echo",
        "key": KEY_A,
        "status": "allowed",
        "credits": 3,
        "durationMs": 2.5,
        "requestId": "req_x",
    }
    denied = entry_of(8, T0, "gate.deny", deny(key=None, reason="invalid_api_key"))
    assert denied is not None and denied.json()["denyReason"] == "invalid_api_key"
    assert denied.credits == 0 and denied.key is None and denied.status == "denied"
    assert entry_of(9, T0, "key.created", {"keyMasked": KEY_A}) is None


def test_the_ring_keeps_only_the_newest_entries_and_reads_newest_first() -> None:
    log = RequestLog(3)
    log.record_batch([gate_event(i) for i in range(1, 6)])
    assert len(log) == 3
    assert [e.id for e in log.select(RequestFilter())] == [5, 4, 3]


def test_filters_match_part_of_the_masked_key_the_exact_tool_status_and_an_inclusive_window() -> None:
    events = [
        gate_event(1),
        gate_event(2, key=KEY_B),
        gate_event(3, allowed=False),
        gate_event(4, tool="echo2"),
        gate_event(5, key=None, allowed=False),
        Event("key.created", "admin", {"keyMasked": KEY_A}, T0, 6),
    ]
    log = RequestLog(10)
    log.record_batch(events)

    def ids(**where: Any) -> list[int]:
        return [e.id for e in log.select(RequestFilter(**where))]

    assert ids(key="pg_bbbb") == [2] and ids(key="1111") == [4, 3, 1]
    assert ids(key="pg_aaaa...1111") == ids(key=KEY_A) == [4, 3, 1]  # three dots match the ellipsis
    assert ids(tool="echo") == [5, 3, 2, 1] and ids(tool="ech") == []
    assert ids(status="denied") == [5, 3] and ids(status="allowed") == [4, 2, 1]
    assert ids(since=T0 + 2, until=T0 + 4) == [4, 3, 2]
    assert ids(status="allowed", key="pg_aaaa", since=T0 + 2) == [4]


def test_the_summary_covers_the_given_entries() -> None:
    entries = [entry(1, credits=2, ms=1.0), entry(2, credits=3, ms=2.0), entry(3, allowed=False, ms=0.5)]
    assert summary(entries) == {"totalAllowed": 2, "totalDenied": 1, "totalCredits": 5, "avgDurationMs": 1.167}
    assert summary([]) == {"totalAllowed": 0, "totalDenied": 0, "totalCredits": 0, "avgDurationMs": 0}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0),
        ([4.0], 4.0),
        ([1.0, 2.0], 2.0),
        ([float(i) for i in range(1, 21)], 19.0),
        ([float(i) for i in range(100, 0, -1)], 95.0),
        ([float(i) for i in range(1, 102)], 96.0),
    ],
)
def test_p95_is_the_nearest_rank_percentile(values: list[float], expected: float) -> None:
    assert p95(values) == expected


def test_the_overview_lists_every_tool_busiest_first() -> None:
    entries = [
        entry(1, tool="b"),
        entry(2, tool="a", credits=4),
        entry(3, tool="a", allowed=False),
        entry(4, tool="c"),
        entry(5, tool="c"),
    ]
    view = overview(entries)
    assert view["totalTools"] == 3 and view["totalCalls"] == 5
    assert [t["tool"] for t in view["tools"]] == ["a", "c", "b"]  # ties by name
    assert view["tools"][0] == {
        "tool": "a",
        "totalCalls": 2,
        "allowed": 1,
        "denied": 1,
        "successRate": 50.0,
        "totalCredits": 4,
        "avgDurationMs": 1.0,
    }
    assert overview([]) == {"totalTools": 0, "totalCalls": 0, "tools": []}


def test_a_tools_detail_adds_p95_deny_reasons_and_at_most_ten_top_consumers() -> None:
    entries = [entry(i, key=f"pg_k{i:03d}…0000", credits=1) for i in range(12)]
    entries += [entry(20 + i, key=KEY_A, credits=5, ms=10.0 + i) for i in range(3)]
    entries += [
        entry(30, allowed=False, reason="rate_limited"),
        entry(31, allowed=False, key=None),
        entry(32, allowed=False, key=None),
        entry(33, tool="other", key=KEY_B),
    ]
    view = detail("echo", entries)
    assert view["totalCalls"] == 18 and view["allowed"] == 15 and view["denied"] == 3
    assert view["successRate"] == 83.3 and view["totalCredits"] == 12 + 15
    assert view["p95DurationMs"] == 12.0
    assert view["denyReasons"] == {"insufficient_credits": 2, "rate_limited": 1}
    top = view["topConsumers"]
    assert len(top) == 10 and top[0] == {"key": KEY_A, "calls": 4, "credits": 15}
    assert KEY_B not in {t["key"] for t in top}


def test_a_tool_without_entries_gets_an_empty_detail() -> None:
    assert detail("nope", [entry(1)]) == {
        "tool": "nope",
        "totalCalls": 0,
        "allowed": 0,
        "denied": 0,
        "successRate": 0,
        "totalCredits": 0,
        "avgDurationMs": 0,
        "p95DurationMs": 0,
        "denyReasons": {},
        "topConsumers": [],
    }


@pytest.fixture
def audit() -> Iterator[AuditService]:
    store = SQLiteStore()
    store.open()
    try:
        yield AuditService(store.audit)
    finally:
        store.close()


def test_a_new_log_is_refilled_from_the_audit_logs_newest_gate_events_then_follows_the_bus(audit: AuditService) -> None:
    first = EventHub()
    first.subscribe_batch(audit.record_batch)
    for i in range(5):
        first.emit("gate.allow", KEY_A, allow(rid=f"req_{i}"), timestamp=T0 + i)
    first.emit("key.created", "admin", {"keyMasked": KEY_A})
    first.emit("gate.deny", KEY_A, deny(), timestamp=T0 + 9)

    again = EventHub()  # a restart: a new bus numbered past the stored ids
    again.seed(audit.log.max_id() + 1)
    again.subscribe_batch(audit.record_batch)
    log = start_request_log(4, again, audit)
    kept = log.select(RequestFilter())
    assert [e.request_id for e in kept] == ["req_d", "req_4", "req_3", "req_2"]
    again.emit("gate.allow", KEY_B, allow(key=KEY_B, rid="req_new"))
    after = log.select(RequestFilter())
    assert [e.request_id for e in after] == ["req_new", "req_d", "req_4", "req_3"]
    assert len({e.id for e in after}) == 4 and after[0].id > after[1].id


def test_a_size_of_zero_keeps_nothing_and_does_not_subscribe(audit: AuditService) -> None:
    hub = EventHub()
    log = start_request_log(0, hub, audit)
    hub.emit("gate.allow", KEY_A, allow())
    assert log.select(RequestFilter()) == [] and hub.pending == 0


async def test_a_read_sees_calls_published_before_it_even_before_the_bus_delivered_them(audit: AuditService) -> None:
    hub = EventHub()
    log = start_request_log(10, hub, audit)
    hub.emit("gate.allow", KEY_A, allow(rid="req_now"))
    assert hub.pending == 1  # delivery is deferred to the next pass of the loop
    assert [e.request_id for e in log.select(RequestFilter())] == ["req_now"]
    await asyncio.sleep(0)
    assert len(log) == 1  # the scheduled delivery found nothing left to add
