"""Builders for the event side: the request log, the admin event stream hub, alerts and webhooks.

Each is built from the runtime's components and wired here: subscribed to the event bus, given its
ticker, start/stop and exit-signal hooks, rekey listener and metrics. Subscribers run in the order
they subscribe, which is the order `compose/routers.event_routers` calls these.
"""

from __future__ import annotations

import time

from paygate.alerts.balance import BalanceAlerts
from paygate.alerts.rules import Rule, RuleError, rules_from_config
from paygate.alerts.service import AlertService
from paygate.audit.service import AuditFilter, AuditService
from paygate.config import Settings
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.events.stream import EventStreamHub
from paygate.keys.templates import TemplateService
from paygate.policy.memberships import GROUPS, TEAMS, active_count
from paygate.reports.request_log import GATE_TYPES, RequestLog
from paygate.runtime import Runtime
from paygate.store.shared import redis_store
from paygate.webhooks.bootstrap import open_webhooks, prepare_reload
from paygate.webhooks.service import WebhookService

ADOPT_EVERY_SECONDS = 30.0


def start_request_log(size: int, events: EventHub, audit: AuditService) -> RequestLog:
    """A request log refilled from the audit log's newest gate events, then fed by the bus. The bus
    is flushed before the refill (by `audit.entries`), so no call is missed or counted twice."""
    request_log = RequestLog(size, before_read=events.flush)
    if size:
        request_log.load(reversed(audit.entries(AuditFilter(types=GATE_TYPES), size)))  # newest first
        events.subscribe_batch(request_log.record_batch)
    return request_log


def build_event_stream(rt: Runtime) -> EventStreamHub:
    """The admin SSE hub, an inline subscriber. uvicorn waits (up to 30 s) for open responses to finish
    *before* the lifespan's shutdown runs, so closing the streams on stop alone would hold every stop
    for that long: they end on the exit signal itself (exit_signals.py), and on stop as a fallback."""
    hub = EventStreamHub()
    rt.events.subscribe(hub.publish)
    rt.on_exit_signal.append(hub.shut)
    rt.on_stop.append(hub.stop)
    return hub


def config_rules(settings: Settings) -> list[Rule]:
    """`alertRules` from the config file, checked like the API's (a bad one stops the start)."""
    try:
        return rules_from_config(settings.alert_rules)
    except RuleError as exc:
        raise ValueError(f"alertRules: {exc}") from exc


def build_alerts(rt: Runtime) -> AlertService:
    """Alert rules evaluated by a deferred subscriber, swept by a ticker, re-read after a restore."""
    billing = rt.billing

    def daily_calls(key: KeyRecord, now: float) -> tuple[int, int]:
        quota = billing.policy_for(key).quota  # the effective quota: key, group, plan or global
        limit = int(quota.get("dailyCallLimit") or 0) if quota else 0
        return (billing.quotas.snapshot(key.key_hash, now).day_calls if limit else 0), limit

    service = AlertService(rt.store, rt.events, config_rules(rt.settings), daily_calls=daily_calls)
    rt.on_reload.append(  # hot reload (admin/reload.py): the file's rules, checked like at start
        lambda s, changed: service.replace_defaults(config_rules(s)) if "alertRules" in changed else None
    )
    rt.events.subscribe(service.on_event, ("backup.restored",))
    rt.events.subscribe_batch(service.on_batch)
    rt.tickers.append(service.tick)
    store, templates, queue = rt.store, TemplateService(rt.store), service.queue
    rt.metrics.bind_inventory(
        templates=templates.count,
        teams=lambda: active_count(store, TEAMS),
        admin_keys=rt.admin.active_count,
        groups=lambda: active_count(store, GROUPS),
        pending_alerts=lambda: len(queue),
    )
    return service


def build_balance_alerts(rt: Runtime) -> BalanceAlerts:
    """Key holders' low-balance alerts: a deferred subscriber (the keys a batch of calls names), a ticker
    (every alert, every few seconds), following rotated keys, re-read after a restore."""
    service = BalanceAlerts(rt.store, rt.events, credentials=rt.billing.credentials)
    rt.events.subscribe(service.on_event, ("backup.restored",))
    rt.events.subscribe_batch(service.on_batch)
    rt.tickers.append(service.tick)
    rt.keys.rekey_listeners.append(service.on_rekey)
    return service


def build_webhooks(rt: Runtime) -> WebhookService:
    """The webhook service (webhooks/bootstrap.open_webhooks), subscribed (deferred: a tool call never
    waits for a webhook), following key rotations, measured, and hooked into start/stop."""
    service = open_webhooks(rt.settings, rt.store, rt.events, rt.metrics)
    rt.on_reload.append(lambda s, changed: prepare_reload(service, s, changed))  # hot reload (admin/reload.py)
    rt.events.subscribe_batch(service.on_events)
    rt.keys.rekey_listeners.append(service.routes.on_rekey)
    rt.metrics.bind_webhook_gauges(service.queue_depth, service.dead_letter_count)
    for result in ("success", "failure"):  # both series exist from the start (dashboards, alerts)
        rt.metrics.webhook_deliveries_for(result)
    rt.on_start.append(service.start)
    rt.on_stop.append(service.stop)
    store = redis_store(rt.store)
    if store is not None:
        seen, adopted = [store.doc_writes], [time.monotonic()]

        def follow_other_instances(now: float) -> None:
            if store.doc_writes != seen[0]:  # filters and per-key URLs set on another instance
                seen[0] = store.doc_writes
                service.routes.reload()
            if time.monotonic() - adopted[0] >= ADOPT_EVERY_SECONDS:  # a dead instance's undelivered webhooks
                adopted[0] = time.monotonic()
                if store.adopt_outboxes():
                    service.queue.load(now)

        rt.tickers.append(follow_other_instances)
    return service
