"""The plugins' Prometheus series: `paygate_plugins_total` (the reference's gauge: plugins loaded) and
`paygate_plugin_errors_total{plugin,hook}` (hook calls that raised, timed out or answered nonsense)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.plugins.runner import PluginRunner


class PluginCollector(Collector):
    def __init__(self, runner: PluginRunner) -> None:
        self.runner = runner

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("paygate_plugins_total", "Plugins loaded", value=len(self.runner.plugins))
        errors = CounterMetricFamily(
            "paygate_plugin_errors", "Plugin hook calls that failed or timed out (ignored)", labels=["plugin", "hook"]
        )
        for (plugin, hook), count in sorted(self.runner.errors.items()):
            errors.add_metric([plugin, hook], count)
        yield errors
