"""Credentials that stand for a key: scoped tokens (credentials/scoped.py) and an external authorization
server's JWTs (credentials/external.py), registered with billing's `Credentials` so /mcp accepts them."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.config_auth import ExternalAuthConfig
from paygate.credentials.routes import tokens
from paygate.credentials.scoped import ScopedTokens
from paygate.runtime import Runtime


def credential_routers(rt: Runtime) -> dict[str, APIRouter]:
    scoped = ScopedTokens(rt.store, rt.events, rt.settings.token_secret)
    rt.billing.credentials.add(scoped)
    rt.tickers.append(scoped.tick)
    if rt.settings.external_auth is not None:
        add_external_issuer(rt, rt.settings.external_auth)
    return {"tokens": tokens.router(rt.guard, rt.keys, scoped)}


def add_external_issuer(rt: Runtime, config: ExternalAuthConfig) -> None:
    """JWTs of an authorization server elsewhere, billed to the key whose alias their claim names."""
    from paygate.credentials.external import ExternalTokens  # PyJWT and cryptography: only when configured

    def key_of_alias(alias: str) -> str | None:
        record = rt.keys.by_alias(alias)
        return record.key_hash if record is not None else None

    external = ExternalTokens(config, key_of_alias)
    rt.billing.credentials.add(external)
    rt.tickers.append(external.tick)
    rt.on_start.append(external.refresh)
