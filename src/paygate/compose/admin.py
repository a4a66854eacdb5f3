"""Builders for the public, usage, report and admin domains: each service is made here from the
runtime's components and handed to its router by `compose/routers.py`."""

from __future__ import annotations

from collections.abc import Callable

from paygate.analytics.engine import AnalyticsService
from paygate.analytics.feed import RollupFeed
from paygate.billing.usage import UsageService
from paygate.config import Settings
from paygate.public.service import PublicInfo
from paygate.reports.activity import ActivityLog
from paygate.reports.dry_run import DryRunner
from paygate.reports.service import ReportService
from paygate.runtime import Runtime
from paygate.webhooks.queue import health_counts


def build_public(rt: Runtime) -> PublicInfo:
    store = rt.store
    counts = (lambda: health_counts(store)) if rt.settings.webhook_url else None
    info = PublicInfo(
        rt.settings, rt.serving, rt.dispatcher, rt.billing.prices, lambda: rt.endpoint.inflight, rt.transport, counts
    )
    billing = rt.billing

    def follow_reload(s: Settings, changed: frozenset[str]) -> Callable[[], None]:
        def commit() -> None:  # after the billing commit (registered before this): its new price book
            info.prices = billing.prices
            info.webhook_counts = (lambda: health_counts(store)) if s.webhook_url else None

        return commit

    rt.on_reload.append(follow_reload)
    return info


def build_usage(rt: Runtime) -> UsageService:
    sessions = rt.sessions
    return UsageService(rt.store, rt.billing, rt.settings, rt.serving, rt.transport, lambda: len(sessions))


def build_reports(rt: Runtime) -> ReportService:
    return ReportService(
        rt.store,
        rt.billing,
        rt.keys,
        ActivityLog(rt.audit),
        rt.dispatcher.priced_tools,
        DryRunner(rt.billing, rt.dispatcher.tool_known),
    )


def build_analytics(rt: Runtime) -> AnalyticsService:
    """The reports' service, and the feed that sums every gated call into the store's rollups."""
    feed = RollupFeed(rt.store)
    rt.events.subscribe_batch(feed.on_batch)

    async def write_held() -> None:  # at shutdown: from now on every batch is written at once (the bus
        feed.interval = 0  # is flushed once more after the stop steps, before the store closes)
        feed.flush()

    rt.on_stop.append(write_held)
    service = AnalyticsService(rt.store, rt.billing, rt.events, rt.serving.started, rt.dispatcher.priced_tools)
    service.held = feed.flush
    return service
