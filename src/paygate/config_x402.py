"""Settings of x402 pay-per-call (paygate/x402/, docs/x402.md): a call without a key, or without enough
credits, may pay for itself in a stablecoin. Names are the reference's where it has them (`payTo`,
`network`, `asset`, `facilitatorUrl`, `creditsPerDollar`); the rest are ours."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

_CAIP2 = re.compile(r"^[a-z0-9-]{3,8}:[A-Za-z0-9_-]{1,64}$")
DEFAULT_FACILITATOR = "https://x402.org/facilitator"


class X402Config(BaseModel):
    """`x402 {…}` in the config file. Every price in credits becomes an amount of `asset` as
    ceil(credits * 10^assetDecimals / creditsPerDollar) atomic units (never less than 1)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    enabled: bool = True  # off: configured but not offered (POST /admin/x402 switches it at runtime)
    pay_to: str = Field(min_length=3, max_length=128)  # the address that receives the payments
    network: str = "eip155:84532"  # CAIP-2 chain id (eip155:8453 is Base, eip155:84532 Base Sepolia)
    asset: str = Field(default="0x036CbD53842c5426634e7929541eC2318f3dCF7e", min_length=3, max_length=128)  # token
    asset_decimals: int = Field(default=6, ge=0, le=30)  # USDC has 6
    asset_name: str = Field(default="USDC", min_length=1, max_length=64)  # the token's EIP-712 domain name
    asset_version: str = Field(default="2", min_length=1, max_length=16)  # … and version (USDC: "2")
    facilitator_url: str = Field(default=DEFAULT_FACILITATOR, max_length=2048)  # verifies and settles payments
    facilitator_auth_header: str | None = Field(default=None, max_length=4096)  # sent as Authorization; secret
    facilitator_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    credits_per_dollar: int = Field(default=100, ge=1, le=10**12)  # 100: one credit costs one cent
    max_timeout_seconds: int = Field(default=60, ge=5, le=3600)  # how long a signed payment may take to settle
    payment_ttl_seconds: int = Field(default=7 * 86_400, ge=60, le=366 * 86_400)  # used payments kept this long
    signal: Literal["result", "error"] = "result"  # how a call is told to pay (docs/x402.md: "Asking for payment")

    @field_validator("network")
    @classmethod
    def _caip2(cls, value: str) -> str:
        if not _CAIP2.match(value):
            raise ValueError("must be a CAIP-2 chain id such as eip155:8453")
        return value

    @field_validator("facilitator_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _ttl_covers_timeout(self) -> X402Config:
        if self.payment_ttl_seconds < self.max_timeout_seconds:
            raise ValueError(
                "paymentTtlSeconds must be at least maxTimeoutSeconds (a payment is remembered while valid)"
            )
        return self

    def public(self) -> dict[str, object]:
        """The settings as GET /admin/x402 shows them: everything but the facilitator's credential."""
        shown = self.model_dump(by_alias=True, exclude={"facilitator_auth_header"})
        shown["facilitatorAuth"] = self.facilitator_auth_header is not None
        return shown
