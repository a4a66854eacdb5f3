"""`tools/call_batch` through the real app (in-process, the echo server's double as its backend):
all-or-nothing billing, the aggregate credit check, parallel execution, refunds and the batch's limits.

"Nothing ran" is read from the server itself: a refused batch carries a `slow` call with a seconds
value no other call uses, and the server's `slow_calls` list of the slow calls it began must not show it.
tests/e2e/test_call_batch.py runs a batch and a batch's cancellation through the real CLI and server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch_support import MARK, batch, batch_config, call, gate_log, slow_calls_began, text, usage
from tests.inprocess import running_inprocess_gateway
from tests.support import Gateway, masked


def start(tmp_path: Path, *flags: str, **config: Any) -> Any:
    return running_inprocess_gateway("--config", batch_config(tmp_path, **config), *flags)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of the test's own, for tests that read its usage or request log."""
    with start(tmp_path) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for tests that look only at their own key's balance and answers."""
    with start(tmp_path_factory.mktemp("call-batch")) as gateway:
        yield gateway


def test_a_batch_each_call_of_which_is_affordable_but_not_all_together_is_refused_whole(gw: Gateway) -> None:
    raw = gw.create_key(10)
    answer = batch(gw, [call("slow", seconds=MARK), call("add", a=1, b=1), call("add", a=1, b=1)], raw)
    error = answer["error"]
    assert error["code"] == -32402 and "calls[2] (add)" in error["message"]
    data = error["data"]
    assert data["reason"] == "insufficient_credits" and data["failedIndex"] == 2
    assert data["batchCreditsRequired"] == 12 and data["creditsRemaining"] == 10
    assert "after 2 earlier call(s) of this batch costing 7" in error["message"]
    assert gw.balance(raw) == 10
    assert f"{MARK:g}" not in slow_calls_began(gw, raw)
    denies = gate_log(gw, "denied")
    assert [(e["tool"], e["denyReason"]) for e in denies] == [
        ("slow", "batch_rejected"),
        ("add", "batch_rejected"),
        ("add", "insufficient_credits"),
    ]
    assert all(not e["allowed"] for e in usage(gw) if e["tool"] != "slow_calls")


def test_exactly_affordable_batch_is_admitted_and_leaves_nothing(shared: Gateway) -> None:
    raw = shared.create_key(13)
    answer = batch(shared, [call("add", a=1, b=1), call("echo", text="x"), call("add", a=1, b=1)], raw)
    assert answer["result"]["totalCreditsCharged"] == 13 and answer["result"]["remainingCredits"] == 0
    assert shared.balance(raw) == 0


def test_a_call_the_keys_acl_denies_refuses_the_whole_batch(gw: Gateway) -> None:
    raw = gw.create_key(100, deniedTools=["echo"])
    answer = batch(gw, [call("slow", seconds=MARK), call("echo", text="no"), call("add", a=1, b=1)], raw)
    data = answer["error"]["data"]
    assert (data["reason"], data["failedIndex"], data["tool"]) == ("tool_not_allowed", 1, "echo")
    assert gw.balance(raw) == 100
    assert f"{MARK:g}" not in slow_calls_began(gw, raw)
    assert [e["denyReason"] for e in gate_log(gw, "denied")] == ["batch_rejected", "tool_not_allowed", "batch_rejected"]


def test_an_unknown_tool_refuses_the_batch_before_anything_is_charged(gw: Gateway) -> None:
    raw = gw.create_key(100)
    answer = batch(gw, [call("slow", seconds=MARK), call("no_such_tool")], raw)
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"] == {"failedIndex": 1, "tool": "no_such_tool"}
    assert "Unknown tool: no_such_tool" in answer["error"]["message"]
    assert gw.balance(raw) == 100
    assert f"{MARK:g}" not in slow_calls_began(gw, raw)


def test_a_batch_without_a_key_is_refused_at_its_first_call(shared: Gateway) -> None:
    data = batch(shared, [call("add", a=1, b=1)], None)["error"]["data"]
    assert (data["reason"], data["failedIndex"], data["httpStatus"]) == ("missing_api_key", 0, 401)


