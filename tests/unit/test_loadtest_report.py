"""The load test's arithmetic: nearest-rank percentiles, the thresholds (the reference's k6 defaults), and
what counts as an error."""

from __future__ import annotations

import httpx

from paygate.loadtest import Samples, Thresholds, _rpc_error, render


def test_percentiles_are_nearest_rank() -> None:
    s = Samples(latencies_ms=[float(v) for v in range(1, 101)])  # 1..100 ms
    assert (s.percentile(50), s.percentile(95), s.percentile(99), s.percentile(100)) == (50, 95, 99, 100)
    assert Samples().percentile(95) == 0


def test_each_threshold_fails_on_its_own() -> None:
    good = {"requests": 1000, "errors": 0, "rps": 500.0, "p95Ms": 20.0, "p99Ms": 40.0}
    assert Thresholds().failures(good) == []
    assert Thresholds().failures({**good, "p95Ms": 200.0}) == ["p95 200.0 ms >= 200 ms"]
    assert Thresholds().failures({**good, "p99Ms": 900.0}) == ["p99 900.0 ms >= 500 ms"]
    assert Thresholds().failures({**good, "errors": 50}) == ["error rate 5.0% >= 5%"]
    assert Thresholds().failures({**good, "rps": 99.0}) == ["request rate 99.0 req/s <= 100"]
    assert "error rate" in Thresholds().failures({**good, "requests": 0, "errors": 0})[0]  # nothing ran: a failure


def test_a_json_rpc_denial_is_an_error_named_by_its_reason() -> None:
    denied = httpx.Response(
        200,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32402, "message": "x", "data": {"reason": "insufficient_credits"}},
        },
    )
    assert _rpc_error(denied) == "JSON-RPC -32402 insufficient_credits"
    assert _rpc_error(httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {}})) is None
    assert _rpc_error(httpx.Response(200, text="event: message")) == "not JSON"


def test_the_table_says_pass_or_which_thresholds_failed() -> None:
    summary = {
        "requests": 3,
        "errors": 1,
        "errorReasons": {"HTTP 503": 1},
        "rps": 1.5,
        "p50Ms": 1,
        "p95Ms": 2,
        "p99Ms": 3,
    }
    report = {"scenarios": {"health_checks": summary}, "total": summary}
    text = render(report, ["p95 2 ms >= 1 ms"])
    assert "health_checks: 1 x HTTP 503" in text and text.endswith("FAIL: p95 2 ms >= 1 ms")
    assert render(report, []).endswith("PASS")
