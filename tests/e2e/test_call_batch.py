"""`tools/call_batch` through the real CLI in front of our echo server: all-or-nothing billing, the
aggregate credit check, parallel execution, refunds and the batch's limits.

"Nothing ran" is read from the server itself: a refused batch carries a `slow` call with a seconds
value no other call uses, and the server's `slow_calls` list of the slow calls it began must not show it.
The rest of the batch rules run in-process: tests/api/test_call_batch.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch_support import batch, batch_config, call, gate_log, slow_calls_began, text, usage
from tests.support import Gateway, running_gateway, wait_until

pytestmark = pytest.mark.e2e


def start(tmp_path: Path, *flags: str, **config: Any) -> Any:
    return running_gateway("--config", batch_config(tmp_path, **config), *flags)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of the test's own, for tests that read its usage or request log."""
    with start(tmp_path) as gateway:
        yield gateway


def test_a_batch_runs_every_call_in_order_and_charges_the_sum_of_their_prices(gw: Gateway) -> None:
    raw = gw.create_key(100)
    answer = batch(gw, [call("add", a=2, b=3), call("echo", text="hi"), call("add", a=1, b=1)], raw)
    result = answer["result"]
    assert [(r["tool"], text(r["result"]), r["creditsCharged"]) for r in result["results"]] == [
        ("add", "5", 5),
        ("echo", "hi", 3),
        ("add", "2", 5),
    ]
    assert result["totalCreditsCharged"] == 13 and result["remainingCredits"] == 87
    assert gw.balance(raw) == 87
    rows = [(e["tool"], e["creditsCharged"], e["allowed"]) for e in usage(gw)]
    assert sorted(rows) == [("add", 5, True), ("add", 5, True), ("echo", 3, True)]  # one usage row per call
    allowed = gate_log(gw, "allowed")
    assert sorted((e["tool"], e["credits"]) for e in allowed) == [("add", 5), ("add", 5), ("echo", 3)]
    assert len({e["requestId"] for e in allowed}) == 1  # the batch's one HTTP request


def test_cancelling_a_batch_cancels_every_call_and_settles_each_under_the_refund_policy(tmp_path: Path) -> None:
    with start(tmp_path, "--refund-on-failure") as gw:
        raw = gw.create_key(20)
        session = gw.rpc(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        ).headers["mcp-session-id"]
        box: dict[str, Any] = {}

        def run() -> None:
            resp = gw.rpc(
                "tools/call_batch",
                {"calls": [call("slow", seconds=31), call("slow", seconds=32)]},
                key=raw,
                msg_id="batch-1",
                headers={"Mcp-Session-Id": session},
            )
            box.update(resp.json() if resp.content else {}, status=resp.status_code)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_until(lambda: all(s in slow_calls_began(gw, raw) for s in ("31", "32")), what="both calls to begin")
        assert gw.balance(raw) == 16  # both charged
        gw.client.post(
            "/mcp",
            headers={"Mcp-Session-Id": session, "X-API-Key": raw},  # the session is bound to the key now
            json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "batch-1"}},
        )
        thread.join(20)  # without the cancellation it would take 32 s
        assert not thread.is_alive() and box == {"status": 202}  # a cancelled request gets no answer
        wait_until(
            lambda: slow_calls_began(gw, raw).endswith(("31,32", "32,31")),
            what="the server to see both calls cancelled",
        )
        assert gw.balance(raw) == 20  # each cancelled call refunded, as --refund-on-failure says
