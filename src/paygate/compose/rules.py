"""Money rules (paygate/rules, docs/money-rules.md): each built from Settings, hooked into the billing
service's gate facts (read only while a rule is set) and its refusals, and its admin router."""

from __future__ import annotations

import time

from fastapi import APIRouter

from paygate.rules.adaptive import AdaptiveRates
from paygate.rules.budgets import BudgetPolicies
from paygate.rules.cost_tag_stage import CostTagStage
from paygate.rules.cost_tags import CostTags
from paygate.rules.metrics import CostTagCollector, QuotaRuleCollector, SpendCapCollector
from paygate.rules.metrics_budgets import AdaptiveRateCollector, BudgetPolicyCollector
from paygate.rules.quota_rules import QuotaRules
from paygate.rules.quota_stage import QuotaRuleStage
from paygate.rules.routes import adaptive as adaptive_routes
from paygate.rules.routes import budgets as budget_routes
from paygate.rules.routes import cost_tags as cost_tag_routes
from paygate.rules.routes import quota_rules as quota_rule_routes
from paygate.rules.routes import spend_caps as spend_cap_routes
from paygate.rules.spend_caps import SpendCaps, defaults_from
from paygate.runtime import Runtime
from paygate.store.shared import redis_store


def rules_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    caps = SpendCaps(
        rt.store, rt.events, rt.keys, rt.billing.facts, defaults_from(settings.spend_caps, settings.global_quota)
    )
    caps.load(time.time())
    rt.billing.after_denial.append(caps.on_denial)
    rt.keys.rekey_listeners.append(caps.on_rekey)
    rt.tickers.append(caps.tick)
    if redis_store(rt.store) is not None:  # a peer's admin change is followed within RELOAD_SECONDS
        rt.tickers.append(caps.reload)
    rt.metrics.registry.register(SpendCapCollector(caps))
    return {
        "spend_caps": spend_cap_routes.router(rt.guard, caps),
        **_budgets(rt),
        **_adaptive(rt),
        "quota_rules": _quota_rules(rt),
        "cost_tags": _cost_tags(rt),
    }


def _budgets(rt: Runtime) -> dict[str, APIRouter]:
    policies = BudgetPolicies(rt.store, rt.events, rt.keys, rt.billing.facts)
    policies.load(time.time())
    rt.billing.after_denial.append(policies.on_denial)
    rt.keys.rekey_listeners.append(policies.on_rekey)
    if redis_store(rt.store) is not None:
        rt.tickers.append(policies.reload)
    rt.metrics.registry.register(BudgetPolicyCollector(policies))
    return {"budget_policies": budget_routes.router(rt.guard, policies)}


def _adaptive(rt: Runtime) -> dict[str, APIRouter]:
    adaptive = AdaptiveRates(rt.store, rt.events, rt.billing.facts)
    adaptive.load()
    rt.keys.rekey_listeners.append(adaptive.on_rekey)
    if redis_store(rt.store) is not None:
        rt.tickers.append(adaptive.reload)
    rt.metrics.registry.register(AdaptiveRateCollector(adaptive))
    return {"adaptive_rates": adaptive_routes.router(rt.guard, adaptive)}


def _quota_rules(rt: Runtime) -> APIRouter:
    rules = QuotaRules(rt.store, rt.events, rt.billing.facts)
    rules.load(time.time())
    rt.billing.after_denial.append(rules.on_denial)
    rt.keys.rekey_listeners.append(rules.on_rekey)
    traffic = rt.dispatcher.traffic
    if redis_store(rt.store) is not None:
        rt.tickers.append(rules.reload)
    stage = QuotaRuleStage(rules)
    traffic.add_call_stage(stage)

    def changed() -> None:  # the stage joins or leaves the chain as rules come and go
        stage.follow()
        traffic.refresh()

    rules.on_change = changed
    rt.metrics.registry.register(QuotaRuleCollector(rules))
    return quota_rule_routes.router(rt.guard, rules, rt.keys)


def _cost_tags(rt: Runtime) -> APIRouter:
    tags = CostTags(rt.store, rt.events)
    tags.load(time.time())
    rt.keys.rekey_listeners.append(tags.on_rekey)
    rt.tickers.append(tags.tick)
    if redis_store(rt.store) is not None:
        rt.tickers.append(tags.reload)

    async def flush() -> None:  # what the last seconds attributed is written before the process ends
        tags.flush(time.time())

    rt.on_stop.append(flush)
    traffic = rt.dispatcher.traffic
    stage = CostTagStage(tags, rt.billing.resolve)
    traffic.add_call_stage(stage)
    traffic.add_check(stage)

    def changed() -> None:
        stage.follow()
        traffic.refresh()

    tags.on_change = changed
    rt.metrics.registry.register(CostTagCollector(tags))
    return cost_tag_routes.router(rt.guard, tags, rt.keys)
