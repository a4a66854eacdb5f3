"""Dry runs against a real gateway: the verdict a real call would meet, with nothing charged or counted."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, usage_events, wait_until, write_config

RATE_LIMIT = 3
CONFIG = {"toolPricing": {"add": {"creditsPerCall": 5}, "announce": {"creditsPerCall": 1, "creditsPerKbInput": 2}}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """Global limit 3 calls/min; `add` costs 5; `announce` costs 1 + 2 per input KB; others 1."""
    config = write_config(tmp_path_factory.mktemp("dry"), CONFIG)
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", str(RATE_LIMIT), "--config", config) as g:
        yield g


def dry(
    gw: InProcessGateway, body: dict[str, Any], path: str = "/requests/dry-run", admin_key: str | None = None
) -> httpx.Response:
    return gw.client.post(path, json=body, headers={"X-Admin-Key": admin_key or gw.admin_key})


def verdict(gw: InProcessGateway, body: dict[str, Any]) -> dict[str, Any]:
    resp = dry(gw, body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def admin_post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> None:
    resp = gw.client.post(path, json=body, headers=gw.admin())
    assert resp.status_code in (200, 201), resp.text


def rate_used(gw: InProcessGateway, key: str) -> int:
    resp = gw.client.get("/keys/rate-limit-status", params={"key": key}, headers=gw.admin())
    return int(resp.json()["global"]["used"])


# --- a dry run changes nothing ------------------------------------------------------------------


def test_dry_runs_never_charge_count_or_use_a_rate_slot(gw: InProcessGateway) -> None:
    name = f"dry-{uuid.uuid4().hex[:8]}"
    raw = gw.create_key(100, name=name)
    for _ in range(RATE_LIMIT * 5):
        assert verdict(gw, {"key": raw, "tool": "echo", "arguments": {"text": "x"}})["allowed"] is True
        batch = dry(gw, {"key": raw, "tools": [{"name": "echo"}] * RATE_LIMIT}, "/requests/dry-run/batch")
        assert batch.json()["allAllowed"] is True
    assert gw.balance(raw) == 100
    assert usage_events(gw, name) == []
    assert rate_used(gw, raw) == 0
    for _ in range(RATE_LIMIT):  # the whole window is still there for real calls
        assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    assert gw.balance(raw) == 100 - RATE_LIMIT
    after = verdict(gw, {"key": raw, "tool": "echo"})
    assert (after["allowed"], after["denyReason"]) == (False, "rate_limited")
    assert gw.call_tool("echo", {"text": "x"}, raw)["error"]["data"]["reason"] == "rate_limited"


def test_an_allowed_verdict_shows_the_price_the_balance_after_and_the_window(gw: InProcessGateway) -> None:
    raw = gw.create_key(12)
    v = verdict(gw, {"key": raw, "tool": "add", "arguments": {"a": 1, "b": 2}})
    assert v == {**v, "tool": "add", "allowed": True, "creditsRequired": 5, "creditsAvailable": 12, "creditsAfter": 7}
    assert v["rateLimit"] == {
        "limit": RATE_LIMIT,
        "used": 0,
        "remaining": RATE_LIMIT,
        "resetInMs": 60_000,
        "windowMs": 60_000,
    }
    assert "reason" not in v


# --- the verdict matches a real call ------------------------------------------------------------

Setup = Callable[[InProcessGateway], str]


def _key(credits: int = 10, **extra: Any) -> Setup:
    return lambda gw: gw.create_key(credits, **extra)


def _then(action: str, body: dict[str, Any] | None = None, **create: Any) -> Setup:
    def setup(gw: InProcessGateway) -> str:
        raw = gw.create_key(10, **create)
        admin_post(gw, action, {"key": raw, **(body or {})})
        return raw

    return setup


def _expired(gw: InProcessGateway) -> str:
    raw = gw.create_key(10, expiresIn=1)
    wait_until(
        lambda: verdict(gw, {"key": raw, "tool": "echo"}).get("denyReason") == "api_key_expired",
        what="the key to expire",
    )
    return raw


CASES: list[tuple[str, Setup, str, dict[str, Any], str | None]] = [
    ("allowed", _key(), "echo", {"text": "x"}, None),
    ("insufficient credits", _key(4), "add", {"a": 1, "b": 1}, "insufficient_credits"),
    ("denied tool", _key(deniedTools=["echo"]), "echo", {"text": "x"}, "tool_not_allowed"),
    ("not in allowed tools", _key(allowedTools=["add"]), "echo", {"text": "x"}, "tool_not_allowed"),
    ("suspended", _then("/keys/suspend"), "echo", {"text": "x"}, "key_suspended"),
    ("revoked", _then("/keys/revoke"), "echo", {"text": "x"}, "key_revoked"),
    ("expired", _expired, "echo", {"text": "x"}, "api_key_expired"),
    ("unknown tool", _key(), "no_such_tool", {}, "unknown_tool"),
    ("spending limit", _key(spendingLimit=3), "add", {"a": 1, "b": 1}, "spending_limit_exceeded"),
    ("quota", _key(quota={"dailyCreditLimit": 4}), "add", {"a": 1, "b": 1}, "quota_exceeded"),
    ("ip allowlist", _key(ipAllowlist=["10.0.0.0/8"]), "echo", {"text": "x"}, "ip_not_allowed"),
]


def real_outcome(gw: InProcessGateway, raw: str, tool: str, arguments: dict[str, Any]) -> str | None:
    """None when the call went through, else the reason it was refused."""
    reply = gw.call_tool(tool, arguments, raw)
    if "result" in reply:
        return None
    error = reply["error"]
    if error["code"] == -32602:  # refused before the gate: the backend has no such tool
        assert "Unknown tool" in error["message"]
        return "unknown_tool"
    return str(error["data"]["reason"])


@pytest.mark.parametrize(("case", "setup", "tool", "arguments", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_dry_run_verdict_matches_a_real_calls_outcome(
    gw: InProcessGateway, case: str, setup: Setup, tool: str, arguments: dict[str, Any], expected: str | None
) -> None:
    raw = setup(gw)
    v = verdict(gw, {"key": raw, "tool": tool, "arguments": arguments, "clientIp": "127.0.0.1"})
    assert v["allowed"] is (expected is None)
    assert v.get("denyReason") == expected
    if expected is not None:
        assert v["reason"].startswith(expected)
    assert real_outcome(gw, raw, tool, arguments) == expected


def test_the_dry_run_prices_input_size_as_a_real_call_does(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    arguments = {"text": "y" * 3000}
    v = verdict(gw, {"key": raw, "tool": "announce", "arguments": arguments})
    assert v["creditsRequired"] == 1 + 2 * 3  # 3,013 bytes of JSON: 3 KB, rounded up
    assert "result" in gw.call_tool("announce", arguments, raw)
    assert gw.balance(raw) == 100 - v["creditsRequired"]


def test_arguments_are_read_as_a_real_call_reads_them(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    arguments = {"text": "y" * 1000, "n": 10**30}  # a real call reads the integer as 1e+30
    v = verdict(gw, {"key": raw, "tool": "announce", "arguments": arguments})
    gw.call_tool("announce", arguments, raw)
    assert gw.balance(raw) == 100 - v["creditsRequired"]


@pytest.mark.parametrize("path", ["/requests/dry-run", "/requests/dry-run/batch"])
def test_arguments_nested_too_deeply_to_price_are_a_400(gw: InProcessGateway, path: str) -> None:
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"a": deep}
    call = (
        {"tool": "announce", "arguments": deep}
        if path.endswith("dry-run")
        else {"tools": [{"name": "announce", "arguments": deep}]}
    )
    resp = dry(gw, {"key": gw.create_key(5), **call}, path)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request: ")


def test_client_ip_and_country_stand_in_for_the_callers(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, ipAllowlist=["10.0.0.0/8"])
    assert verdict(gw, {"key": raw, "tool": "echo"})["denyReason"] == "ip_not_allowed"
    assert verdict(gw, {"key": raw, "tool": "echo", "clientIp": "10.1.2.3"})["allowed"] is True
    geo = gw.create_key(10)
    admin_post(gw, "/keys/geo", {"key": geo, "allowedCountries": ["DE"]})
    assert verdict(gw, {"key": geo, "tool": "echo"})["denyReason"] == "country_not_allowed"
    assert verdict(gw, {"key": geo, "tool": "echo", "country": "de"})["allowed"] is True


# --- batch --------------------------------------------------------------------------------------


def test_a_batch_checks_credits_in_aggregate_and_reports_each_call(gw: InProcessGateway) -> None:
    raw = gw.create_key(11, deniedTools=["fail"])
    body = {"key": raw, "tools": [{"name": "add"}, {"name": "fail"}, {"name": "add"}, {"name": "echo"}]}
    resp = dry(gw, body, "/requests/dry-run/batch")
    assert resp.status_code == 200, resp.text
    b = resp.json()
    assert [(r["tool"], r["allowed"], r.get("denyReason")) for r in b["results"]] == [
        ("add", True, None),
        ("fail", False, "tool_not_allowed"),
        ("add", True, None),
        ("echo", True, None),
    ]  # 10 of 11 credits and 2 of 3 rate slots used before it: it still fits
    assert b == {**b, "allAllowed": False, "totalCreditsRequired": 12, "creditsAvailable": 11, "creditsAfter": 0}


def test_a_batch_past_the_balance_denies_the_calls_that_no_longer_fit(gw: InProcessGateway) -> None:
    raw = gw.create_key(11)
    b = dry(
        gw, {"key": raw, "calls": [{"name": "add"}, {"name": "add"}, {"name": "add"}]}, "/requests/dry-run/batch"
    ).json()
    assert [(r["allowed"], r.get("denyReason")) for r in b["results"]] == [
        (True, None),
        (True, None),
        (False, "insufficient_credits"),
    ]
    assert (b["allAllowed"], b["totalCreditsRequired"], b["creditsAfter"]) == (False, 15, 1)
    assert gw.balance(raw) == 11


def test_a_batch_longer_than_the_rate_window_denies_the_calls_past_it(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    b = dry(gw, {"key": raw, "tools": [{"name": "echo"}] * (RATE_LIMIT + 2)}, "/requests/dry-run/batch").json()
    assert [r.get("denyReason") for r in b["results"]] == [None] * RATE_LIMIT + ["rate_limited"] * 2
    assert b["creditsAfter"] == 100 - RATE_LIMIT
    assert rate_used(gw, raw) == 0


@pytest.mark.parametrize("quota", [{"dailyCallLimit": 2}, {"monthlyCreditLimit": 11}])
def test_a_batch_counts_its_earlier_calls_against_the_quota_as_real_calls_do(
    gw: InProcessGateway, quota: dict[str, int]
) -> None:
    raw = gw.create_key(100, quota=quota)
    calls = [{"name": "add", "arguments": {"a": 1, "b": 1}}] * 3  # 5 credits each
    b = dry(gw, {"key": raw, "tools": calls}, "/requests/dry-run/batch").json()
    expected = [None, None, "quota_exceeded"]
    assert [r.get("denyReason") for r in b["results"]] == expected
    assert [real_outcome(gw, raw, "add", {"a": 1, "b": 1}) for _ in calls] == expected


def test_a_batch_counts_its_earlier_calls_against_the_team_budget_and_quota(gw: InProcessGateway) -> None:
    team = gw.client.post(
        "/teams",
        headers=gw.admin(),
        json={"name": f"t-{uuid.uuid4().hex[:6]}", "budget": 12, "quota": {"dailyCalls": 3}},
    )
    assert team.status_code == 201, team.text
    raw = gw.create_key(100)
    admin_post(gw, "/teams/assign", {"teamId": team.json()["id"], "apiKey": raw})
    calls = [{"name": "add", "arguments": {"a": 1, "b": 1}}] * 3
    b = dry(gw, {"key": raw, "tools": calls}, "/requests/dry-run/batch").json()
    assert [r.get("denyReason") for r in b["results"]] == [None, None, "team_budget_exceeded"]


def test_a_batch_that_fits_is_all_allowed(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    alias = f"dr-{uuid.uuid4().hex[:8]}"
    admin_post(gw, "/keys/alias", {"key": raw, "alias": alias})
    b = dry(
        gw,
        {"key": alias, "tools": [{"name": "echo"}, {"name": "add", "arguments": {"a": 1, "b": 2}}]},
        "/requests/dry-run/batch",
    ).json()
    assert b == {
        "allAllowed": True,
        "totalCreditsRequired": 6,
        "creditsAvailable": 100,
        "creditsAfter": 94,
        "results": [
            {"tool": "echo", "allowed": True, "creditsRequired": 1},
            {"tool": "add", "allowed": True, "creditsRequired": 5},
        ],
    }


# --- input, keys, roles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tool": "echo"},
        {"key": "k"},
        {"key": "k", "tool": ""},
        {"key": "k", "tool": "echo", "extra": 1},
        {"key": "k", "tool": "echo", "arguments": [1, 2]},
        {"key": "k", "tool": "echo", "clientIp": "not-an-ip"},
        {"key": "k", "tool": "echo", "country": "DEU"},
        {"key": 5, "tool": "echo"},
    ],
)
def test_a_bad_dry_run_body_is_400(gw: InProcessGateway, body: dict[str, Any]) -> None:
    resp = dry(gw, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request:")


@pytest.mark.parametrize(
    "body",
    [
        {"key": "k"},
        {"key": "k", "tools": []},
        {"key": "k", "tools": [{"name": "echo"}] * 101},
        {"key": "k", "tools": [{"name": "echo"}], "calls": [{"name": "echo"}]},
        {"key": "k", "tools": [{"tool": "echo"}]},
        {"key": "k", "tools": [{"name": "echo", "arguments": "x"}]},
    ],
)
def test_a_bad_batch_body_is_400(gw: InProcessGateway, body: dict[str, Any]) -> None:
    assert dry(gw, body, "/requests/dry-run/batch").status_code == 400


@pytest.mark.parametrize("path", ["/requests/dry-run", "/requests/dry-run/batch"])
def test_a_dry_run_for_an_unknown_key_is_404(gw: InProcessGateway, path: str) -> None:
    body = {"key": "pg_" + "1" * 48, "tool": "echo", "tools": [{"name": "echo"}]}
    body.pop("tools" if path.endswith("dry-run") else "tool")
    resp = dry(gw, body, path)
    # the body names the error and the request it answers, nothing else
    assert resp.status_code == 404
    assert resp.json() == {"error": "API key not found", "requestId": resp.headers["x-request-id"]}


def test_a_dry_run_accepts_the_alias(gw: InProcessGateway) -> None:
    raw = gw.create_key(2)
    alias = f"dr-{uuid.uuid4().hex[:8]}"
    admin_post(gw, "/keys/alias", {"key": raw, "alias": alias})
    assert verdict(gw, {"key": alias, "tool": "echo"}) == verdict(gw, {"key": raw, "tool": "echo"})


def test_a_revoked_keys_alias_gets_the_revoked_verdict_not_a_404(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    alias = f"old-{uuid.uuid4().hex[:8]}"
    admin_post(gw, "/keys/alias", {"key": raw, "alias": alias})
    admin_post(gw, "/keys/revoke", {"key": raw})
    assert verdict(gw, {"key": alias, "tool": "echo"})["denyReason"] == "key_revoked"


def test_a_viewer_may_dry_run_and_nothing_is_published(gw: InProcessGateway) -> None:
    created = gw.client.post(
        "/admin/keys", json={"name": f"v-{uuid.uuid4().hex[:6]}", "role": "viewer"}, headers=gw.admin()
    )
    viewer = created.json()["key"]
    raw = gw.create_key(5)
    before = len(gw.events())
    assert dry(gw, {"key": raw, "tool": "echo"}, admin_key=viewer).status_code == 200
    assert (
        dry(gw, {"key": raw, "tools": [{"name": "echo"}]}, "/requests/dry-run/batch", admin_key=viewer).status_code
        == 200
    )
    assert len(gw.events()) == before
    assert gw.client.post("/requests/dry-run", json={"key": raw, "tool": "echo"}).status_code == 401


def test_in_shadow_mode_the_verdict_is_the_gates_and_says_the_call_would_go_through() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--shadow") as shadow:
        raw = shadow.create_key(10)
        admin_post(shadow, "/keys/suspend", {"key": raw})
        v = verdict(shadow, {"key": raw, "tool": "echo"})
        assert (v["allowed"], v["denyReason"], v["shadowMode"]) == (False, "key_suspended", True)
        assert "result" in shadow.call_tool("echo", {"text": "x"}, raw)
        assert shadow.balance(raw) == 10
