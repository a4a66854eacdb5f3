"""Issue 11 on MCP sessions: bound to the key that opened them, anonymous sessions in a pool of their
own (strangers evict only strangers), new sessions per address per minute, streams per session
(a resumption counts). In-process gateway, real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, write_config

INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
SSE = "text/event-stream"


def config(tmp: Path, **limits: Any) -> str:
    return write_config(
        tmp, {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], "globalRateLimitPerMin": 0, **limits}
    )


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    limits = {"maxAnonymousSessions": 3, "sessionRateLimit": 0, "maxStreamsPerSession": 2}
    with running_inprocess_gateway("--config", config(tmp_path_factory.mktemp("sessions"), **limits)) as gateway:
        yield gateway


def auth(key: str | None) -> dict[str, str]:
    return {"X-API-Key": key} if key else {}


def open_session(gw: InProcessGateway, key: str | None = None, bearer: bool = False) -> str:
    headers = {"Authorization": f"Bearer {key}"} if bearer and key else auth(key)
    resp = gw.rpc("initialize", INIT, headers=headers)
    assert resp.status_code == 200 and "result" in resp.json(), resp.text
    return str(resp.headers["mcp-session-id"])


def on(session: str, key: str | None, **extra: str) -> dict[str, str]:
    return {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18", **auth(key), **extra}


def ping(gw: InProcessGateway, session: str, key: str | None) -> int:
    return gw.rpc("ping", headers=on(session, key)).status_code


def get_status(gw: InProcessGateway, session: str, key: str | None, last_event_id: str | None = None) -> int:
    extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with gw.client.stream("GET", "/mcp", headers={**on(session, key, **extra), "Accept": SSE}) as resp:
        return resp.status_code


def refused_everything(gw: InProcessGateway, session: str, key: str | None) -> None:
    """Every request on `session` with this credential is answered as for an unknown session."""
    unknown = gw.rpc("ping", headers=on("mcp_sess_" + "0" * 32, None)).json()
    resp = gw.rpc("ping", headers=on(session, key))
    assert resp.status_code == 404 and resp.json() == unknown
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    assert gw.client.post("/mcp", json=cancel, headers=on(session, key)).status_code == 404
    assert get_status(gw, session, key) == 404
    assert get_status(gw, session, key, "0-0") == 404
    assert get_status(gw, session, key, "1-1") == 404
    assert gw.client.delete("/mcp", headers=on(session, key)).status_code == 404


def test_a_keyed_session_serves_only_its_own_key(gw: InProcessGateway) -> None:
    key_a, key_b = gw.create_key(5), gw.create_key(5)
    session = open_session(gw, key_a)
    refused_everything(gw, session, None)
    refused_everything(gw, session, key_b)
    refused_everything(gw, session, "pg_not_a_key")
    assert ping(gw, session, key_a) == 200
    with gw.client.stream(
        "GET", "/mcp", headers={**on(session, None, **{"Authorization": f"Bearer {key_a}"}), "Accept": SSE}
    ) as r:
        assert r.status_code == 200  # the same key as a Bearer token is the same credential
    call = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, key=key_a, headers=on(session, None))
    assert call.json()["result"]["structuredContent"] == {"result": 2}
    assert gw.client.delete("/mcp", headers=on(session, key_a)).status_code == 200


def test_an_anonymous_session_is_bound_to_the_first_key_used_on_it(gw: InProcessGateway) -> None:
    key_a, key_b = gw.create_key(5), gw.create_key(5)
    session = open_session(gw)
    assert ping(gw, session, None) == 200 and ping(gw, session, "pg_not_a_key") == 200  # still anyone's
    assert ping(gw, session, key_a) == 200  # bound now
    refused_everything(gw, session, None)
    refused_everything(gw, session, key_b)
    assert ping(gw, session, key_a) == 200


def test_strangers_flooding_sessions_with_streams_evict_only_strangers(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    paying = open_session(gw, key)
    with contextlib.ExitStack() as stack, httpx.Client(base_url=gw.url, timeout=10) as other:
        stranger = open_session(gw)
        stream = stack.enter_context(other.stream("GET", "/mcp", headers={**on(stranger, None), "Accept": SSE}))
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith(":")
        for _ in range(3 * 10):  # ten times the anonymous pool
            open_session(gw)
        assert ping(gw, stranger, None) == 404  # evicted although it had an open stream …
        assert not any(line.startswith("data:") for line in lines)  # … which ended (read to its end)
    assert ping(gw, paying, key) == 200  # the paying client's session was never at risk
    assert gw.rt is not None and gw.rt.sessions.anonymous_count == 3


def test_a_resumption_counts_against_the_streams_of_a_session(gw: InProcessGateway) -> None:
    key = gw.create_key(1)
    session = open_session(gw, key)
    with contextlib.ExitStack() as stack, httpx.Client(base_url=gw.url, timeout=10) as other:
        for _ in range(2):  # maxStreamsPerSession
            opened = stack.enter_context(other.stream("GET", "/mcp", headers={**on(session, key), "Accept": SSE}))
            assert opened.status_code == 200
        assert get_status(gw, session, key) == 429
        assert get_status(gw, session, key, "0-0") == 429  # a resumption is a stream too
        assert get_status(gw, session, key, "1-1") == 429


def test_new_sessions_per_address_are_limited(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, sessionRateLimit=2)) as gw:
        key = gw.create_key(1)
        open_session(gw)
        open_session(gw, key)
        assert gw.rt is not None
        before = len(gw.rt.sessions)
        resp = gw.rpc("initialize", INIT, key=key)
        assert resp.status_code == 429 and 1 <= int(resp.headers["retry-after"]) <= 60
        assert resp.json()["error"]["data"]["reason"] == "session_rate_limited" and resp.json()["id"] == 1
        assert "mcp-session-id" not in resp.headers and len(gw.rt.sessions) == before
        assert gw.rpc("tools/list", {}).status_code == 200  # only new sessions are limited


def test_no_anonymous_sessions_means_a_key_is_needed_to_open_one(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, maxAnonymousSessions=0)) as gw:
        refused = gw.rpc("initialize", INIT)
        assert "mcp-session-id" not in refused.headers
        assert refused.json()["error"]["data"]["reason"] == "missing_api_key"
        assert "mcp-session-id" not in gw.rpc("initialize", INIT, key="pg_not_a_key").headers
        open_session(gw, gw.create_key(1))
