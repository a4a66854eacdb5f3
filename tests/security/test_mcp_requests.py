"""Issue 11 on POST /mcp: batch bounds (count, response size), requests sent as notifications,
notifications sent as requests, null ids, deeply nested params, and the safety net between a charge
and its answer. In-process gateway; the backend's traffic is recorded to prove what never reached it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, write_config

BUDGET = 65_536  # the smallest maxBatchResponseBytes allowed


class Recorder:
    """Every request and notification the gateway sends its (in-process echo) backend."""

    def __init__(self, gw: InProcessGateway) -> None:
        assert gw.rt is not None
        self.backend = gw.rt.backend
        self.requests: list[tuple[str, Any]] = []
        self.notifications: list[str] = []
        self.fail_with: Exception | None = None
        request, notify = self.backend.request, self.backend.notify

        async def recorded_request(method: str, params: Any, timeout: float) -> Any:
            self.requests.append((method, params))
            if self.fail_with is not None:
                raise self.fail_with
            return await request(method, params, timeout)

        async def recorded_notify(method: str, params: Any = None) -> None:
            self.notifications.append(method)
            await notify(method, params)

        self.backend.request = recorded_request  # type: ignore[method-assign]
        self.backend.notify = recorded_notify  # type: ignore[method-assign]

    def calls(self) -> list[str]:
        return [p["name"] for m, p in self.requests if m == "tools/call"]

    def clear(self) -> None:
        self.requests.clear()
        self.notifications.clear()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(
        tmp_path_factory.mktemp("mcp-requests"),
        {
            "serverCommand": PYTHON,
            "serverArgs": [ECHO_SERVER],
            "globalRateLimitPerMin": 0,
            "maxBatchResponseBytes": BUDGET,
        },
    )
    with running_inprocess_gateway("--config", config) as gateway:
        yield gateway


@pytest.fixture
def backend(gw: InProcessGateway) -> Iterator[Recorder]:
    recorder = Recorder(gw)
    yield recorder
    del recorder.backend.request, recorder.backend.notify  # the class's own methods again


def post(gw: InProcessGateway, payload: Any, key: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
    return gw.client.post(
        "/mcp", content=json.dumps(payload, separators=(",", ":")).encode(), headers=headers
    )  # (orjson: 254 levels)


def call(msg_id: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


# --- item 1: batches --------------------------------------------------------------------------------


def test_a_batch_over_max_batch_size_is_refused_whole(gw: InProcessGateway, backend: Recorder) -> None:
    key = gw.create_key(10)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in range(20_000)]
    resp = post(gw, batch, key)
    assert resp.status_code == 400
    body = resp.json()
    assert body["id"] is None and body["error"]["code"] == -32600 and "100" in body["error"]["message"]
    mixed = [call(1, "add", {"a": 1, "b": 1}), *batch[:100]]  # 101 entries: the call does not run either
    assert post(gw, mixed, key).status_code == 400
    assert gw.balance(key) == 10 and backend.requests == []
    assert len(post(gw, batch[:100], key).json()) == 100  # at the limit: served


def test_entries_after_the_response_budget_are_not_run_or_charged(gw: InProcessGateway, backend: Recorder) -> None:
    key = gw.create_key(10)
    batch = [call(i, "big_output", {"kilobytes": 20}) for i in range(4)]  # each answer ~40 KB
    batch.append({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1}})
    answers = post(gw, batch, key).json()
    assert [("result" in a, a["id"]) for a in answers] == [(True, 0), (True, 1), (False, 2), (False, 3)]
    assert all(a["error"]["code"] == -32600 and "too large" in a["error"]["message"] for a in answers[2:])
    assert backend.calls() == ["big_output", "big_output"] and backend.notifications == []
    assert gw.balance(key) == 8  # the two answered calls, and only those, were paid


# --- item 5: a request sent as a notification ---------------------------------------------------------


def test_a_tools_call_without_an_id_is_refused_and_never_reaches_the_backend(
    gw: InProcessGateway, backend: Recorder
) -> None:
    key = gw.create_key(5)
    for who in (None, key):
        resp = post(gw, {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "add", "arguments": {}}}, who)
        assert resp.status_code == 400
        assert resp.json() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Invalid Request: requests need an id"},
        }
    for method in ("prompts/get", "resources/read", "sampling/createMessage"):
        assert post(gw, {"jsonrpc": "2.0", "method": method, "params": {}}, key).status_code == 400
    assert backend.requests == [] and backend.notifications == [] and gw.balance(key) == 5


def test_in_a_batch_a_request_without_an_id_gets_no_answer_and_does_not_run(
    gw: InProcessGateway, backend: Recorder
) -> None:
    key = gw.create_key(5)
    batch = [
        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 1}}},
        call(7, "add", {"a": 2, "b": 2}),
    ]
    answers = post(gw, batch, key).json()
    assert [a["id"] for a in answers] == [7] and answers[0]["result"]["structuredContent"] == {"result": 4}
    assert backend.calls() == ["add"] and backend.notifications == [] and gw.balance(key) == 4


def test_real_notifications_are_still_accepted(gw: InProcessGateway, backend: Recorder) -> None:
    resp = post(gw, {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
    assert resp.status_code == 202 and backend.notifications == ["notifications/roots/list_changed"]


# --- item 18: notifications with an id, null ids --------------------------------------------------------


def test_a_notification_with_an_id_is_an_invalid_request(gw: InProcessGateway, backend: Recorder) -> None:
    for method in ("notifications/roots/list_changed", "notifications/cancelled", "notifications/initialized"):
        resp = post(gw, {"jsonrpc": "2.0", "id": 3, "method": method, "params": {}})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == -32600, method
        assert resp.json()["id"] == 3
    assert backend.requests == [] and backend.notifications == []


def test_a_null_id_is_refused_before_any_charge(gw: InProcessGateway, backend: Recorder) -> None:
    key = gw.create_key(3)
    resp = post(gw, call(None, "add", {"a": 1, "b": 2}), key)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == -32600 and resp.json()["id"] is None
    assert gw.balance(key) == 3 and backend.requests == []


# --- item 9: deep params, and the safety net ------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"text": "x"}
    for _ in range(levels - 1):
        value = {"d": value}
    return value


def test_params_nested_too_deeply_are_refused_before_any_charge(gw: InProcessGateway, backend: Recorder) -> None:
    key = gw.create_key(10)
    for levels in (70, 253, 300, 600):
        reply = post(gw, call(1, "echo", nested(levels)), key).json()
        assert reply["error"]["code"] == -32602 and "nested too deeply" in reply["error"]["message"], levels
    assert gw.balance(key) == 10 and backend.requests == []
    # 62 levels of arguments (64 of params) are fine: charged and served as before.
    assert "result" in post(gw, call(2, "echo", nested(62)), key).json()
    assert gw.balance(key) == 9


def test_an_unexpected_error_after_the_charge_is_refunded_and_answered_as_json_rpc(
    gw: InProcessGateway, backend: Recorder
) -> None:
    key = gw.create_key(5)
    backend.fail_with = RuntimeError("a bug between the charge and the answer")
    resp = post(gw, call(1, "add", {"a": 1, "b": 2}), key)
    assert resp.status_code == 200
    assert resp.json()["error"]["code"] == -32603 and "not charged" in resp.json()["error"]["message"]
    batch_call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call_batch"}
    batch_call["params"] = {"calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}] * 2}
    assert post(gw, batch_call, key).status_code == 200
    assert gw.balance(key) == 5 and len(backend.calls()) == 3
