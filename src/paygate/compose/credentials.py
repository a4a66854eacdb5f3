"""Credentials that stand for a key: scoped tokens (credentials/scoped.py), registered with billing's
`Credentials` so /mcp accepts them, with their admin routes."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.credentials.routes import tokens
from paygate.credentials.scoped import ScopedTokens
from paygate.runtime import Runtime


def credential_routers(rt: Runtime) -> dict[str, APIRouter]:
    scoped = ScopedTokens(rt.store, rt.events, rt.settings.token_secret)
    rt.billing.credentials.add(scoped)
    rt.tickers.append(scoped.tick)
    return {"tokens": tokens.router(rt.guard, rt.keys, scoped)}
