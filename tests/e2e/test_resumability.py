"""Resumable SSE (`Last-Event-ID`) through the real CLI: a client that lost a stream gets what it missed.

Over stdio and Streamable HTTP. Events on a session's streams carry ids unique within the session;
a GET with `Last-Event-ID` resumes the stream that id came from and no other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_protocol_edges import gateway
from tests.support import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["stdio", "http"])
def gw(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    with gateway(request.param) as g:
        yield g


def open_session(gw: Gateway, version: str = "2025-11-25") -> str:
    resp = gw.rpc(
        "initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    return str(resp.headers["mcp-session-id"])


def events(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """(id, data) of each SSE event, as they arrive."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and (data or event_id):
            yield event_id, "\n".join(data)
            event_id, data = None, []


def resume(gw: Gateway, session: str, last_event_id: str, key: str) -> list[tuple[str | None, dict[str, Any]]]:
    """GET with Last-Event-ID, read to the end of the stream (with the key the session is bound to)."""
    headers = {"Mcp-Session-Id": session, "Accept": "text/event-stream", "Last-Event-ID": last_event_id}
    headers["X-API-Key"] = key
    with gw.client.stream("GET", "/mcp", headers=headers, timeout=60) as resp:
        assert resp.status_code == 200
        return [(i, json.loads(d)) for i, d in events(resp.iter_lines()) if d]


def test_a_call_whose_stream_was_lost_goes_on_and_the_client_resumes_it_to_its_answer(gw: Gateway) -> None:
    key = gw.create_key(10)
    session = open_session(gw)
    body = {
        "jsonrpc": "2.0",
        "id": "long",
        "method": "tools/call",
        "params": {
            "name": "progress_slowly",
            "arguments": {"steps": 4, "seconds": 0.3},
            "_meta": {"progressToken": "p"},
        },
    }
    seen: list[tuple[str | None, str]] = []
    with gw.client.stream(
        "POST",
        "/mcp",
        json=body,
        timeout=60,
        headers={"Mcp-Session-Id": session, "X-API-Key": key, "Accept": "application/json, text/event-stream"},
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for event_id, data in events(resp.iter_lines()):
            seen.append((event_id, data))
            if data:
                break  # the first progress event: now the client loses the stream
    priming, (first_id, first) = seen[0], seen[1]
    assert priming[1] == "" and priming[0] is not None  # 2025-11-25: an id to resume from, before anything
    assert json.loads(first)["params"]["progress"] == 1 and first_id is not None
    rest = resume(gw, session, first_id, key)
    assert [m["params"]["progress"] for _, m in rest[:-1]] == [2, 3, 4]
    assert rest[-1][1]["id"] == "long" and rest[-1][1]["result"]["content"][0]["text"] == "4 slow steps"
    ids = [first_id, *(i for i, _ in rest)]
    assert len(set(ids)) == len(ids) and all(i and i.split("-")[0] == first_id.split("-")[0] for i in ids)
    assert gw.balance(key) == 9  # charged once; the call was never cancelled
    assert resume(gw, session, ids[-2], key)[-1][1]["id"] == "long"  # the answer stays there to be read again


def test_the_standalone_stream_resumes_with_what_was_missed_and_only_that(gw: Gateway) -> None:
    key = gw.create_key(10)
    session = open_session(gw, "2025-06-18")
    received: list[tuple[str | None, str]] = []
    opened = threading.Event()

    def listen() -> None:  # reads one event, then drops the stream
        with gw.client.stream(
            "GET", "/mcp", timeout=30, headers={"Mcp-Session-Id": session, "Accept": "text/event-stream"}
        ) as resp:
            opened.set()
            received.append(next(events(resp.iter_lines())))

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10)
    gw.call_tool("grow", {"name": f"first_{session[-6:]}"}, key)
    reader.join(10)
    assert not reader.is_alive() and len(received) == 1
    last_id = received[0][0]
    assert last_id is not None and "list_changed" in received[0][1]
    gw.call_tool("grow", {"name": f"second_{session[-6:]}"}, key)  # while no stream is open
    missed: list[tuple[str | None, str]] = []
    headers = {"Mcp-Session-Id": session, "Accept": "text/event-stream", "Last-Event-ID": last_id}
    with gw.client.stream("GET", "/mcp", headers=headers, timeout=30) as resp:
        for event in events(resp.iter_lines()):
            missed.append(event)
            break
    assert "list_changed" in missed[0][1] and missed[0][0] != last_id
    unknown = {"Mcp-Session-Id": session, "Accept": "text/event-stream", "Last-Event-ID": "99-99"}
    with gw.client.stream("GET", "/mcp", timeout=5, headers=unknown) as resp:  # replays nothing, then ends
        assert resp.status_code == 200 and list(events(resp.iter_lines())) == []
