"""Settings for the event side: webhooks, webhook filters, alert rules, audit retention and logs.

Kept apart from `config.py` so each domain's settings read as one block; `Settings` nests them
under the reference's flat config keys (webhookUrl, webhookFilters, alertRules …).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ALERT_TYPES = ("spending_threshold", "credits_low", "quota_warning", "key_expiry_soon", "rate_limit_spike")
AlertType = Literal["spending_threshold", "credits_low", "quota_warning", "key_expiry_soon", "rate_limit_spike"]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WebhookFilterConfig(_Model):
    """A routing rule: events of these types (or "*"), for keys with these prefixes, also go to `url`."""

    id: str | None = Field(default=None, max_length=100)  # the reference's filter id (the name is ours)
    name: str = Field(min_length=1, max_length=100)
    events: list[str] = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2048)
    secret: str | None = Field(default=None, min_length=1, max_length=256)
    key_prefixes: list[str] = Field(default_factory=list, max_length=50)
    active: bool = True


class AlertRuleConfig(_Model):
    type: AlertType
    threshold: float = Field(ge=0)
    cooldown_seconds: int = Field(default=300, ge=0, le=86_400 * 30)


class WebhookReplaySettings(BaseModel):
    """The admin replay queue (/admin/webhook-replay, docs/webhooks.md). `Settings` inherits these fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # retries a replayed batch gets (None: webhookMaxRetries); a replay request may give its own
    webhook_replay_max_retries: int | None = Field(default=None, ge=0, le=20)
    # dead letters (and remembered successful replays) older than this are dropped; 0: kept until purged
    webhook_replay_max_age_days: float = Field(default=30, ge=0, le=3650)
