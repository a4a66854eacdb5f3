"""CORS and custom headers through the real CLI: `--cors-origin`, repeated `--header`, an OPTIONS
preflight on /mcp, the environment's forms, and a bad header refused at start (exit 2)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.support import CLI, ECHO_COMMAND, running_gateway

pytestmark = pytest.mark.e2e

APP = "https://app.example.com"


def test_the_cors_and_header_flags_through_the_cli() -> None:
    args = ("--server", ECHO_COMMAND, "--cors-origin", f"{APP},https://two.example.com")
    with running_gateway(*args, "--header", "X-Team:search,X-Frame-Options:SAMEORIGIN", "--header", "X-B:1") as gw:
        client = gw.client
        pre = client.options("/mcp", headers={"Origin": APP, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == APP and pre.headers["vary"] == "Origin"
        assert "Mcp-Session-Id" in pre.headers["access-control-allow-headers"]
        assert pre.headers["x-team"] == "search" and pre.headers["x-b"] == "1"
        assert pre.headers["x-frame-options"] == "SAMEORIGIN" and pre.headers["x-content-type-options"] == "nosniff"
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        resp = gw.rpc("initialize", init, headers={"Origin": APP})  # CORS names it: /mcp takes it too
        assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == APP
        assert resp.headers["x-team"] == "search"
        evil = client.options("/mcp", headers={"Origin": "https://evil.example.com"})
        assert evil.status_code == 204 and "access-control-allow-origin" not in evil.headers


def test_the_environment_forms() -> None:
    env = {"PAYGATE_CORS_ORIGIN": APP, "PAYGATE_CUSTOM_HEADERS": "X-Env:yes"}
    with running_gateway("--server", ECHO_COMMAND, env=env) as gw:
        resp = httpx.get(f"{gw.url}/health", headers={"Origin": APP}, timeout=10)
        assert resp.headers["access-control-allow-origin"] == APP and resp.headers["x-env"] == "yes"


def test_a_bad_header_flag_exits_2_with_the_reason() -> None:
    proc = subprocess.run(
        [CLI, "wrap", "--server", ECHO_COMMAND, "--header", "X-Request-Id:mine"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "customHeaders" in proc.stderr and "set by the gateway" in proc.stderr
