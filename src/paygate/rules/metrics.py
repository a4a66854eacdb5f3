"""/metrics for the money rules, read at scrape time from counts the services keep anyway (nothing on the
call path). Labels are bounded: the four cap names."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.rules.cost_tags import CostTags
from paygate.rules.quota_rules import QuotaRules
from paygate.rules.spend_caps import SpendCaps


class SpendCapCollector(Collector):
    def __init__(self, caps: SpendCaps) -> None:
        self.caps = caps

    def collect(self) -> Iterable[Metric]:
        caps = self.caps
        denied = CounterMetricFamily(
            "paygate_spend_cap_denials", "Tool calls refused by a spend cap (before any charge)", labels=["cap"]
        )
        for cap, count in sorted(caps.denied.items()):
            denied.add_metric([cap], count)
        yield denied
        yield CounterMetricFamily(
            "paygate_spend_cap_suspensions", "Keys suspended by breachAction: suspend", value=caps.suspensions
        )
        yield CounterMetricFamily(
            "paygate_spend_cap_auto_resumes", "Keys resumed after autoResumeAfterSeconds", value=caps.resumes
        )
        view = caps.view(time.time())["serverStats"]
        used = GaugeMetricFamily(
            "paygate_spend_cap_server_daily_used",
            "Today's (UTC) server-wide count the daily caps apply to",
            labels=["metric"],
        )
        used.add_metric(["calls"], view["dailyCalls"])
        used.add_metric(["credits"], view["dailyCredits"])
        yield used


class QuotaRuleCollector(Collector):
    """Labels bounded: the three actions."""

    def __init__(self, rules: QuotaRules) -> None:
        self.rules = rules

    def collect(self) -> Iterable[Metric]:
        denied = CounterMetricFamily(
            "paygate_quota_rule_denials", "Tool calls refused by a quota rule (before any charge)", labels=["action"]
        )
        for action, count in sorted(self.rules.denied.items()):
            denied.add_metric([action], count)
        yield denied
        yield CounterMetricFamily(
            "paygate_quota_rule_warnings", "Admitted calls answered with X-Quota-Warning", value=self.rules.warnings
        )
        yield GaugeMetricFamily("paygate_quota_rules", "Quota rules in force", value=len(self.rules.rules))


class CostTagCollector(Collector):
    """No tag names or values as labels: they are the callers' (unbounded by design of the feature)."""

    def __init__(self, tags: CostTags) -> None:
        self.tags = tags

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "paygate_cost_tagged_calls", "Settled tool calls attributed to cost tags", value=self.tags.tagged
        )
        yield CounterMetricFamily(
            "paygate_cost_tag_refusals",
            "Tool calls refused for their cost tags (invalid, missing required, past a limit), before any charge",
            value=self.tags.refused,
        )
        yield CounterMetricFamily(
            "paygate_cost_tag_overflow",
            "Calls counted under _overflow (a day's tag sets full)",
            value=self.tags.overflow,
        )
