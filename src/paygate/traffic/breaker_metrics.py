"""/metrics for the circuit breaker and the retry policy, read at scrape time from counts the services
keep anyway (nothing on the call path). Labels are bounded: breakers are per server prefix or per
listed tool, retry stats per admitted (known) tool."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.traffic.circuit import CircuitBreakers
from paygate.traffic.retry import Retries


class CircuitCollector(Collector):
    def __init__(self, circuits: CircuitBreakers) -> None:
        self.circuits = circuits

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "paygate_circuit_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open", labels=["breaker"]
        )
        refused = CounterMetricFamily(
            "paygate_circuit_rejections", "Calls refused (-32003) while a circuit breaker was open", labels=["breaker"]
        )
        opened = CounterMetricFamily("paygate_circuit_opened", "Times a circuit breaker opened", labels=["breaker"])
        for label, breaker in sorted(self.circuits.breakers.items()):
            state.add_metric([label], self.circuits.state_value(breaker))
            refused.add_metric([label], breaker.rejections)
            opened.add_metric([label], breaker.opened)
        yield state
        yield refused
        yield opened


class RetryCollector(Collector):
    def __init__(self, retries: Retries) -> None:
        self.retries = retries

    def collect(self) -> Iterable[Metric]:
        sent = CounterMetricFamily(
            "paygate_retries", "tools/call requests sent again by the retry policy", labels=["tool"]
        )
        gave_up = CounterMetricFamily(
            "paygate_retries_gave_up", "Calls still failing when their retries, budget or time ran out", labels=["tool"]
        )
        for tool, stats in sorted(self.retries.stats.items()):
            sent.add_metric([tool], stats.retries)
            gave_up.add_metric([tool], stats.gave_up)
        yield sent
        yield gave_up
        yield CounterMetricFamily(
            "paygate_retries_budget_refused", "Retries refused by the retry budget", value=self.retries.budget.refused
        )
