"""paygate.metrics.LoopCounter: exposed exactly as prometheus_client's Counter, one add per inc()."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from paygate.metrics import LoopCounter, Metrics


def test_a_loop_counter_renders_byte_for_byte_as_a_prometheus_counter() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    spec = ("paygate_things", "Things done", ["tool", "status"])
    reference = Counter(*spec, registry=theirs)
    counter = LoopCounter(*spec, ours)
    quiet_spec = ("paygate_quiet", "Never used", ["reason"])  # no series yet: HELP and TYPE only
    Counter(*quiet_spec, registry=theirs)
    LoopCounter(*quiet_spec, ours)
    for labels, amount in [(("add", "allowed"), 1), (("echo", "denied"), 3), (("add", "allowed"), 2.5)]:
        reference.labels(*labels).inc(amount)
        counter.labels(*labels).inc(amount)
    reference.labels("other", "shadow")  # made, never incremented: a 0 sample
    counter.labels("other", "shadow")
    assert generate_latest(ours) == generate_latest(theirs)
    assert b'paygate_things_total{status="allowed",tool="add"} 3.5' in generate_latest(ours)


def test_labels_returns_the_same_series_and_inc_adds_to_it() -> None:
    counter = LoopCounter("paygate_x", "x", ["tool"], CollectorRegistry())
    series = counter.labels("add")
    assert counter.labels("add") is series
    series.inc()
    series.inc(4)
    assert series.value == 5 and counter.labels("echo").value == 0


def test_a_loop_counter_refuses_what_a_prometheus_counter_refuses() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("paygate_x", "x", ["tool", "status"], registry)
    with pytest.raises(ValueError):
        counter.labels("add").inc()  # one label value of two
    with pytest.raises(ValueError):
        counter.labels("add", "allowed").inc(-1)
    assert counter.labels("add", "allowed").value == 0
    with pytest.raises(ValueError):  # the same name twice in one registry
        LoopCounter("paygate_x", "again", ["tool"], registry)


def test_the_gateway_counters_keep_their_names_and_labels() -> None:
    m = Metrics()
    m.tool_calls_for("add", "allowed").inc()
    m.credits_charged_for("add").inc(7)
    m.denials_for("insufficient_credits").inc()
    m.rate_limit_hits_for("add").inc()
    m.refunds_for("add").inc()
    m.http_requests_for("POST", "/mcp", "200").inc()
    m.webhook_deliveries_for("failure").inc()
    text = m.render().decode()
    for line in [
        "# TYPE paygate_tool_calls_total counter",
        "# HELP paygate_tool_calls_total Total tool calls processed",
        'paygate_tool_calls_total{status="allowed",tool="add"} 1.0',
        'paygate_credits_charged_total{tool="add"} 7.0',
        'paygate_denials_total{reason="insufficient_credits"} 1.0',
        'paygate_rate_limit_hits_total{tool="add"} 1.0',
        'paygate_refunds_total{tool="add"} 1.0',
        'paygate_http_requests_total{method="POST",path="/mcp",status="200"} 1.0',
        'paygate_webhook_deliveries_total{result="failure"} 1.0',
    ]:
        assert line in text.splitlines(), line
    assert "_created" not in text
