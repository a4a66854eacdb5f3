"""The reference's settings that later issues implement (policy, payments):
accepted now under the reference's names and checked for their types, so a reference config starts
unchanged and a wrong type is refused today rather than when the feature lands. Nothing reads them
yet: `validate` and the start warning say they are not enforced (validation.LATER_KEYS).
`Settings` inherits these fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from paygate.config_x402 import X402Config


class LaterSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # policy and content (issue 19)
    webhook_ssrf_at_delivery: bool | None = None  # here SSRF is always checked at delivery too
    # payments (issue 17: Stripe is config_stripe.py, x402 config_x402.py), REST wrapping
    x402: X402Config | None = None  # enforced (paygate/x402/, docs/x402.md): not a later key
    open_api_spec: str | None = None
    open_api_base_url: str | None = None
