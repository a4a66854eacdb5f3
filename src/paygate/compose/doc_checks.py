"""What a restore checks, per document kind, before it writes anything: every kind the gateway stores,
each against the request model of the route that writes it (and the service's own checks), so a
backup can only bring documents the API could have written. Built here because admin/ may not import
routers; `BackupService` refuses a kind with no check (no reader of it exists in this version).

Each check is `(doc_id, doc) -> problem or None`; a problem names the field (`allowedTools: …`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paygate.admin.backup import DocCheck
from paygate.alerts.balance import KIND as BALANCE_ALERT_DOC
from paygate.alerts.balance import balance_alert_doc_problem
from paygate.alerts.routes import AlertsBody
from paygate.alerts.rules import RuleError, rules_from_doc
from paygate.alerts.service import ALERT_DOC, RULES_ID
from paygate.api.common import Body
from paygate.api.stored_docs import model_problem, times_problem
from paygate.keys import reservations, schedules, templates
from paygate.keys.routes.reservations import ReserveBody
from paygate.keys.routes.schedules import TopupParams
from paygate.keys.routes.templates import TemplateBody
from paygate.oauth.stored import DOC_CHECKS as OAUTH_DOC_CHECKS
from paygate.payments import metering, stripe_ledger
from paygate.policy.memberships import GROUPS, TEAMS, TENANTS
from paygate.policy.routes import groups, teams, tenants
from paygate.rules import cost_tags
from paygate.traffic import circuit, retry, timeouts
from paygate.traffic.routes.circuit import CircuitChange
from paygate.traffic.routes.retry import RetryPolicyChange
from paygate.traffic.routes.timeouts import TimeoutsChange
from paygate.webhooks.checks import WebhookInvalid, clean_events, clean_prefixes, clean_url
from paygate.webhooks.routes.filters import FilterCreate, KeyWebhookBody
from paygate.webhooks.routing import FILTER_DOC, KEY_HOOK_DOC

Doc = dict[str, Any]


def _template(doc_id: str, doc: Doc) -> str | None:
    if doc.get("name") != doc_id:
        return "name: must equal the document id"
    fields = {k: v for k, v in doc.items() if k not in ("createdAt", "updatedAt")}
    return times_problem(doc, "createdAt", "updatedAt") or model_problem(TemplateBody, fields)


def _webhook_url(url: str, allow_private: bool) -> str | None:
    try:
        clean_url(url, allow_private)
    except WebhookInvalid as exc:
        return "url: " + str(exc).removeprefix("Invalid request: ")
    return None


def _filter(allow_private: bool) -> DocCheck:
    def check(doc_id: str, doc: Doc) -> str | None:
        if doc.get("id") != doc_id or not doc_id.startswith("wf_"):
            return "id: must equal the document id (wf_…)"
        fields = {k: v for k, v in doc.items() if k not in ("id", "createdAt", "updatedAt")}
        if fields.get("secret") is None:
            fields.pop("secret", None)  # stored as null when there is none
        problem = times_problem(doc, "createdAt", "updatedAt") or model_problem(FilterCreate, fields)
        if problem:
            return problem
        try:  # the service's own checks, as POST /webhooks/filters runs them
            clean_events(doc["events"])
            clean_prefixes(doc.get("keyPrefixes") or [])
        except WebhookInvalid as exc:
            return str(exc).removeprefix("Invalid request: ")
        return _webhook_url(doc["url"], allow_private)

    return check


def _key_hook(allow_private: bool) -> DocCheck:
    def check(doc_id: str, doc: Doc) -> str | None:
        if doc.get("keyHash") != doc_id:
            return "keyHash: must equal the document id"
        if not isinstance(doc.get("id"), str) or not doc["id"].startswith("kw_"):
            return "id: must be the webhook's id (kw_…)"
        extra = sorted(set(doc) - {"id", "keyHash", "url", "secret", "createdAt", "updatedAt"})
        if extra:
            return f"{extra[0]}: not a field of a key's webhook"
        fields = {"key": doc_id, "url": doc.get("url")}
        if doc.get("secret") is not None:
            fields["secret"] = doc["secret"]
        problem = times_problem(doc, "createdAt", "updatedAt") or model_problem(KeyWebhookBody, fields)
        return problem or _webhook_url(doc["url"], allow_private)

    return check


def _alert_rules(doc_id: str, doc: Doc) -> str | None:
    if doc_id != RULES_ID:
        return f"id: the alert rules are one document, {RULES_ID!r}"
    extra = sorted(set(doc) - {"rules", "updatedAt"})
    if extra:
        return f"{extra[0]}: not a field of the alert rules"
    problem = model_problem(AlertsBody, {"rules": doc.get("rules")})
    if problem:
        return problem
    try:  # the service's own checks (duplicates, percentages), as POST /alerts runs them
        rules_from_doc(doc)
    except RuleError as exc:
        return str(exc)
    return None


def _service_fields(
    doc_id: str, doc: Doc, service_check: Callable[[str, Doc], str | None], fields: frozenset[str], what: str
) -> str | None:
    """The fields the service itself sets, then no field it does not know."""
    problem = service_check(doc_id, doc)
    if problem:
        return problem
    extra = sorted(set(doc) - fields)
    return f"{extra[0]}: not a field of a {what}" if extra else None


def _reservation(doc_id: str, doc: Doc) -> str | None:
    problem = _service_fields(doc_id, doc, reservations.reservation_doc_problem, reservations.DOC_FIELDS, "reservation")
    if problem:
        return problem
    return model_problem(ReserveBody, {"key": doc["keyMasked"], "credits": doc.get("credits"), "memo": doc.get("memo")})


def _schedule(doc_id: str, doc: Doc) -> str | None:
    problem = _service_fields(doc_id, doc, schedules.schedule_doc_problem, schedules.DOC_FIELDS, "schedule")
    if problem:
        return problem
    if doc["action"] == "topup":
        return model_problem(TopupParams, doc["params"], "params")
    return None if not doc["params"] else f"params: {doc['action']} takes no params"


def _settings_doc(doc_id: str, fields: tuple[str, ...], model: type[Body]) -> DocCheck:
    """A control's one settings document (traffic/): its id, every field, and the route's model."""

    def check(have_id: str, doc: Doc) -> str | None:
        if have_id != doc_id:
            return f"id: these settings are one document, {doc_id!r}"
        missing = [f for f in fields if f not in doc]
        extra = sorted(set(doc) - {*fields, "updatedAt"})
        if missing or extra:
            return f"{(missing or extra)[0]}: {'missing' if missing else 'not a field of these settings'}"
        return times_problem(doc, "updatedAt") or model_problem(model, {f: doc[f] for f in fields})

    return check


def _retry_policy(doc_id: str, doc: Doc) -> str | None:
    problem = _settings_doc(retry.DOC_ID, tuple(retry.RetryPolicy().doc()), RetryPolicyChange)(doc_id, doc)
    if problem is None and doc["maxBackoffMs"] < doc["baseBackoffMs"]:
        return "maxBackoffMs: must be at least baseBackoffMs"
    return problem


def restore_doc_checks(allow_private: bool) -> dict[str, DocCheck]:
    """The checks `BackupService` runs besides its own (plans, admin keys): every other stored kind.
    `allow_private`: the webhookAllowPrivate setting (a restored webhook URL passes the same check)."""
    checks: dict[str, Callable[[str, Doc], str | None]] = {
        GROUPS.doc: groups.group_doc_problem,
        TEAMS.doc: teams.team_doc_problem,
        TENANTS.doc: tenants.tenant_doc_problem,
        templates.KIND: _template,
        FILTER_DOC: _filter(allow_private),
        KEY_HOOK_DOC: _key_hook(allow_private),
        ALERT_DOC: _alert_rules,
        BALANCE_ALERT_DOC: balance_alert_doc_problem,
        reservations.KIND: _reservation,
        schedules.KIND: _schedule,
        **OAUTH_DOC_CHECKS,
        **{kind: stripe_ledger.doc_check(kind) for kind in stripe_ledger.DOC_KINDS},
        metering.PENDING_DOC: metering.meter_doc_problem,
        metering.DEAD_DOC: metering.meter_doc_problem,
        circuit.KIND: _settings_doc(circuit.DOC_ID, ("threshold", "cooldownSeconds", "perTool"), CircuitChange),
        timeouts.KIND: _settings_doc(timeouts.DOC_ID, ("toolTimeoutMs", "tools"), TimeoutsChange),
        retry.KIND: _retry_policy,
        cost_tags.KIND: cost_tags.day_doc_problem,
    }
    return checks
