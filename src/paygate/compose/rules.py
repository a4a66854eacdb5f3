"""Money rules (paygate/rules, docs/money-rules.md): each built from Settings, hooked into the billing
service's gate facts (read only while a rule is set) and its refusals, and its admin router."""

from __future__ import annotations

import time

from fastapi import APIRouter

from paygate.rules.adaptive import AdaptiveRates
from paygate.rules.budgets import BudgetPolicies
from paygate.rules.metrics import SpendCapCollector
from paygate.rules.metrics_budgets import AdaptiveRateCollector, BudgetPolicyCollector
from paygate.rules.routes import adaptive as adaptive_routes
from paygate.rules.routes import budgets as budget_routes
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
    return {"spend_caps": spend_cap_routes.router(rt.guard, caps), **_budgets(rt), **_adaptive(rt)}


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
