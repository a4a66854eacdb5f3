"""Lifetimes on a clock the test moves: codes, access and refresh tokens expire; the sweep forgets them a
day later; the token kind resolves to the key and tools, or says why not."""

from __future__ import annotations

from typing import Any

import pytest

from paygate.config_oauth import OAuthSettings
from paygate.credentials.resolver import Credential, Rejected
from paygate.keys.service import KeyService
from paygate.oauth.access import AccessTokens
from paygate.oauth.authorization import Authorizations
from paygate.oauth.clients import ClientRegistry, Registration
from paygate.oauth.errors import OAuthError
from paygate.oauth.grants import Grants
from paygate.oauth.records import CODES, KEEP_AFTER_EXPIRY, TOKENS, OAuthRecords
from paygate.oauth.server import OAuthServer
from paygate.oauth.tokens import pkce_matches, tools_of
from paygate.store.sqlite import SQLiteStore
from tests.api.oauth.flow import REDIRECT, pkce, query_of

BASE = "http://gw.test"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def parts(memory_store: SQLiteStore) -> dict[str, Any]:
    clock = Clock()
    server = OAuthServer(OAuthSettings(access_token_ttl=600, refresh_token_ttl=3600, authorization_code_ttl=30))
    records = OAuthRecords(memory_store)
    keys = KeyService(memory_store)
    auth = Authorizations(records, keys, server, memory_store)
    grants = Grants(records, server, lambda *a, **k: None)
    auth.now = grants.now = clock
    registry = ClientRegistry(records, keys, server.scopes, 10, lambda *a, **k: None)
    client = registry.register(Registration("t", [REDIRECT], "none"))
    raw = keys.create("holder", 100).raw
    return {
        "clock": clock,
        "auth": auth,
        "grants": grants,
        "records": records,
        "client": client["client_id"],
        "raw": raw,
        "tokens": AccessTokens(records, server),
        "store": memory_store,
    }


def _code(p: dict[str, Any], scope: str | None = None) -> tuple[str, str]:
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": p["client"],
        "redirect_uri": REDIRECT,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if scope:
        params["scope"] = scope
    auth: Authorizations = p["auth"]
    req = auth.check(params, BASE)
    location = auth.decide(req, True, p["raw"], auth.csrf_token("c", req), "c", BASE)
    assert query_of(location)["iss"] == BASE
    return query_of(location)["code"], verifier


def _exchange(p: dict[str, Any], code: str, verifier: str) -> dict[str, Any]:
    return p["grants"].token(  # type: ignore[no-any-return]
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": p["client"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        None,
    )


def test_a_code_expires(parts: dict[str, Any]) -> None:
    code, verifier = _code(parts)
    parts["clock"].t += 31
    with pytest.raises(OAuthError, match="expired"):
        _exchange(parts, code, verifier)


def test_an_access_token_resolves_then_expires(parts: dict[str, Any]) -> None:
    code, verifier = _code(parts, "tools:echo tools:read")
    tokens = _exchange(parts, code, verifier)
    kind: AccessTokens = parts["tokens"]
    now = parts["clock"].t
    got = kind.resolve(tokens["access_token"], now)
    assert isinstance(got, Credential) and got.kind == "oauth" and got.tools == frozenset({"echo"})
    assert got.scope_reason == "insufficient_scope"
    assert got.key_hash == parts["store"].list_keys()[0].key_hash and got.owner != got.key_hash
    refreshed = parts["grants"].token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": parts["client"]}, None
    )
    again = kind.resolve(refreshed["access_token"], now)
    assert isinstance(again, Credential) and again.owner == got.owner  # one grant, one owner: sessions survive refresh
    assert kind.resolve(tokens["access_token"], now + 601) == Rejected(
        "token_expired", "access token expired", bearer=True
    )
    assert isinstance(kind.resolve("pg_at_nothing", now), Rejected)


def test_a_refresh_token_expires(parts: dict[str, Any]) -> None:
    code, verifier = _code(parts)
    tokens = _exchange(parts, code, verifier)
    parts["clock"].t += 3601
    with pytest.raises(OAuthError, match="expired"):
        parts["grants"].token(
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": parts["client"]},
            None,
        )


def test_the_sweep_forgets_codes_and_tokens_a_day_after_they_expire(parts: dict[str, Any]) -> None:
    code, verifier = _code(parts)
    _exchange(parts, code, verifier)
    _code(parts)  # one never redeemed
    records: OAuthRecords = parts["records"]
    store: SQLiteStore = parts["store"]
    now = parts["clock"].t
    assert records.sweep(now + 3600 + KEEP_AFTER_EXPIRY - 1) == 3  # both codes, the access token
    assert len(store.doc_scan(CODES)) == 0 and len(store.doc_scan(TOKENS)) == 1
    assert records.sweep(now + 3600 + KEEP_AFTER_EXPIRY + 1) == 1
    assert store.doc_scan(TOKENS) == []


def test_scopes_to_tools() -> None:
    assert tools_of(["tools:*"]) is None
    assert tools_of(["tools:write", "tools:a"]) is None
    assert tools_of(["tools:read"]) == frozenset()
    assert tools_of(["tools:a", "tools:b", "tools:read"]) == frozenset({"a", "b"})


def test_pkce_is_s256_only() -> None:
    verifier, challenge = pkce()
    assert pkce_matches(verifier, challenge)
    assert not pkce_matches(challenge, challenge)  # "plain": the challenge as its own verifier
    assert not pkce_matches(verifier + "x", challenge)
    assert not pkce_matches("short", challenge)


def test_tokens_and_secrets_are_stored_as_digests(parts: dict[str, Any]) -> None:
    code, verifier = _code(parts)
    tokens = _exchange(parts, code, verifier)
    stored = repr([parts["store"].doc_items(kind) for kind in (CODES, TOKENS)])
    for raw in (code, tokens["access_token"], tokens["refresh_token"]):
        assert raw not in stored and raw[6:] not in stored
