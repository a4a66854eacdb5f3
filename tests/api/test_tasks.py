"""MCP tasks (2025-11-25): task-augmented tools/call run by the gateway, tasks/*, /admin/tasks.

Driven through the official `mcp` SDK client (legacy mode: the 2025-11-25 handshake and a session)
where it carries the types, and through plain JSON-RPC for the error paths."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CallToolRequest,
    CallToolRequestParams,
    CallToolResult,
    CancelTaskRequest,
    CancelTaskRequestParams,
    CancelTaskResult,
    CreateTaskResult,
    GetTaskPayloadRequest,
    GetTaskPayloadRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    GetTaskResult,
    ListTasksRequest,
    ListTasksResult,
    PaginatedRequestParams,
    TaskMetadata,
)

from tests.echo_backend import EchoBackend
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@asynccontextmanager
async def sdk(gw: InProcessGateway, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http,
        Client(streamable_http_client(f"{gw.url}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


def create(
    gw: InProcessGateway, key: str, tool: str, arguments: dict[str, Any], ttl: int | None = None
) -> CreateTaskResult:
    """The SDK validates every tools/call answer as a CallToolResult (it leaves tasks out), so the task-augmented
    call goes as plain JSON-RPC (the SDK's own request model builds it) and its answer is checked against the
    spec's CreateTaskResult here."""
    params = CallToolRequestParams(name=tool, arguments=arguments, task=TaskMetadata(ttl=ttl))
    body = CallToolRequest(params=params).model_dump(by_alias=True, mode="json", exclude_none=True)
    reply = gw.rpc("tools/call", body["params"], key=key).json()
    return CreateTaskResult.model_validate(reply["result"], by_name=False)


async def get(client: Client, task_id: str) -> GetTaskResult:
    return await client.session.send_request(
        GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)), GetTaskResult
    )


async def result_of(client: Client, task_id: str) -> CallToolResult:
    """tasks/result, validated as the original request's result (as GetTaskPayloadResult's docs say)."""
    request = GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id))
    return await client.session.send_request(request, CallToolResult)


def rpc(gw: InProcessGateway, method: str, params: Any, key: str | None) -> dict[str, Any]:
    return dict(gw.rpc(method, params, key=key).json())


def task_call(gw: InProcessGateway, key: str, tool: str, arguments: dict[str, Any], **task: Any) -> dict[str, Any]:
    return rpc(gw, "tools/call", {"name": tool, "arguments": arguments, "task": task}, key)


