"""Property: any mix of calls through the content controls (a request transform, a schema, guardrails that
block input, redact, and block output) conserves credits: what a key lost is exactly the sum of the
credits its gate.allow events report; a call a content control refuses is never charged, and a result
withheld on output is refunded in full."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api.content.support import GateEvents
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked

# (tool, arguments, what should happen): charged means the call ran and kept its charge
CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("echo", {"msg": "plain words"}, "charged"),
    ("echo", {"msg": "mail me at a@b.io"}, "charged"),  # redacted on input, still runs
    ("echo", {"msg": "card 4111 1111 1111 1111"}, "refused"),  # blocked on input
    ("echo", {"msg": "PROJECT-123 is secret"}, "refunded"),  # blocked on output
    ("echo", {"msg": 42}, "refused"),  # fails the schema (after the rename, text must be a string)
    ("echo", {}, "charged"),  # the transform's default fills text in
    ("add", {"a": 1, "b": 2}, "charged"),
    ("add", {"a": "x", "b": 2}, "charged"),  # no schema for add: the backend's own error, not refunded
    ("fail", {}, "charged"),  # a failed tool keeps its charge (refundOnFailure off)
]


@pytest.fixture(scope="module")
def cgw() -> Iterator[InProcessGateway]:
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:3,add:2,fail:1")
    with running_inprocess_gateway(*args) as gw:
        admin = gw.admin()
        transform = {
            "tool": "echo",
            "direction": "request",
            "operations": [
                {"op": "rename", "from": "msg", "to": "text"},
                {"op": "default", "path": "text", "value": "d"},
            ],
        }
        assert gw.client.post("/admin/transforms", json=transform, headers=admin).status_code == 200
        schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        assert (
            gw.client.post("/admin/tools/schema", json={"tool": "echo", "schema": schema}, headers=admin).status_code
            == 200
        )
        rules = [
            {"id": "pii_credit_card", "enabled": True, "action": "block", "scope": "input"},
            {"id": "pii_email", "enabled": True, "action": "redact", "scope": "input"},
            {"id": "codename", "pattern": "PROJECT-[0-9]{3}", "action": "block", "scope": "output"},
        ]
        for rule in rules:
            assert gw.client.post("/admin/guardrails", json=rule, headers=admin).status_code == 200
        yield gw


@pytest.fixture(scope="module")
def gate(cgw: InProcessGateway) -> GateEvents:
    return GateEvents(cgw)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from(range(len(CALLS))), min_size=1, max_size=12), initial=st.integers(0, 30))
def test_credits_lost_equal_credits_the_gate_events_report(
    cgw: InProcessGateway, gate: GateEvents, plan: list[int], initial: int
) -> None:
    key = cgw.create_key(initial)
    expected = initial
    for index in plan:
        tool, arguments, outcome = CALLS[index]
        before = cgw.balance(key)
        reply = cgw.rpc("tools/call", {"name": tool, "arguments": arguments}, key=key).json()
        price = {"echo": 3, "add": 2, "fail": 1}[tool]
        if outcome == "refused":
            assert reply["error"]["data"]["reason"] in ("guardrail_violation", "invalid_arguments"), reply
        elif before < price:
            assert reply["error"]["data"]["reason"] == "insufficient_credits", reply
            event("too few credits")
        elif outcome == "refunded":
            assert reply["error"]["data"] == {
                **reply["error"]["data"],
                "reason": "guardrail_violation",
                "scope": "output",
            }
        else:
            expected -= price
            assert "result" in reply, reply
        event(outcome)
    final = cgw.balance(key)
    assert final == expected
    reported = sum(e["credits"] for e in gate.allowed(masked(key)))
    assert initial - final == reported
