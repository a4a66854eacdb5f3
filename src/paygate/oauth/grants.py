"""The token endpoint's grants (authorization code, refresh token) and revocation (RFC 7009).

Every check runs before anything is written, so a refused request changes nothing, with two deliberate
exceptions that are theft signals (OAuth 2.1 §4.1.3, §4.3.1): a code presented a second time revokes the
tokens it was exchanged for, and a rotated refresh token presented again revokes its whole family (every
token descended from the same authorization).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from paygate.oauth.errors import OAuthError
from paygate.oauth.records import CODES, TOKENS, Doc, OAuthRecords
from paygate.oauth.server import OAuthServer, normal
from paygate.oauth.tokens import ACCESS_PREFIX, REFRESH_PREFIX, digest, new_token, parse_scopes, pkce_matches, same

Publish = Callable[..., None]
ACTOR = "oauth"


def _refused(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


class Grants:
    def __init__(self, records: OAuthRecords, server: OAuthServer, publish: Publish) -> None:
        self.records = records
        self.server = server
        self.publish = publish
        self.now: Callable[[], float] = time.time

    # client authentication (RFC 6749 §2.3.1: in the body or HTTP Basic, not both) -------------------------
    def client(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> Doc:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if basic is not None:
            if secret is not None or (client_id is not None and client_id != basic[0]):
                raise OAuthError("invalid_request", "client credentials both in the body and the Authorization header")
            client_id, secret = basic
        client = self.records.client(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "unknown client")
        expected = client.get("secretHash")
        if expected is not None and (not secret or not same(digest(secret), str(expected))):
            raise OAuthError("invalid_client", "client authentication failed")
        return client

    # POST /oauth/token ------------------------------------------------------------------------------------
    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", "grant_type: authorization_code or refresh_token")
        client = self.client(form, basic)
        if grant not in client.get("grantTypes", []):
            raise OAuthError("unauthorized_client", f"this client may not use {grant}")
        if grant == "authorization_code":
            return self._code(client, form)
        return self._refresh(client, form)

    def _code(self, client: Doc, form: Mapping[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        code_hash = digest(code)
        doc = self.records.code(code_hash)
        if doc is None or doc.get("clientId") != client["id"]:
            raise _refused("unknown authorization code")
        if doc.get("status") != "fresh":
            self._revoke_family(code_hash, "code_reused")
            raise _refused("authorization code already used: the tokens it gave are revoked")
        if float(doc["expiresAt"]) <= self.now():
            raise _refused("authorization code expired")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None and len(client.get("redirectUris", [])) != 1:
            raise OAuthError("invalid_request", "redirect_uri is required")
        if redirect_uri is not None and redirect_uri != doc["redirectUri"]:
            raise _refused("redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier")
        if not verifier or not pkce_matches(verifier, str(doc["challenge"])):
            raise _refused("code_verifier does not match the code_challenge")
        self._check_resource(form, str(doc["resource"]))
        if not self.records.claim(CODES, code_hash, doc, "used"):  # another request redeemed it meanwhile
            self._revoke_family(code_hash, "code_reused")
            raise _refused("authorization code already used")
        return self._issue(
            client, str(doc["keyHash"]), list(doc["scopes"]), str(doc["resource"]), code_hash, "authorization_code"
        )

    def _refresh(self, client: Doc, form: Mapping[str, str]) -> dict[str, Any]:
        raw = form.get("refresh_token")
        if not raw:
            raise OAuthError("invalid_request", "refresh_token is required")
        token_hash = digest(raw)
        doc = self.records.token(token_hash)
        if doc is None or doc.get("type") != "refresh" or doc.get("clientId") != client["id"]:
            raise _refused("unknown refresh token")
        if doc.get("revoked"):
            raise _refused("refresh token revoked")
        if doc.get("status") != "active":
            self._revoke_family(str(doc["family"]), "refresh_reused")
            raise _refused("refresh token already used: every token of this authorization is revoked")
        if float(doc["expiresAt"]) <= self.now():
            raise _refused("refresh token expired")
        scopes = list(doc["scopes"])
        if form.get("scope"):
            narrowed = parse_scopes(form["scope"], scopes)
            if narrowed is None or not set(narrowed) <= set(scopes):
                raise OAuthError("invalid_scope", "a refresh may narrow the scopes, never widen them")
            scopes = narrowed
        self._check_resource(form, str(doc["audience"]))
        if not self.records.claim(TOKENS, token_hash, doc, "rotated"):
            self._revoke_family(str(doc["family"]), "refresh_reused")
            raise _refused("refresh token already used")
        return self._issue(
            client, str(doc["keyHash"]), scopes, str(doc["audience"]), str(doc["family"]), "refresh_token"
        )

    @staticmethod
    def _check_resource(form: Mapping[str, str], audience: str) -> None:
        if form.get("resource") and normal(form["resource"]) != normal(audience):
            raise OAuthError("invalid_target", "resource is not the one this grant is for")

    def _issue(
        self, client: Doc, key_hash: str, scopes: list[str], audience: str, family: str, grant: str
    ) -> dict[str, Any]:
        now = self.now()
        settings = self.server.settings
        common = {"clientId": client["id"], "keyHash": key_hash, "scopes": scopes, "audience": normal(audience)}
        access = new_token(ACCESS_PREFIX)
        access_hash = digest(access)
        self.records.put_token(
            access_hash,
            {
                "id": access_hash,
                "type": "access",
                **common,
                "family": family,
                "revoked": False,
                "issuedAt": now,
                "expiresAt": now + settings.access_token_ttl,
            },
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl,
            "scope": " ".join(scopes),
        }
        if "refresh_token" in client.get("grantTypes", []):
            refresh = new_token(REFRESH_PREFIX)
            refresh_hash = digest(refresh)
            self.records.put_token(
                refresh_hash,
                {
                    "id": refresh_hash,
                    "type": "refresh",
                    **common,
                    "family": family,
                    "revoked": False,
                    "status": "active",
                    "issuedAt": now,
                    "expiresAt": now + settings.refresh_token_ttl,
                },
            )
            answer["refresh_token"] = refresh
        self.publish("oauth.token_issued", ACTOR, clientId=client["id"], grant=grant, scope=answer["scope"])
        return answer

    def _revoke_family(self, family: str, reason: str) -> None:
        revoked = self.records.revoke_family(family)
        self.publish("oauth.token_revoked", ACTOR, reason=reason, tokens=revoked)

    # POST /oauth/revoke ---------------------------------------------------------------------------------------
    def revoke(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> None:
        """RFC 7009: an unknown token (or another client's) is not an error and changes nothing. Holding a
        token is enough to revoke it; credentials, when sent, must be right and the token the client's."""
        raw = form.get("token")
        if not raw:
            raise OAuthError("invalid_request", "token is required")
        client = self.client(form, basic) if basic is not None or form.get("client_id") else None
        token_hash = digest(raw)
        doc = self.records.token(token_hash)
        if doc is None or (client is not None and doc.get("clientId") != client["id"]) or doc.get("revoked"):
            return
        if doc.get("type") == "refresh":  # §2.1: the access tokens of the same grant go with it
            revoked = self.records.revoke_family(str(doc["family"]))
        else:
            revoked = int(self.records.revoke_token(token_hash))
        self.publish("oauth.token_revoked", ACTOR, reason="revoked", clientId=doc.get("clientId"), tokens=revoked)
