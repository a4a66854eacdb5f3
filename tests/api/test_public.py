"""Public endpoints and the headers every response carries."""

from __future__ import annotations

import re

import pytest

from tests.inprocess import InProcessGateway


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/ready",
        "/info",
        "/pricing",
        "/.well-known/mcp-payment",
        "/.well-known/mcp.json",
        "/metrics",
        "/robots.txt",
        "/",
        "/openapi.json",
        "/docs",
    ],
)
def test_public_endpoints_answer_without_auth(gw: InProcessGateway, path: str) -> None:
    resp = gw.client.get(path)
    assert resp.status_code == 200, resp.text
    assert re.fullmatch(r"req_[0-9a-f]{16}", resp.headers["x-request-id"])
    assert resp.headers["x-paygate-version"]


def test_request_ids_are_propagated_and_junk_is_replaced(gw: InProcessGateway) -> None:
    assert gw.client.get("/health", headers={"X-Request-Id": "trace-123"}).headers["x-request-id"] == "trace-123"
    replaced = gw.client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"}).headers["x-request-id"]
    assert replaced.startswith("req_")
    assert gw.rpc("ping", headers={"X-Request-Id": "mcp-1"}).headers["x-request-id"] == "mcp-1"


def test_health_and_ready_report_a_live_backend(gw: InProcessGateway) -> None:
    health = gw.client.get("/health").json()
    assert health["status"] == "healthy" and health["backend"]["ready"] is True
    assert gw.client.get("/ready").json()["ready"] is True
    assert gw.client.head("/health").status_code == 200


def test_pricing_comes_from_the_backends_tool_list(gw: InProcessGateway) -> None:
    tools = {t["name"] for t in gw.client.get("/pricing").json()["tools"]}
    assert {
        "echo",
        "add",
        "fail",
        "big_output",
        "slow",
        "slow_calls",
        "crash",
        "announce",
        "grow",
        "meet",
        "progress",
        "ask_llm",
        "ask_user",
        "client_roots",
        "progress_then_crash",
        "progress_slowly",
        "grow_quietly",
    } == tools


def test_discovery_documents(gw: InProcessGateway) -> None:
    payment = gw.client.get("/.well-known/mcp-payment").json()
    assert payment["billingModel"] == "credits" and payment["errorCodes"]["insufficient_credits"]["code"] == -32402
    card = gw.client.get("/.well-known/mcp.json").json()
    assert card["upstream"]["name"] == "paygate-test-echo"
    info = gw.client.get("/info").json()
    assert info["transport"] == "stdio" and info["pricing"]["defaultCreditsPerCall"] == 1


def test_metrics_count_calls_by_tool_and_status(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    text = gw.client.get("/metrics").text
    assert re.search(r'paygate_tool_calls_total\{status="allowed",tool="add"\} [1-9]', text)
    assert re.search(r'paygate_denials_total\{reason="insufficient_credits"\} [1-9]', text)
    assert "paygate_uptime_seconds" in text and "paygate_active_keys_total" in text
    assert 'path="/mcp"' in text


def test_robots_disallows_admin_paths(gw: InProcessGateway) -> None:
    text = gw.client.get("/robots.txt").text
    assert "Disallow: /keys" in text and "Disallow: /admin" in text


def test_openapi_documents_the_admin_api(gw: InProcessGateway) -> None:
    paths = gw.client.get("/openapi.json").json()["paths"]
    assert {"/keys", "/topup", "/keys/revoke", "/balance", "/usage", "/status", "/pricing"} <= set(paths)


def test_metrics_expose_every_reference_family_and_the_event_bus(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    gw.call_tool("fail", {}, raw)
    text = gw.client.get("/metrics").text
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert {
        "paygate_tool_calls_total",
        "paygate_credits_charged_total",
        "paygate_denials_total",
        "paygate_rate_limit_hits_total",
        "paygate_refunds_total",
        "paygate_http_requests_total",
        "paygate_active_keys_total",
        "paygate_active_sessions_total",
        "paygate_total_credits_available",
        "paygate_uptime_seconds",
        "paygate_backend_up",
        "paygate_webhook_deliveries_total",
        "paygate_webhook_queue_depth",
        "paygate_webhook_dead_letters",
        "paygate_events_published_total",
        "paygate_event_queue_depth",
    } <= families, families
    published = float(re.search(r"^paygate_events_published_total (\S+)$", text, re.M).group(1))
    assert published >= 3  # key.created and two gate events at least
    assert re.search(r'paygate_credits_charged_total\{tool="add"\} [1-9]', text)


def test_an_unknown_path_and_a_wrong_method_answer_in_the_error_body_every_route_uses(gw: InProcessGateway) -> None:
    missing = gw.client.get("/no/such/path", headers={"X-Request-Id": "req-missing-1"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "requestId": "req-missing-1"}
    wrong = gw.client.delete("/health")
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    assert wrong.json() == {"error": "Method Not Allowed", "requestId": wrong.headers["x-request-id"]}
