"""`oauth {...}`: the OAuth 2.1 authorization server (paygate/oauth/, docs/auth.md). `Settings` inherits
the field; absent (None), the gateway has no OAuth endpoints and /mcp behaves as before."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

SCOPE_PATTERN = r"^tools:[A-Za-z0-9_.:/*-]{1,128}$"
DEFAULT_SCOPES = ("tools:*", "tools:read", "tools:write")


def _absolute_http_url(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
        raise ValueError(f"{what} must be an absolute http(s) URL without query or fragment")
    return value.rstrip("/")


class OAuthSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    # the authorization server's identifier (RFC 8414) and the base of its endpoints; None: each request's
    # own base URL (fine on one host name; set it behind a proxy or with several names)
    issuer: str | None = Field(default=None, max_length=2048)
    # this gateway's resource identifier (RFC 8707 audience); None: the issuer (or base URL) + "/mcp"
    resource: str | None = Field(default=None, max_length=2048)
    access_token_ttl: int = Field(default=3600, ge=60, le=86_400)
    refresh_token_ttl: int = Field(default=2_592_000, ge=300, le=31_536_000)
    authorization_code_ttl: int = Field(default=60, ge=10, le=600)
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES), min_length=1, max_length=100
    )
    max_clients: int = Field(default=1000, ge=1, le=100_000)
    # clients identified by the URL of their metadata document (fetched under the webhook SSRF rules)
    client_metadata_documents: bool = True
    # fetch those documents from loopback / private hosts, and over http: labs and tests only
    client_metadata_allow_private: bool = False

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        return _absolute_http_url(value, "issuer")

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str | None) -> str | None:
        return _absolute_http_url(value, "resource")