def test_the_calls_of_a_batch_run_at_the_same_time(shared: Gateway) -> None:
    """`meet` answers only once all three calls of its group are in progress together (it fails
    "alone" after 10 s otherwise): run one after the other, none of them could."""
    raw = shared.create_key(10)
    answer = batch(shared, [call("meet", group="batch-1", count=3) for _ in range(3)], raw)
    assert [text(r["result"]) for r in answer["result"]["results"]] == ["met", "met", "met"]
    assert shared.balance(raw) == 7


def test_a_failing_call_is_refunded_under_the_refund_policy_and_the_others_are_charged(tmp_path: Path) -> None:
    with start(tmp_path, "--refund-on-failure") as gw:
        raw = gw.create_key(20)
        results = batch(gw, [call("add", a=1, b=1), call("fail", reason="boom")], raw)["result"]
        fail = results["results"][1]
        assert fail["tool"] == "fail" and fail["result"]["isError"] is True and fail["creditsCharged"] == 0
        assert results["totalCreditsCharged"] == 5 and gw.balance(raw) == 20 - 5
        assert sorted((e["tool"], e["credits"]) for e in gate_log(gw, "allowed")) == [("add", 5), ("fail", 0)]


def test_without_the_refund_policy_a_failing_call_in_a_batch_is_charged(shared: Gateway) -> None:
    raw = shared.create_key(20)
    results = batch(shared, [call("fail", reason="boom")], raw)["result"]
    assert results["results"][0]["creditsCharged"] == 1 and shared.balance(raw) == 19  # the default price


def test_a_batch_over_the_rate_limit_is_refused_and_gives_its_window_back(tmp_path: Path) -> None:
    with start(tmp_path, "--rate-limit", "3") as gw:
        raw = gw.create_key(100)
        data = batch(gw, [call("add", a=1, b=1) for _ in range(4)], raw)["error"]["data"]
        assert (data["reason"], data["failedIndex"]) == ("rate_limited", 3)  # a batch of N counts N calls
        assert gw.balance(raw) == 100
        answer = batch(gw, [call("add", a=1, b=1) for _ in range(3)], raw)  # the refused batch used none
        assert answer["result"]["totalCreditsCharged"] == 15


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"calls": []}, "at least one call"),
        ({"calls": [call("echo", text="x")] * 51}, "at most 50 calls, got 51"),
        ({}, "needs params.calls"),
        ({"calls": [{"arguments": {}}]}, "calls[0] needs a name"),
        (
            {"calls": [call("echo", text="x"), {"name": "echo", "arguments": [1]}]},
            "calls[1].arguments must be an object",
        ),
    ],
)
def test_a_malformed_or_oversized_batch_is_invalid_params(
    shared: Gateway, params: dict[str, Any], complaint: str
) -> None:
    raw = shared.create_key(1000)
    error = shared.rpc("tools/call_batch", params, key=raw).json()["error"]
    assert error["code"] == -32602 and complaint in error["message"]
    assert shared.balance(raw) == 1000


def test_the_largest_batch_allowed_runs_whole(shared: Gateway) -> None:
    raw = shared.create_key(1000)
    results = batch(shared, [call("add", a=i, b=1) for i in range(50)], raw)["result"]["results"]
    assert [text(r["result"]) for r in results] == [str(i + 1) for i in range(50)]
    assert shared.balance(raw) == 1000 - 50 * 5


def test_shadow_mode_runs_a_batch_it_would_refuse_and_charges_nothing(tmp_path: Path) -> None:
    with start(tmp_path, "--shadow") as gw:
        raw = gw.create_key(1)
        results = batch(gw, [call("add", a=1, b=1), call("echo", text="x")], raw)["result"]
        assert [r["creditsCharged"] for r in results["results"]] == [0, 0]
        assert results["results"][0]["result"]["_meta"]["paygate"]["shadow"] == "shadow:insufficient_credits"
        assert gw.balance(raw) == 1


def test_batch_answers_carry_the_credit_headers(gw: Gateway) -> None:
    raw = gw.create_key(50)
    resp = gw.rpc("tools/call_batch", {"calls": [call("echo", text="a"), call("echo", text="b")]}, key=raw)
    assert resp.headers["x-credits-remaining"] == "44" and resp.json()["result"]["remainingCredits"] == 44
    assert {e["key"] for e in gate_log(gw, "allowed")} == {masked(raw)}
