"""The keys and policy domains (and admin backup): their services, built and wired here, and their
routers, given exactly the services they use.

Wiring that used to hide in routers lives here, where it can be read in one place: auto-topup's
hot-path hook (`billing.after_charge`), the rotation followers (`keys.rekey_listeners`), tickers,
and the `backup.restored` subscriptions of the services that index documents.
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.admin.backup import BackupService
from paygate.admin.routes import backup
from paygate.compose.doc_checks import restore_doc_checks
from paygate.keys.auto_topup import AutoTopup
from paygate.keys.expiry import ExpiryScanner, ScannerConfig
from paygate.keys.import_export import KeyImportExport
from paygate.keys.lifecycle import KeyLifecycle
from paygate.keys.meta import KeyMeta
from paygate.keys.reservations import Reservations
from paygate.keys.routes import (
    auto_topup,
    bulk,
    crud,
    expiring,
    import_export,
    lifecycle,
    meta,
    portal,
    reservations,
    schedules,
    templates,
)
from paygate.keys.schedules import Schedules
from paygate.keys.templates import TemplateService
from paygate.policy.key_policy import KeyPolicy
from paygate.policy.memberships import GROUPS, TEAMS, MembershipService
from paygate.policy.plans import PlanService
from paygate.policy.routes import groups, key_policy, namespaces, plans, teams
from paygate.runtime import Runtime


def key_routers(rt: Runtime) -> dict[str, APIRouter]:
    keys, guard = rt.keys, rt.guard
    # Rate windows and quota counters follow a rotated key like every other follower: a failing
    # follower is logged, never turns the finished (durable) rotation into an error answer.
    keys.rekey_listeners.append(rt.billing.move_counters)
    template_service = TemplateService(rt.store, rt.events.publish)
    key_lifecycle = KeyLifecycle(keys)
    return {
        "keys": crud.router(guard, keys, template_service),
        "key_lifecycle": lifecycle.router(guard, keys, key_lifecycle),
        "portal_rotate": portal.client_router(keys, key_lifecycle),
        "templates": templates.router(guard, template_service),
        "bulk": bulk.router(guard, keys, template_service),
        "key_io": import_export.router(guard, KeyImportExport(keys)),
        "auto_topup": auto_topup.router(guard, keys, _auto_topup(rt)),
        "reservations": reservations.router(guard, keys, _reservations(rt)),
        "schedules": schedules.router(guard, keys, _schedules(rt)),
        "expiring": expiring.router(guard, _expiry_scanner(rt)),
        "key_meta": meta.router(guard, keys, KeyMeta(keys)),
    }


def _auto_topup(rt: Runtime) -> AutoTopup:
    service = AutoTopup(rt.store, rt.events.publish, rt.keys)
    rt.billing.after_charge.append(service.on_charge)  # the hot path: a few comparisons per charge
    return service


def _reservations(rt: Runtime) -> Reservations:
    service = Reservations(rt.store, rt.events.publish)
    service.recover()  # finish any move a crash interrupted, before anything reads balances
    _follow_keys(rt, service)
    return service


def _schedules(rt: Runtime) -> Schedules:
    service = Schedules(rt.store, rt.keys, rt.events.publish)
    _follow_keys(rt, service)
    return service


def _follow_keys(rt: Runtime, service: Reservations | Schedules) -> None:
    """Wire a ticking service whose documents belong to keys (holds, schedules)."""
    service.follow_rotations()  # documents a crash left on a rotated key go to its replacement
    rt.tickers.append(service.tick)
    rt.keys.rekey_listeners.append(service.on_rekey)
    rt.events.subscribe(service.on_event, ("backup.restored",))  # a restore rewrites the documents: re-read them


def _expiry_scanner(rt: Runtime) -> ExpiryScanner:
    scanner = ExpiryScanner(rt.store, rt.events.publish, ScannerConfig.from_settings(rt.settings), rt.keys)
    rt.tickers.append(scanner.tick)
    return scanner


def policy_routers(rt: Runtime) -> dict[str, APIRouter]:
    keys, guard = rt.keys, rt.guard
    return {
        "policy": key_policy.router(guard, keys, KeyPolicy(keys)),
        "groups": groups.router(guard, keys, MembershipService(keys, GROUPS)),
        "teams": teams.router(guard, keys, MembershipService(keys, TEAMS), rt.billing),
        "namespaces": namespaces.router(guard, keys),
        "plans": plans.router(guard, keys, PlanService(keys)),
    }


def backup_router(rt: Runtime) -> APIRouter:
    checks = restore_doc_checks(rt.settings.webhook_allow_private)
    return backup.router(rt.guard, BackupService(rt.keys, checks))
