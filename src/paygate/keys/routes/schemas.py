"""Request bodies POST /keys and POST /topup share with POST /keys/bulk, and the one step that turns
a create request (optionally from a template) into the arguments of `KeyService.issue`.

Key fields share their types with the policy endpoints (/keys/acl, /keys/ip, /keys/quota, …,
`api/fields.py`): a key made with POST /keys or from a template holds exactly what those would store.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field, ValidationError, model_validator

from paygate.api.common import Body, KeyRefField
from paygate.api.fields import (
    MAX_EXPIRY_SECONDS,
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    IpList,
    QuotaLimits,
    Tags,
    ToolList,
    parse_expires_at,
)
from paygate.core.domain_errors import Invalid
from paygate.core.values import MAX_CREDITS
from paygate.keys.service import KeyService, NewKey
from paygate.keys.templates import TemplateService, key_defaults

# Template fields that are `POST /keys` fields of the same name (expiryTtlSeconds and autoTopup map specially).
TEMPLATE_KEY_FIELDS = frozenset(
    {"credits", "allowedTools", "deniedTools", "quota", "ipAllowlist", "spendingLimit", "tags", "namespace"}
)


class CreateKeyBody(Body):
    name: str = Field(default="unnamed", min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    allowed_tools: ToolList = Field(default_factory=list)
    denied_tools: ToolList = Field(default_factory=list)
    expires_in: int | None = Field(default=None, gt=0, le=MAX_EXPIRY_SECONDS)
    expires_at: str | None = Field(default=None, max_length=64)
    quota: QuotaLimits | None = None
    tags: Tags = Field(default_factory=dict)
    namespace: str = Field(default="default", min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)
    ip_allowlist: IpList = Field(default_factory=list)
    spending_limit: int = Field(default=0, ge=0, le=MAX_CREDITS)
    template: str | None = Field(default=None, pattern=NAME_PATTERN, description="a key template's name")

    @model_validator(mode="after")
    def _one_expiry(self) -> CreateKeyBody:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expiresIn or expiresAt, not both")
        return self


class KeyCredits(Body):
    key: KeyRefField
    credits: int = Field(gt=0, le=MAX_CREDITS)


def _parse_expiry(body: CreateKeyBody) -> float | None:
    now = time.time()
    if body.expires_in is not None:
        return now + body.expires_in
    return None if body.expires_at is None else parse_expires_at(body.expires_at, now)


def _with_template(templates: TemplateService, body: CreateKeyBody) -> tuple[CreateKeyBody, dict[str, Any] | None]:
    """The body with the template's fields as defaults (explicit fields win), and its autoTopup."""
    if body.template is None:
        return body, None
    defaults = key_defaults(templates.get(body.template))
    given = body.model_dump(by_alias=True, exclude_unset=True)
    merged = {k: v for k, v in defaults.items() if k in TEMPLATE_KEY_FIELDS}
    ttl = defaults.get("expiryTtlSeconds") or 0
    if ttl and "expiresIn" not in given and "expiresAt" not in given:
        merged["expiresIn"] = ttl
    merged.update(given)
    try:
        return CreateKeyBody.model_validate(merged), defaults.get("autoTopup")
    except ValidationError as exc:  # a template saved under older limits: the request is what is invalid
        raise Invalid(f"Invalid request: template {body.template!r} gives {exc.errors()[0]['msg']}") from exc


def create_key(keys: KeyService, templates: TemplateService, body: CreateKeyBody, who: str, **mark: Any) -> NewKey:
    """Resolve the request (template defaults, expiry) and issue the key: one `KeyService.issue` call."""
    body, auto_topup = _with_template(templates, body)
    expires_at = _parse_expiry(body)
    return keys.issue(
        body.name,
        body.credits,
        who,
        template=body.template,
        mark=mark,
        allowed_tools=body.allowed_tools,
        denied_tools=body.denied_tools,
        expires_at=expires_at,
        quota=body.quota.model_dump(by_alias=True) if body.quota else None,
        tags=body.tags,
        namespace=body.namespace,
        ip_allowlist=body.ip_allowlist,
        spending_limit=body.spending_limit,
        auto_topup=auto_topup,
    )