def wait_status(gw: InProcessGateway, key: str, task_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = rpc(gw, "tasks/get", {"taskId": task_id}, key)["result"]
        if got["status"] == status or time.monotonic() > deadline:
            assert got["status"] == status, got
            return dict(got)
        time.sleep(0.01)


async def test_initialize_advertises_tasks(gw: InProcessGateway) -> None:
    async with sdk(gw, gw.create_key(5)) as client:
        caps = client.server_capabilities.tasks
        assert caps is not None and caps.list is not None and caps.cancel is not None
        assert caps.requests is not None and caps.requests.tools is not None and caps.requests.tools.call is not None
        tools = (await client.list_tools()).tools  # taskSupport absent would mean "forbidden"
        assert tools and all(t.execution is not None and t.execution.task_support == "optional" for t in tools)


async def test_create_poll_and_result_charged_as_a_call(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    async with sdk(gw, key) as client:
        created = create(gw, key, "add", {"a": 2, "b": 3}, ttl=60_000)
        task = created.task
        assert task.status == "working" and task.ttl == 60_000 and task.poll_interval
        assert task.task_id.startswith("task_")
        payload = await result_of(client, task.task_id)  # blocks until terminal
        assert payload.structured_content == {"result": 5} and not payload.is_error
        assert payload.meta is not None
        assert payload.meta["io.modelcontextprotocol/related-task"] == {"taskId": task.task_id}
        got = await get(client, task.task_id)
        assert got.status == "completed" and got.task_id == task.task_id
        listed = await client.session.send_request(ListTasksRequest(), ListTasksResult)
        assert [t.task_id for t in listed.tasks] == [task.task_id]
        slow = create(gw, key, "slow", {"seconds": 30}).task
        request = CancelTaskRequest(params=CancelTaskRequestParams(task_id=slow.task_id))
        cancelled = await client.session.send_request(request, CancelTaskResult)
        assert cancelled.status == "cancelled" and cancelled.status_message
    assert gw.balance(key) == 9  # the tool's price, once; tasks/* are free


def test_a_backend_failure_fails_the_task_and_follows_the_refund_policy(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    task_id = task_call(gw, key, "fail", {})["result"]["task"]["taskId"]
    wait_status(gw, key, task_id, "failed")
    payload = rpc(gw, "tasks/result", {"taskId": task_id}, key)["result"]
    assert payload["isError"] is True
    assert gw.balance(key) == 9  # refundOnFailure is off here: kept, as for a plain tools/call


def test_a_denied_gate_creates_no_task_and_charges_nothing(gw: InProcessGateway) -> None:
    key = gw.create_key(0)
    reply = task_call(gw, key, "echo", {"text": "x"})
    assert reply["error"]["code"] == -32402 and reply["error"]["data"]["reason"] == "insufficient_credits"
    assert rpc(gw, "tasks/list", {}, key)["result"]["tasks"] == []
    assert gw.balance(key) == 0
    assert task_call(gw, "pg_nope", "echo", {"text": "x"})["error"]["data"]["reason"] == "invalid_api_key"
    acl = gw.create_key(5, deniedTools=["echo"])
    assert task_call(gw, acl, "echo", {"text": "x"})["error"]["data"]["reason"] == "tool_not_allowed"
    assert gw.balance(acl) == 5 and rpc(gw, "tasks/list", {}, acl)["result"]["tasks"] == []


def test_cancel_stops_the_backend_call_and_refunds(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    task_id = task_call(gw, key, "slow", {"seconds": 30})["result"]["task"]["taskId"]
    assert gw.balance(key) == 9
    cancelled = rpc(gw, "tasks/cancel", {"taskId": task_id}, key)["result"]
    assert cancelled["status"] == "cancelled" and cancelled["taskId"] == task_id
    assert gw.balance(key) == 10  # refunded in full (billTaskCreation off)
    again = rpc(gw, "tasks/cancel", {"taskId": task_id}, key)
    assert again["error"]["code"] == -32602 and "terminal" in again["error"]["message"]
    err = rpc(gw, "tasks/result", {"taskId": task_id}, key)["error"]
    assert err["code"] == -32800
    echo = gw.rt.backend if gw.rt is not None else None
    assert isinstance(echo, EchoBackend)
    deadline = time.monotonic() + 10
    while 30 not in echo.cancelled and time.monotonic() < deadline:  # the backend call was cancelled too
        time.sleep(0.01)
    assert 30 in echo.cancelled
    audit = gw.client.get("/audit", params={"types": "task.cancelled"}, headers=gw.admin()).json()
    assert any(e["metadata"].get("taskId") == task_id for e in audit["events"]), audit


def test_another_key_cannot_see_or_touch_a_task(gw: InProcessGateway) -> None:
    owner, other = gw.create_key(10), gw.create_key(10)
    task_id = task_call(gw, owner, "slow", {"seconds": 30})["result"]["task"]["taskId"]
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        reply = rpc(gw, method, {"taskId": task_id}, other)
        assert reply["error"]["code"] == -32602 and reply["error"]["message"] == "Task not found", method
    assert rpc(gw, "tasks/list", {}, other)["result"]["tasks"] == []
    assert rpc(gw, "tasks/get", {"taskId": task_id}, None)["error"]["data"]["reason"] == "missing_api_key"
    assert rpc(gw, "tasks/get", {"taskId": task_id}, owner)["result"]["status"] == "working"
    rpc(gw, "tasks/cancel", {"taskId": task_id}, owner)


async def test_list_is_paginated(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    ids = [task_call(gw, key, "echo", {"text": str(i)})["result"]["task"]["taskId"] for i in range(5)]
    store = gw.rt.dispatcher.tasks.store  # type: ignore[union-attr]
    store.page_size = 2
    try:
        seen: list[str] = []
        async with sdk(gw, key) as client:
            cursor = None
            for _ in range(5):
                page = await client.session.send_request(
                    ListTasksRequest(params=PaginatedRequestParams(cursor=cursor)), ListTasksResult
                )
                assert len(page.tasks) <= 2
                seen += [t.task_id for t in page.tasks]
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert seen == ids
        assert rpc(gw, "tasks/list", {"cursor": "bogus"}, key)["error"]["code"] == -32602
    finally:
        store.page_size = 50


def test_ttl_is_capped_and_expired_tasks_are_swept(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    task = task_call(gw, key, "slow", {"seconds": 30}, ttl=10**12)["result"]["task"]
    assert task["ttl"] == gw.settings.max_task_ttl_ms
    short = task_call(gw, key, "slow", {"seconds": 30}, ttl=5000)["result"]["task"]
    assert task_call(gw, key, "echo", {"text": "x"}, ttl="soon")["error"]["code"] == -32602
    assert gw.balance(key) == 8
    gw.tick(time.time() + 6)  # past the short one's ttl: cancelled (refunded), then gone
    assert rpc(gw, "tasks/get", {"taskId": short["taskId"]}, key)["error"]["message"] == "Task not found"
    assert rpc(gw, "tasks/get", {"taskId": task["taskId"]}, key)["result"]["status"] == "working"
    assert gw.balance(key) == 9
    rpc(gw, "tasks/cancel", {"taskId": task["taskId"]}, key)


def test_admin_lists_gets_counts_and_cancels(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    task_id = task_call(gw, key, "slow", {"seconds": 30})["result"]["task"]["taskId"]
    listed = gw.client.get("/admin/tasks", params={"status": "running"}, headers=gw.admin()).json()
    assert task_id in [t["id"] for t in listed["tasks"]]
    assert listed["stats"]["working"] >= 1 and listed["stats"]["running"] == listed["stats"]["working"]
    one = gw.client.get("/admin/tasks", params={"taskId": task_id}, headers=gw.admin()).json()
    assert one["toolName"] == "slow" and one["creditsCharged"] == 1 and one["arguments"] == {"seconds": 30}
    assert gw.client.get("/admin/tasks", params={"taskId": "nope"}, headers=gw.admin()).status_code == 404
    assert gw.client.get("/admin/tasks").status_code == 401
    bad = gw.client.post("/admin/tasks", json={"action": "bogus"}, headers=gw.admin())
    assert bad.status_code == 400 and bad.json()["error"] == "Unknown action. Use cancel/stats."
    done = gw.client.post("/admin/tasks", json={"action": "cancel", "taskId": task_id}, headers=gw.admin())
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert gw.balance(key) == 10
    again = gw.client.post("/admin/tasks", json={"action": "cancel", "taskId": task_id}, headers=gw.admin())
    assert again.status_code == 404
    stats = gw.client.post("/admin/tasks", json={"action": "stats"}, headers=gw.admin()).json()
    assert stats["stats"]["cancelled"] >= 1 and stats["totalTasks"] == stats["stats"]["total"]
    metrics = gw.client.get("/metrics").text
    assert 'paygate_tasks{status="cancelled"}' in metrics


@pytest.fixture
def small(tmp_path: Path) -> Iterator[InProcessGateway]:
    config = {"maxTasksPerKey": 2, "maxTasks": 3, "billTaskCreation": True, "refundOnFailure": False}
    with running_inprocess_gateway(
        "--server", ECHO_COMMAND, "--rate-limit", "0", "--config", write_config(tmp_path, config)
    ) as gateway:
        yield gateway


def test_limits_refuse_before_any_charge_and_finished_tasks_make_room(small: InProcessGateway) -> None:
    gw = small
    a, b = gw.create_key(10), gw.create_key(10)
    first = task_call(gw, a, "slow", {"seconds": 30})["result"]["task"]["taskId"]
    task_call(gw, a, "slow", {"seconds": 30})
    refused = task_call(gw, a, "echo", {"text": "x"})
    assert refused["error"]["code"] == -32005 and refused["error"]["data"]["reason"] == "too_many_tasks"
    assert gw.balance(a) == 8
    task_call(gw, b, "slow", {"seconds": 30})
    assert task_call(gw, b, "echo", {"text": "x"})["error"]["data"]["maxTasks"] == 3  # 3 in all
    # billTaskCreation: the cancelled task keeps its charge (refundOnFailure is off)
    assert rpc(gw, "tasks/cancel", {"taskId": first}, a)["result"]["status"] == "cancelled"
    assert gw.balance(a) == 8
    assert "result" in task_call(gw, a, "echo", {"text": "x"})  # the cancelled one made room


CALLS: dict[str, tuple[str, dict[str, Any]]] = {"cancel": ("slow", {"seconds": 30}), "fail": ("fail", {})}
OPS = st.lists(st.sampled_from(["complete", "fail", "cancel", "cancel_late"]), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, credits=st.integers(min_value=0, max_value=6))
def test_credits_are_conserved_over_task_lifecycles(gw: InProcessGateway, ops: list[str], credits: int) -> None:
    """Whatever mix of tasks is created, completed, failed and cancelled (refundOnFailure off, billTaskCreation
    off): each task ends up costing what its outcome says — 1 for completed or failed, 0 for cancelled
    while working — no denied creation costs anything, and the key's balance is exactly what is left."""
    key = gw.create_key(credits)
    expected, made = credits, []
    for op in ops:
        tool, arguments = (
            ("slow", {"seconds": 30}) if op == "cancel" else ("fail", {}) if op == "fail" else ("echo", {})
        )
        reply = task_call(gw, key, tool, {"text": "x"} if tool == "echo" else arguments)
        if "error" in reply:
            assert expected < 1 and reply["error"]["data"]["reason"] == "insufficient_credits"
            continue
        task_id = reply["result"]["task"]["taskId"]
        made.append(task_id)
        if op == "cancel":
            assert rpc(gw, "tasks/cancel", {"taskId": task_id}, key)["result"]["status"] == "cancelled"
        else:
            rpc(gw, "tasks/result", {"taskId": task_id}, key)  # until it is terminal
            expected -= 1
            if op == "cancel_late":  # a finished task cannot be cancelled: its charge stands
                assert rpc(gw, "tasks/cancel", {"taskId": task_id}, key)["error"]["code"] == -32602
        assert gw.balance(key) == expected
    for task_id in made:  # every task is terminal, and its record says what it cost
        one = gw.client.get("/admin/tasks", params={"taskId": task_id}, headers=gw.admin()).json()
        assert one["creditsCharged"] == (0 if one["status"] == "cancelled" else 1), one
    charged = sum(
        gw.client.get("/admin/tasks", params={"taskId": t}, headers=gw.admin()).json()["creditsCharged"] for t in made
    )
    assert gw.balance(key) == credits - charged == expected
