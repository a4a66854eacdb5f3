"""The money rules' settings (paygate/rules, docs/money-rules.md). `Settings` inherits these fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_CAP = 1_000_000_000  # as the reference bounds its quota limits


class SpendCapsConfig(BaseModel):
    """`spendCaps`: the reference's fields and defaults (0 = no cap). The per-key hourly caps are the
    reference's `hourlyCallLimit` / `hourlyCreditLimit` (also read from `globalQuota`, as the reference
    reads them from a key's quota); an admin's POST /admin/spend-caps overrides all of them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    server_daily_credit_cap: int = Field(default=0, ge=0, le=MAX_CAP)
    server_daily_call_cap: int = Field(default=0, ge=0, le=MAX_CAP)
    hourly_call_limit: int | None = Field(default=None, ge=0, le=MAX_CAP)
    hourly_credit_limit: int | None = Field(default=None, ge=0, le=MAX_CAP)
    breach_action: Literal["deny", "suspend"] = "deny"
    auto_resume_after_seconds: int = Field(default=0, ge=0, le=365 * 86_400)


class RulesSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    spend_caps: SpendCapsConfig | None = None
