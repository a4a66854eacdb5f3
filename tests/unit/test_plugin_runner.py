"""The plugins' hooks run isolated: a raising, hanging or nonsensical hook is logged, counted and
ignored; a price a plugin sets is clamped at 0."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from paygate.config_plugins import PluginSpec
from paygate.plugins import CallInfo, Deny, GateDecision, Plugin, ToolReply
from paygate.plugins.loader import load_one
from paygate.plugins.metrics import PluginCollector
from paygate.plugins.runner import PluginRunner

CALL = CallInfo("add", {"a": 1, "b": 2}, "pg_abc...xyz", "k", "req-1")


def runner(*refs: str, timeout_ms: int | None = None) -> PluginRunner:
    return PluginRunner([load_one(PluginSpec(module=r, timeout_ms=timeout_ms)) for r in refs])


class Price(Plugin):
    name = "price"

    def __init__(self, value: Any) -> None:
        self.value = value

    async def transform_price(self, call: CallInfo, price: int) -> Any:
        return self.value


def with_price(value: Any) -> PluginRunner:
    from paygate.plugins.loader import Loaded

    plugin = Price(value)
    return PluginRunner(
        [Loaded(plugin, "price", "0", {"transform_price": plugin.transform_price}, 1.0, frozenset(), "t")]
    )


def test_a_raising_hook_is_logged_with_the_plugin_name_counted_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    r = runner("tests.plugin_samples:Broken", "tests.plugin_samples:Gatekeeper")
    with caplog.at_level(logging.WARNING, "paygate.plugins"):
        denied = asyncio.run(r.before_gate(CallInfo("echo", {"text": "forbidden"}, None, None, "r")))
        price = asyncio.run(r.transform_price(CALL, lambda: 4))
    assert denied == Deny("forbidden text")  # the next plugin still had its say
    assert price is None  # as if the broken plugin were absent
    assert r.errors[("broken", "before_gate")] == 1 and r.errors[("broken", "transform_price")] == 1
    assert "plugin broken: before_gate failed (ignored): RuntimeError: before_gate broke" in caplog.text
    assert "pg_abc" not in caplog.text and "'a': 1" not in caplog.text  # neither the key nor the arguments


def test_a_hanging_hook_is_bounded_by_its_timeout() -> None:
    r = runner("tests.plugin_samples:Broken")  # timeout_ms = 50
    started = time.monotonic()
    replaced = asyncio.run(r.after_tool_call(CALL, ToolReply({"content": []}, None, 1)))
    assert replaced is None
    assert time.monotonic() - started < 5  # not forever: 50 ms and the cancellation
    assert r.timeouts[("broken", "after_tool_call")] == 1 and r.errors[("broken", "after_tool_call")] == 1


def test_an_answer_of_the_wrong_type_is_ignored_and_counted() -> None:
    r = runner("tests.plugin_samples:Broken")
    assert asyncio.run(r.before_tool_call(CALL)) is None
    assert r.errors[("broken", "before_tool_call")] == 1


@pytest.mark.parametrize(("value", "expected"), [(7, 7), (0, 0), (-5, 0), (None, None), (1.5, None), (True, None)])
def test_a_price_is_clamped_at_zero_and_only_whole_credits_are_taken(value: Any, expected: int | None) -> None:
    assert asyncio.run(with_price(value).transform_price(CALL, lambda: 4)) == expected


def test_the_price_is_quoted_only_when_a_plugin_transforms_prices() -> None:
    asked: list[int] = []
    r = runner("tests.plugin_samples:Recorder")
    assert asyncio.run(r.transform_price(CALL, lambda: asked.append(1) or 4)) is None
    assert asked == []


def test_after_gate_sees_every_decision_and_on_deny_the_refusals() -> None:
    r = runner("tests.plugin_samples:Recorder")
    plugin = r.plugins[0].plugin
    allowed = GateDecision("add", True, None, 3, "pg_…", "r1")
    denied = GateDecision("add", False, "insufficient_credits", 3, "pg_…", "r2")
    asyncio.run(r.decided(allowed))
    asyncio.run(r.decided(denied))
    assert [d["request_id"] for d in plugin.decisions] == ["r1", "r2"]
    assert [d["request_id"] for d in plugin.denies] == ["r2"]


def test_start_in_order_stop_in_reverse_and_a_failing_one_does_not_stop_the_others() -> None:
    order: list[str] = []

    def make(name: str, fail: bool) -> Any:
        class P(Plugin):
            async def on_start(self) -> None:
                order.append(f"start {name}")
                if fail:
                    raise RuntimeError("no")

            async def on_stop(self) -> None:
                order.append(f"stop {name}")

        p = P()
        p.name = name
        return p

    from paygate.plugins.loader import Loaded

    plugins = [make("a", True), make("b", False)]
    r = PluginRunner(
        [
            Loaded(p, p.name, "0", {"on_start": p.on_start, "on_stop": p.on_stop}, 1.0, frozenset(), p.name)
            for p in plugins
        ]
    )
    asyncio.run(r.start())
    asyncio.run(r.stop())
    assert order == ["start a", "start b", "stop b", "stop a"]
    assert r.errors[("a", "on_start")] == 1


def test_the_view_and_the_metrics_name_the_plugins_and_their_errors() -> None:
    r = runner("tests.plugin_samples:Broken", "tests.plugin_samples:Recorder")
    asyncio.run(r.before_gate(CALL))
    view = r.view()
    assert view["count"] == 2
    first = view["plugins"][0]
    assert (first["name"], first["hooks"][:2], first["errors"]) == ("broken", ["beforeGate", "beforeToolCall"], 1)
    families = {m.name: m for m in PluginCollector(r).collect()}
    assert families["paygate_plugins_total"].samples[0].value == 2
    errors = {
        (s.labels["plugin"], s.labels["hook"]): s.value
        for s in families["paygate_plugin_errors"].samples
        if s.name.endswith("_total")
    }
    assert errors == {("broken", "before_gate"): 1}
