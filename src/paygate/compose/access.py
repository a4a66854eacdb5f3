"""Global access rules on /mcp (docs/access-rules.md): the IP access rules and request signing, each a
check the endpoint runs before the body is parsed (mcp/endpoint.py), and its admin router; and tenants
(docs/tenants.md), which the gate reads from the store's documents (billing/facts.py)."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.billing.facts import ClientFacts
from paygate.core.netaddr import client_ip
from paygate.policy.ip_access import VIOLATIONS, IpAccess, IpAccessCollector
from paygate.policy.routes import ip_access as ip_access_routes
from paygate.policy.routes import signing as signing_routes
from paygate.policy.routes import tenants as tenant_routes
from paygate.policy.signing import Signing, SigningCollector
from paygate.policy.tenants import TenantCollector, Tenants
from paygate.runtime import Runtime

RELOAD_SECONDS = 5.0  # how soon an instance follows an admin change made elsewhere (a fleet's peers)


def access_routers(rt: Runtime) -> dict[str, APIRouter]:
    access = IpAccess(rt.store, rt.events)
    signing = Signing(rt.store, rt.events)
    access.reload()
    signing.reload()
    rt.endpoint.ip_access = access
    rt.endpoint.signing = signing
    trusted = tuple(rt.settings.trusted_proxies)

    def watch(client: ClientFacts, reason: str) -> None:
        if reason in VIOLATIONS and access.rules.auto_block.enabled:
            forwarded = client.forwarded_for
            access.violation(
                client_ip(client.peer, forwarded.decode("latin-1") if forwarded else None, trusted), reason
            )

    rt.dispatcher.gate_events.deny_watch = watch

    def reread(_: object) -> None:  # a restore rewrote the documents
        access.reload()
        signing.reload()

    rt.events.subscribe(reread, ("backup.restored",))
    last = [0.0]

    def reload(now: float) -> None:
        if now - last[0] >= RELOAD_SECONDS:
            last[0] = now
            access.reload()
            signing.reload()

    rt.tickers.append(reload)
    rt.metrics.registry.register(IpAccessCollector(access))
    rt.metrics.registry.register(SigningCollector(signing))
    tenants = Tenants(rt.keys, rt.billing.quotas)
    rt.metrics.registry.register(TenantCollector(tenants))
    return {
        "tenants": tenant_routes.router(rt.guard, rt.keys, tenants),
        "ip_access": ip_access_routes.router(rt.guard, access),
        "signing": signing_routes.router(rt.guard, rt.keys, signing),
    }
