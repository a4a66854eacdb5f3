"""The OAuth 2.1 authorization server (paygate/oauth/), built when `oauth {...}` is configured: its
services, its routers, the `pg_at_` token kind registered with the runtime's `Credentials`, the 401
challenge on /mcp, and the sweep of expired codes and tokens. Without the config block nothing is built
and every OAuth path is a 404."""

from __future__ import annotations

from fastapi import APIRouter

from paygate.oauth.access import AccessTokens, BearerChallenge
from paygate.oauth.authorization import Authorizations
from paygate.oauth.client_documents import ClientDocuments
from paygate.oauth.clients import ClientRegistry
from paygate.oauth.grants import Grants
from paygate.oauth.records import OAuthRecords
from paygate.oauth.routes import authorize, clients, metadata, token
from paygate.oauth.server import OAuthServer
from paygate.runtime import Runtime

SWEEP_SECONDS = 60.0
ROUTERS = ("oauth_metadata", "oauth_register", "oauth_clients", "oauth_authorize", "oauth_token")


def oauth_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings.oauth
    if settings is None:
        return {name: APIRouter() for name in ROUTERS}
    external = rt.settings.external_auth  # its tokens are accepted too (credentials/external.py): say so
    server = OAuthServer(settings, (external.issuer,) if external is not None else ())
    records = OAuthRecords(rt.store)
    fallback = f"http://{rt.settings.host}:{rt.settings.port}"
    tokens = AccessTokens(records, server)
    rt.billing.credentials.add(tokens)
    challenge = BearerChallenge(rt.billing.credentials, tokens, server, fallback)
    rt.endpoint.bearer_challenge = challenge
    rt.endpoint.scope_challenge = challenge.insufficient_scope
    registry = ClientRegistry(records, rt.keys, server.scopes, settings.max_clients, rt.events.publish)
    last_sweep = [0.0]
    documents = None
    if settings.client_metadata_documents:
        allow_private = settings.client_metadata_allow_private
        documents = ClientDocuments(records, server.scopes, settings.max_clients, allow_private)

    def sweep(now: float) -> None:  # about once a minute: a scan of the OAuth documents
        if now - last_sweep[0] >= SWEEP_SECONDS:
            last_sweep[0] = now
            records.sweep(now)

    rt.tickers.append(sweep)
    return {
        "oauth_metadata": metadata.router(server, fallback),
        "oauth_register": clients.client_router(registry),
        "oauth_clients": clients.admin_router(rt.guard, registry),
        "oauth_authorize": authorize.router(Authorizations(records, rt.keys, server, rt.store), documents, fallback),
        "oauth_token": token.router(Grants(records, server, rt.events.publish)),
    }
