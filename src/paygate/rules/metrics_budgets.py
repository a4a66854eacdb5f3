"""/metrics for the budget policies and adaptive rates, read at scrape time (nothing on the call path).
Labels are bounded: the deny reasons, the alert kinds, the policies' ids (at most MAX_POLICIES), the
adjustment directions."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.budgets import EXCEEDED, THROTTLED
from paygate.rules.adaptive import AdaptiveRates
from paygate.rules.budgets import BudgetPolicies


class BudgetPolicyCollector(Collector):
    def __init__(self, policies: BudgetPolicies) -> None:
        self.policies = policies

    def collect(self) -> Iterable[Metric]:
        bp = self.policies
        refused = CounterMetricFamily(
            "paygate_budget_policy_refusals",
            "Tool calls refused by a budget policy (before any charge)",
            labels=["reason"],
        )
        for reason in (EXCEEDED, THROTTLED):
            refused.add_metric([reason], bp.refused.get(reason, 0))
        yield refused
        alerts = CounterMetricFamily("paygate_budget_policy_alerts", "budget.alert events sent", labels=["kind"])
        for kind in ("daily", "monthly", "burn_rate"):
            alerts.add_metric([kind], bp.alerts.get(kind, 0))
        yield alerts
        spent = GaugeMetricFamily(
            "paygate_budget_policy_spent", "Credits a policy's target spent in the period", labels=["policy", "period"]
        )
        rate = GaugeMetricFamily(
            "paygate_budget_policy_burn_rate", "Credits/minute over the policy's window", labels=["policy"]
        )
        now = time.time()
        for p in bp.policies:
            p.counts.roll(now)
            spent.add_metric([p.id, "day"], p.counts.day_spent)
            spent.add_metric([p.id, "month"], p.counts.month_spent)
            rate.add_metric([p.id], p.counts.window_spent * 60 / p.counts.window_seconds)
        yield spent
        yield rate


class AdaptiveRateCollector(Collector):
    def __init__(self, adaptive: AdaptiveRates) -> None:
        self.adaptive = adaptive

    def collect(self) -> Iterable[Metric]:
        ar = self.adaptive
        adjustments = CounterMetricFamily(
            "paygate_adaptive_rate_adjustments", "Keys' rate limits tightened or boosted", labels=["direction"]
        )
        for direction, count in sorted(ar.adjustments.items()):
            adjustments.add_metric([direction], count)
        yield adjustments
        yield CounterMetricFamily(
            "paygate_adaptive_rate_evictions", "Tracked keys dropped (least recently seen)", value=ar.evictions
        )
        view = ar.view()
        keys = GaugeMetricFamily("paygate_adaptive_rate_keys", "Keys tracked, and adjusted now", labels=["state"])
        keys.add_metric(["tracked"], view["trackedKeys"])
        for direction in ("tighten", "boost"):
            keys.add_metric([direction], sum(1 for a in view["adjusted"] if a["direction"] == direction))
        yield keys
