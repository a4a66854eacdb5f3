"""/mcp's header checks through the real CLI: Origin (DNS-rebinding protection) and MCP-Protocol-Version."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support import CLI, ECHO_COMMAND, Gateway, running_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway("--server", ECHO_COMMAND, "--allowed-origins", "https://app.example.com") as gateway:
        yield gateway


def initialize(gw: Gateway, version: str = "2025-06-18", headers: dict[str, str] | None = None) -> str:
    resp = gw.rpc(
        "initialize",
        {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.headers["mcp-session-id"])


def sessions(gw: Gateway) -> int:
    return int(gw.client.get("/status", headers=gw.admin()).json()["activeSessions"])


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://app.example.com", "null", "https://app.example.com.evil.example"]
)
def test_a_page_from_an_origin_not_allowed_is_refused_on_every_method_and_changes_nothing(
    gw: Gateway, origin: str
) -> None:
    before = sessions(gw)
    resp = gw.rpc(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        headers={"Origin": origin},
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["data"]["reason"] == "origin_not_allowed"
    assert sessions(gw) == before
    session = initialize(gw)
    for method in ("GET", "DELETE"):
        refused = gw.client.request(
            method, "/mcp", headers={"Origin": origin, "Mcp-Session-Id": session, "Accept": "text/event-stream"}
        )
        assert refused.status_code == 403
    assert gw.client.delete("/mcp", headers={"Mcp-Session-Id": session}).status_code == 200  # it survived


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com",
        "https://APP.example.com/",
        "http://localhost:5173",
        "http://127.0.0.1",
        "http://[::1]:8080",
    ],
)
def test_listed_and_loopback_origins_and_no_origin_at_all_are_served(gw: Gateway, origin: str) -> None:
    assert gw.rpc("ping", headers={"Origin": origin}).json()["result"] == {}
    assert gw.rpc("ping").json()["result"] == {}


def test_any_origin_is_served_with_a_wildcard() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--allowed-origins", "*") as gw:
        assert gw.rpc("ping", headers={"Origin": "https://anywhere.example"}).json()["result"] == {}


def test_an_allowed_origins_entry_that_is_not_an_origin_stops_the_start() -> None:
    done = subprocess.run(
        [CLI, "wrap", "--server", ECHO_COMMAND, "--allowed-origins", "https://a.example/path"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "allowedOrigins" in done.stderr


def test_an_unsupported_protocol_version_header_is_a_400_naming_the_supported_ones(gw: Gateway) -> None:
    key = gw.create_key(5)
    resp = gw.rpc(
        "tools/call",
        {"name": "echo", "arguments": {"text": "x"}},
        key=key,
        headers={"MCP-Protocol-Version": "1999-01-01"},
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == -32022 and error["data"]["requested"] == "1999-01-01"
    assert error["data"]["supported"] == ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
    assert gw.balance(key) == 5  # nothing ran, nothing charged


def test_any_supported_version_is_served_within_a_session_and_no_header_means_2025_03_26(gw: Gateway) -> None:
    key = gw.create_key(5)
    session = initialize(gw, "2025-11-25")
    for version in ("2025-11-25", "2025-03-26"):  # the conformance suite sends 2025-03-26 in such a session
        headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": version}
        assert (
            "result"
            in gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key, headers=headers).json()
        )
    stream = gw.client.get(  # (with the key the session is bound to since the call above)
        "/mcp",
        headers={
            "Mcp-Session-Id": session,
            "MCP-Protocol-Version": "2099-01-01",
            "Accept": "text/event-stream",
            "X-API-Key": key,
        },
    )
    assert stream.status_code == 400 and stream.json()["error"]["code"] == -32022
    no_header = gw.rpc(
        "tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key, headers={"Mcp-Session-Id": session}
    )
    assert no_header.status_code == 200 and gw.balance(key) == 2


def test_initialize_carrying_a_newer_version_header_still_negotiates(gw: Gateway) -> None:
    """A 2026-07-28 client falls back to initialize, which may still carry its probe's header."""
    session = initialize(gw, "2025-11-25", headers={"MCP-Protocol-Version": "2026-07-28"})
    assert session.startswith("mcp_sess_")
