"""Settings of credentials that stand for a key (credentials/, oauth/; docs/tokens.md, docs/auth.md):
`Settings` inherits these fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from paygate.config_oauth import OAuthSettings

_CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class ExternalAuthConfig(BaseModel):
    """An authorization server elsewhere whose JWT access tokens this gateway accepts as a resource server."""

    model_config = _CAMEL

    issuer: str = Field(min_length=8, max_length=2048)  # exact `iss`; its metadata names the JWKS
    audience: str = Field(min_length=1, max_length=2048)  # this gateway's resource: `aud` must include it
    jwks_url: str | None = Field(default=None, max_length=2048)  # default: the issuer's metadata `jwks_uri`
    key_claim: str = Field(default="sub", min_length=1, max_length=100)  # its value is a key's alias
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1, max_length=10)
    refresh_seconds: float = Field(default=3600.0, ge=60, le=86_400)  # the JWKS is fetched again this often
    allow_private: bool = False  # fetch metadata and keys from loopback / private addresses (tests, labs)

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        wrong = [a for a in value if a not in ASYMMETRIC]
        if wrong:  # HS256 would let anyone who knows the shared secret mint tokens; "none" anyone at all
            raise ValueError(f"only public-key algorithms are accepted ({', '.join(ASYMMETRIC)}), not {wrong}")
        return value


class AuthSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    token_secret: str | None = Field(default=None, min_length=32, max_length=256)  # signs pgt_ tokens
    external_auth: ExternalAuthConfig | None = None
    oauth: OAuthSettings | None = None  # this gateway's own authorization server (config_oauth.py); None: off
